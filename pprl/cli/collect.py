"""``pprl collect ENV --steps N -o FILE``: random-policy transitions from a gymnasium environment."""
from __future__ import annotations

from pprl import collect

from .common import positive_int


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("collect", help="random-policy transitions from a gymnasium environment")
    p.add_argument("env")
    p.add_argument("--steps", type=positive_int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=positive_int, default=1)
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.set_defaults(func=run)


def run(args) -> int:
    data = collect(args.env, args.steps, seed=args.seed, num_envs=args.num_envs)
    path = data.save(args.output)
    print(f"wrote {len(data)} transitions of {args.env} (obs_dim={data.obs_dim}, act_dim={data.act_dim}) to {path}")
    return 0
