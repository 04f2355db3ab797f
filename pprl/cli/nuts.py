"""``pprl nuts MODEL --data FILE -o DIR``: a NUTS reference posterior (NumPyro) of a declared model."""
from __future__ import annotations

from pathlib import Path

from pprl import build_model, nuts
from pprl.diagnostics.inference_data import predictive_summary
from pprl.models.latent_spec import LatentSpec
from pprl.spec import as_inference_spec, as_model_spec

from .common import CLIError, add_fit_options, add_parser as _add_parser, check_device, positive_int, train_test, write_json


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "nuts", help="a NUTS reference posterior of a dynamics model",
                    description="Run NUTS (NumPyro) on the same declared model as the SVI families; writes "
                                "posterior.pt (loads like any pprl posterior), posterior.nc (ArviZ InferenceData "
                                "on the held-out transitions, with divergences, tree depth and energy) and "
                                "metrics.json (held-out log predictive, divergences, worst R-hat and lowest ESS "
                                "of the predictive means f(x; θ)). For a latent model (type: latent), with "
                                "--posterior from pprl fit: NUTS samples the states z_t of --num-sequences "
                                "sequences of --data under the fitted decoder and transition, and the amortised "
                                "guide is scored against it; writes metrics.json (the guide's mean error in "
                                "posterior sds, its sd ratio, W2; R-hat, ESS, divergences), local_draws.npz and "
                                "local_posterior.png.")
    p.add_argument("model", help="model spec: a YAML file (models/*.yaml) or a bundled name such as linear_gaussian")
    p.add_argument("--spec", default="nuts", help="inference spec of family nuts (the sampler's settings)")
    p.add_argument("--num-samples", type=positive_int, help="draws kept per chain (default: the spec's)")
    p.add_argument("--num-warmup", type=positive_int, help="adaptation steps per chain (default: the spec's)")
    p.add_argument("--num-chains", type=positive_int, help="chains, run vectorised (default: the spec's)")
    p.add_argument("--max-tree-depth", type=positive_int, help="at most 2^depth leapfrog steps (default: the spec's)")
    p.add_argument("--posterior", help="latent models: the fitted posterior.pt whose decoder and transition NUTS "
                                       "conditions on, and whose guide it scores")
    p.add_argument("--num-sequences", type=positive_int, default=8,
                   help="latent models: how many windows of --data (sequence_length transitions each, "
                        "non-overlapping, the first ones) NUTS samples the states of")
    add_fit_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    if args.steps is not None:
        raise CLIError("--steps is an SVI budget; NUTS takes --num-samples and --num-warmup")
    mspec, ispec = as_model_spec(args.model), as_inference_spec(args.spec)
    if isinstance(mspec, LatentSpec):
        return run_latent(args, mspec, ispec)
    if args.posterior is not None:
        raise CLIError(f"--posterior is for latent models (type: latent); {mspec.name!r} is a {mspec.type!r} model")
    train, test = train_test(args)
    out = Path(args.output)
    model = build_model(mspec, train.obs_dim, train.act_dim)
    post = nuts(model, train, ispec, num_samples=args.num_samples, num_warmup=args.num_warmup,
                num_chains=args.num_chains, max_tree_depth=args.max_tree_depth, seed=args.seed,
                progress=not args.quiet, device=args.device, threads=args.threads)
    out.mkdir(parents=True, exist_ok=True)
    post.save(out / "posterior.pt")
    post.to_inference_data(test, seed=args.seed).to_netcdf(out / "posterior.nc")
    summary = predictive_summary(post, test)
    metrics = {"model": mspec.name, "family": "nuts", "seed": args.seed, "options": dict(post.inference.options),
               "num_train": len(train), "num_test": len(test), "wall_time_s": post.info["wall_time_s"],
               "num_divergences": post.info["num_divergences"],
               "predictive_r_hat_max": float(summary["r_hat"].max()), "predictive_ess_bulk_min": float(summary["ess_bulk"].min()),
               "test_log_predictive": post.log_predictive(test, threads=args.threads)}
    write_json(out / "metrics.json", metrics)
    print(f"NUTS: held-out log predictive {metrics['test_log_predictive']:.3f} nats/transition, "
          f"{metrics['num_divergences']} divergences, predictive R-hat ≤ {metrics['predictive_r_hat_max']:.3f}, "
          f"ESS ≥ {metrics['predictive_ess_bulk_min']:.0f} ({metrics['wall_time_s']:.1f} s)")
    print(f"wrote {out / 'posterior.pt'}, {out / 'posterior.nc'} and {out / 'metrics.json'}")
    return 0


