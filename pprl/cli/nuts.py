"""``pprl nuts MODEL --data FILE -o DIR``: a NUTS reference posterior (NumPyro) of a declared model."""
from __future__ import annotations

from pathlib import Path

from pprl import build_model, nuts
from pprl.diagnostics.inference_data import predictive_summary
from pprl.spec import as_inference_spec, as_model_spec

from .common import CLIError, add_fit_options, add_parser as _add_parser, check_device, positive_int, train_test, write_json


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "nuts", help="a NUTS reference posterior of a dynamics model",
                    description="Run NUTS (NumPyro) on the same declared model as the SVI families; writes "
                                "posterior.pt (loads like any pprl posterior), posterior.nc (ArviZ InferenceData "
                                "on the held-out transitions, with divergences, tree depth and energy) and "
                                "metrics.json (held-out log predictive, divergences, worst R-hat and lowest ESS "
                                "of the predictive means f(x; θ)).")
    p.add_argument("model", help="model spec: a YAML file (models/*.yaml) or a bundled name such as linear_gaussian")
    p.add_argument("--spec", default="nuts", help="inference spec of family nuts (the sampler's settings)")
    p.add_argument("--num-samples", type=positive_int, help="draws kept per chain (default: the spec's)")
    p.add_argument("--num-warmup", type=positive_int, help="adaptation steps per chain (default: the spec's)")
    p.add_argument("--num-chains", type=positive_int, help="chains, run vectorised (default: the spec's)")
    p.add_argument("--max-tree-depth", type=positive_int, help="at most 2^depth leapfrog steps (default: the spec's)")
    add_fit_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    if args.steps is not None:
        raise CLIError("--steps is an SVI budget; NUTS takes --num-samples and --num-warmup")
    mspec, ispec = as_model_spec(args.model), as_inference_spec(args.spec)
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
