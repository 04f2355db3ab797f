"""``pprl dataset build ENV --kind K ... -o DIR``: offline datasets by the D4RL protocol."""
from __future__ import annotations

from pprl.rl.learners import SACConfig
from pprl.rl.offline_datasets import KINDS, build_datasets

from .common import add_parser as _add_parser, add_quiet_option, add_seed_option, add_threads_option, positive_int


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "dataset", help="build offline datasets (random, medium, medium-replay, expert, "
                                                "medium-expert) by the D4RL protocol",
                    description="Train SAC online with policy snapshots (cached in DIR/sac and reused), then write "
                                "DIR/ENV-KIND.npz in the D4RL layout for each kind, with the random and expert "
                                "reference returns measured here.")
    p.add_argument("action", choices=["build"], help="what to do")
    p.add_argument("env", help="gymnasium id with continuous actions, e.g. HalfCheetah-v5 or Pendulum-v1")
    p.add_argument("--kind", nargs="+", choices=KINDS, default=list(KINDS), help="which datasets")
    p.add_argument("--size", type=positive_int, default=100_000, help="transitions per dataset")
    p.add_argument("--sac-steps", type=positive_int, default=300_000, help="env steps of the SAC run")
    p.add_argument("--snapshots", type=positive_int, default=30, help="policy snapshots taken during the SAC run")
    p.add_argument("-o", "--output", required=True, help="output directory")
    add_seed_option(p, "SAC and the collection")
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    config = SACConfig(total_steps=args.sac_steps, buffer_size=args.sac_steps + 256,  # the whole run, whole iterations
                       learning_starts=min(5000, args.sac_steps))
    paths = build_datasets(args.env, args.kind, size=args.size, sac_steps=args.sac_steps, out_dir=args.output,
                           seed=args.seed, snapshots=args.snapshots, progress=not args.quiet, sac_config=config,
                           threads=args.threads)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(f"references and snapshots: {args.output}/datasets.json")
    return 0
