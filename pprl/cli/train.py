"""``pprl train EXPERIMENT -o DIR`` or ``pprl train --resume DIR``: PPO with an intrinsic reward."""
from __future__ import annotations

from pathlib import Path

from pprl import load_experiment, train

from .common import CLIError, positive_int, set_threads


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="run an experiment spec: PPO with an intrinsic reward")
    p.add_argument("experiment", nargs="?", help="experiment spec (examples/*.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="output directory (default runs/NAME-seedS)")
    p.add_argument("--resume", metavar="DIR", help="continue the stopped run in DIR")
    p.add_argument("--steps", type=positive_int, help="override learner.total_steps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    set_threads(args.threads)
    if (args.experiment is None) == (args.resume is None):
        raise CLIError("give an experiment spec (pprl train EXPERIMENT.yaml -o DIR) or --resume DIR, not both")
    if args.resume is not None:
        summary = train(None, out_dir=args.resume, resume=True, device=args.device, progress=not args.quiet,
                        total_steps=args.steps)
        out = Path(args.resume)
    else:
        spec = load_experiment(args.experiment)  # all spec errors before anything is written
        out = Path(args.output) if args.output else Path("runs") / f"{spec.name}-seed{args.seed}"
        summary = train(spec, seed=args.seed, out_dir=out, device=args.device, progress=not args.quiet,
                        total_steps=args.steps)
    print_summary(summary, out)
    return 0


def print_summary(summary: dict, out: Path) -> None:
    """The end-of-run lines of ``train`` and ``demo``: success, the intrinsic reward's health
    measures at the end (whatever it declares), what was written."""
    first = summary["first_success_step"]
    print(f"{summary['experiment']} (seed {summary['seed']}): {summary['env_steps']} env steps, "
          f"{summary['episodes']} episodes, success rate {summary['success_rate']:.2f} "
          f"(last 10%: {summary['final_success_rate']:.2f}), first success at "
          f"{'step ' + str(first) if first is not None else 'never'}, "
          f"{summary['env_steps_per_s']:.0f} env steps/s")
    health = [f"{label} {summary['final_' + key]:.3g}" for key, label in summary.get("health", {}).items()
              if summary.get("final_" + key) is not None]
    if health:
        print(f"{summary['intrinsic']} at the end: " + ", ".join(health))
    print(f"wrote {out}/metrics.csv, learning_curve.png, checkpoint.pt, summary.json")
