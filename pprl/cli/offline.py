"""``pprl offline EXPERIMENT -o DIR``: train BC, CQL or MISA on a dataset and evaluate in the env."""
from __future__ import annotations

from pathlib import Path

from pprl.rl.offline_train import load_offline_experiment, train_offline

from .common import (add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, check_device, positive_int)


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "offline", help="train an offline learner (bc, cql, misa) on a dataset",
                    description="Train the offline experiment's learner on its dataset (D4RL layout), evaluate the "
                                "policy in the environment every eval_every updates, and write metrics.csv, "
                                "learning_curve.png, checkpoint.pt and summary.json.")
    p.add_argument("experiment", help="offline experiment spec (YAML): env, dataset, learner, updates, eval_every")
    add_seed_option(p, "the networks, the minibatches and the evaluation episodes")
    p.add_argument("-o", "--output", help="output directory (default: runs/NAME-seedSEED)")
    p.add_argument("--updates", type=positive_int, help="gradient steps, overriding the spec's updates")
    add_device_option(p)
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    spec = load_offline_experiment(args.experiment)  # all spec errors before anything is written
    out = Path(args.output) if args.output else Path("runs") / f"{spec.name}-seed{args.seed}"
    s = train_offline(spec, seed=args.seed, out_dir=out, device=args.device, progress=not args.quiet,
                      updates=args.updates, threads=args.threads)
    score = "" if s["final_normalized_score"] is None else f", normalised score {s['final_normalized_score']:.1f}"
    print(f"{s['experiment']} (seed {s['seed']}): {s['updates']} updates on {s['dataset_size']} transitions, "
          f"final return {s['final_return']:.1f}{score}, MI bound under the critic {s['final_data_mi']:.3g} nats, "
          f"{s['ms_per_update']:.2f} ms/update")
    print(f"wrote {out}/metrics.csv, learning_curve.png, checkpoint.pt, summary.json")
    return 0