def run_latent(args, mspec: LatentSpec, ispec) -> int:
    """``pprl nuts`` for a latent model: the states of the first ``--num-sequences`` non-overlapping
    windows of ``--data`` (pass held-out data to score the guide off its training set) under a
    fitted posterior. NUTS runs in JAX on the CPU."""
    import numpy as np

    from pprl.data import Transitions
    from pprl.data.sequences import to_sequences
    from pprl.inference.latent_posterior import load_latent_posterior
    from pprl.inference.mcmc.latent_nuts import latent_nuts, local_posterior_gap, plot_local_posterior
    from pprl.threads import torch_threads

    if args.posterior is None:
        raise CLIError(f"{mspec.name!r} is a latent model: NUTS samples its states given a fitted decoder and "
                       f"transition; pass --posterior PATH (the posterior.pt of pprl fit)")
    try:
        post = load_latent_posterior(args.posterior, args.device)  # the guide runs there; NUTS in JAX on the CPU
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(f"--posterior {args.posterior}: {exc}") from None
    if post.spec.to_dict() != mspec.to_dict():
        raise CLIError(f"--posterior {args.posterior} was fitted with model {post.spec.name!r}, not the {mspec.name!r} "
                       f"given (their specs differ)")
    try:
        seqs = to_sequences(Transitions.load(args.data), mspec.sequence_length,
                            hop=max(1, mspec.sequence_length))[:args.num_sequences]
        if len(seqs) == 0:
            raise ValueError(f"no episode holds {mspec.sequence_length} consecutive transitions (sequence_length)")
        opts = ispec.options
        with torch_threads(args.threads):
            draws = latent_nuts(post, seqs, num_samples=args.num_samples or opts["num_samples"],
                                num_warmup=args.num_warmup or opts["num_warmup"],
                                num_chains=args.num_chains or opts["num_chains"],
                                max_tree_depth=args.max_tree_depth or opts["max_tree_depth"],
                                target_accept=opts["target_accept"], seed=args.seed, progress=not args.quiet)
            gap = local_posterior_gap(post, seqs, draws, seed=args.seed)
    except ValueError as exc:
        raise CLIError(f"{args.model}: {exc}") from None
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "local_draws.npz", z=draws.z.float().numpy(), mean=draws.mean.numpy(), std=draws.std.numpy(),
             diverging=draws.diverging.numpy(), obs=seqs.obs.numpy(), act=seqs.act.numpy())
    plot_local_posterior(post, seqs, draws, out / "local_posterior.png", seed=args.seed)
    metrics = {"model": mspec.name, "guide": mspec.guide, "posterior": str(args.posterior), **draws.info,
               **draws.diagnostics(), **gap}
    write_json(out / "metrics.json", metrics)
    print(f"NUTS on the states of {len(seqs)} sequences × {seqs.length} steps: {metrics['num_divergences']} "
          f"divergences, R-hat ≤ {metrics['r_hat_max']:.3f}, ESS ≥ {metrics['ess_bulk_min']:.0f} "
          f"({metrics['wall_time_s']:.1f} s)")
    print(f"guide ({mspec.guide}) vs NUTS: mean error {gap['mean_error_sd']:.3f} posterior sd (max "
          f"{gap['mean_error_sd_max']:.2f}), sd ratio {gap['sd_ratio']:.3f}, W2 {gap['w2']:.3f}")
    print(f"wrote {out / 'metrics.json'}, {out / 'local_draws.npz'} and {out / 'local_posterior.png'}")
    return 0
