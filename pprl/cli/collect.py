"""``pprl collect ENV --steps N -o FILE``: random-policy transitions from a gymnasium environment."""
from __future__ import annotations

from pathlib import Path

from pprl import collect

from .common import CLIError, add_parser as _add_parser, add_seed_option, add_threads_option, output_parent, positive_int


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "collect", help="random-policy transitions from a gymnasium environment",
                    description="Collect transitions from a gymnasium environment under a uniformly random "
                                "policy and write them as an .npz that fit, compare and mi read.")
    p.add_argument("env", help="gymnasium environment id, e.g. Pendulum-v1 or pprl/SparseMountainCar-v0")
    p.add_argument("--steps", type=positive_int, required=True, help="number of transitions to collect")
    add_seed_option(p, "the environment resets and the random actions")
    p.add_argument("--num-envs", type=positive_int, default=1, help="environment copies stepped together")
    add_threads_option(p)
    p.add_argument("-o", "--output", required=True, help="output .npz (its directories are created if missing)")
    p.set_defaults(func=run)


def run(args) -> int:
    if Path(args.output).is_dir():
        raise CLIError(f"-o {args.output} is a directory; give a file name such as {Path(args.output) / 'data.npz'}")
    data = collect(args.env, args.steps, seed=args.seed, num_envs=args.num_envs, threads=args.threads)
    path = data.save(output_parent(args.output))
    print(f"wrote {len(data)} transitions of {args.env} (obs_dim={data.obs_dim}, act_dim={data.act_dim}) to {path}")
    return 0
