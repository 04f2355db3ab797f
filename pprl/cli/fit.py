"""``pprl fit MODEL INFERENCE --data FILE -o DIR``: one variational family → posterior.pt, metrics.json."""
from __future__ import annotations

from pathlib import Path

from pprl import FitDiverged, Transitions, build_model, fit
from pprl.models.latent_spec import LatentSpec
from pprl.spec import as_inference_spec, as_model_spec

from .common import CLIError, add_fit_options, add_parser as _add_parser, check_device, train_test, write_json


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "fit", help="fit one variational family to a dynamics model",
                    description="Fit one variational family (or 'nuts': NUTS draws) to a dynamics model on "
                                "transitions; writes posterior.pt, posterior.nc (ArviZ InferenceData on the "
                                "held-out transitions) and metrics.json (ELBO, train/held-out log predictive). "
                                "A latent model (type: latent) is fitted by the ELBO on sub-sequences with its "
                                "amortised guide; held-out data are whole episodes (or whole env streams), and "
                                "it writes posterior.pt, metrics.json (ELBO, reconstruction, K-step prediction) "
                                "and, for images, strip.png.")
    p.add_argument("model", help="model spec: a YAML file (models/*.yaml) or a bundled name such as bnn_dynamics")
    p.add_argument("inference", help="inference spec: a YAML file (inference/*.yaml) or a family name such as mean_field")
    add_fit_options(p)
    p.add_argument("--checkpoint-every", type=int, default=500, help="SVI steps between checkpoints (0: none)")
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    mspec, ispec = as_model_spec(args.model), as_inference_spec(args.inference)
    if isinstance(mspec, LatentSpec):
        return run_latent(args, mspec, ispec)
    train, test = train_test(args)
    out = Path(args.output)
    model = build_model(mspec, train.obs_dim, train.act_dim)
    out.mkdir(parents=True, exist_ok=True)
    try:
        post = fit(model, ispec, train, steps=args.steps, seed=args.seed, device=args.device, out_dir=out,
                   checkpoint_every=args.checkpoint_every, progress=not args.quiet, threads=args.threads)
    except FitDiverged as exc:
        raise CLIError(str(exc)) from None
    post.save(out / "posterior.pt")
    post.to_inference_data(test, num_samples=500, seed=args.seed).to_netcdf(out / "posterior.nc")
    trace = post.elbo_trace
    tail = trace[-max(1, len(trace) // 10):]
    elbo = None if not len(trace) else {  # NUTS has no objective trace
        "final_mean": float(tail.mean()), "final_std": float(tail.std()) if len(tail) > 1 else 0.0,
        "max": float(trace.max()), "first": float(trace[0])}
    metrics = {"model": mspec.name, "family": ispec.family, "inference": ispec.name,
               "steps": post.info["steps"], "seed": args.seed, "device": args.device, "threads": args.threads,
               "num_train": len(train), "num_test": len(test),
               "elbo": elbo,
               "train_log_predictive": post.log_predictive(train, threads=args.threads),
               "test_log_predictive": post.log_predictive(test, threads=args.threads),
               "prior_log_predictive": post.prior_log_predictive(test, threads=args.threads),
               "wall_time_s": post.info["wall_time_s"]}
    write_json(out / "metrics.json", metrics)
    objective = f"ELBO {elbo['final_mean']:.1f}  " if elbo else ""
    print(f"{ispec.name}: {objective}held-out log predictive "
          f"{metrics['test_log_predictive']:.3f} nats/transition  ({metrics['wall_time_s']:.1f} s)")
    print(f"wrote {out / 'posterior.pt'}, {out / 'posterior.nc'} and {out / 'metrics.json'}")
    return 0


def run_latent(args, mspec: LatentSpec, ispec) -> int:
    """``pprl fit`` for a ``type: latent`` model: held-out episodes, the latent fit's own outputs."""
    from pprl.data.sequences import split_held_out

    data = Transitions.load(args.data)
    if args.test_data:
        train, test = data, Transitions.load(args.test_data)
    else:
        try:
            train, test = split_held_out(data, args.test_fraction, seed=args.seed)
        except ValueError as exc:
            raise CLIError(f"--data {args.data}: {exc}") from None
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    try:
        post = fit(mspec, ispec, train, steps=args.steps, seed=args.seed, device=args.device, out_dir=out,
                   checkpoint_every=args.checkpoint_every, progress=not args.quiet, threads=args.threads,
                   test_data=test)
    except FitDiverged as exc:
        raise CLIError(str(exc)) from None
    except ValueError as exc:  # e.g. no sub-sequence long enough, observations of the wrong size
        raise CLIError(f"{args.model}: {exc}") from None
    written = [out / "posterior.pt", out / "metrics.json", *([out / "strip.png"] if (out / "strip.png").is_file() else [])]
    trace = post.elbo_trace
    print(f"{mspec.name}: ELBO {float(trace[-max(1, len(trace) // 10):].mean()):.2f} nats per observed step "
          f"({post.info['wall_time_s']:.1f} s); held-out metrics in {out / 'metrics.json'}")
    print(f"wrote {', '.join(map(str, written))}")
    return 0
