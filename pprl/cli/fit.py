"""``pprl fit MODEL INFERENCE --data FILE -o DIR``: one variational family → posterior.pt, metrics.json."""
from __future__ import annotations

from pathlib import Path

from pprl import FitDiverged, build_model, fit
from pprl.spec import as_inference_spec, as_model_spec

from .common import CLIError, add_fit_options, train_test, write_json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("fit", help="fit one variational family to a dynamics model")
    p.add_argument("model", help="model spec (models/*.yaml)")
    p.add_argument("inference", help="inference spec (inference/*.yaml) or a family name")
    add_fit_options(p)
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (0: none)")
    p.set_defaults(func=run)


def run(args) -> int:
    mspec, ispec = as_model_spec(args.model), as_inference_spec(args.inference)
    train, test = train_test(args)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(mspec, train.obs_dim, train.act_dim)
    try:
        post = fit(model, ispec, train, steps=args.steps, seed=args.seed, device=args.device,
                   out_dir=out, checkpoint_every=args.checkpoint_every, progress=not args.quiet)
    except FitDiverged as exc:
        raise CLIError(str(exc)) from None
    post.save(out / "posterior.pt")
    trace = post.elbo_trace
    tail = trace[-max(1, len(trace) // 10):]
    metrics = {"model": mspec.name, "family": ispec.family, "inference": ispec.name,
               "steps": post.info["steps"], "seed": args.seed, "device": args.device,
               "num_train": len(train), "num_test": len(test),
               "elbo": {"final_mean": float(tail.mean()), "final_std": float(tail.std()) if len(tail) > 1 else 0.0,
                        "max": float(trace.max()), "first": float(trace[0])},
               "train_log_predictive": post.log_predictive(train),
               "test_log_predictive": post.log_predictive(test),
               "prior_log_predictive": post.prior_log_predictive(test),
               "wall_time_s": post.info["wall_time_s"]}
    write_json(out / "metrics.json", metrics)
    print(f"{ispec.name}: ELBO {metrics['elbo']['final_mean']:.1f}  held-out log predictive "
          f"{metrics['test_log_predictive']:.3f} nats/transition  ({metrics['wall_time_s']:.1f} s)")
    print(f"wrote {out / 'posterior.pt'} and {out / 'metrics.json'}")
    return 0
