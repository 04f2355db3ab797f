"""``pprl mi FILE.npz --x COLS --y COLS``: estimate I(X; Y) between two column groups with a critic bound."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pprl import estimate_mi

from .common import CLIError, fraction, positive_int, set_threads, write_json

_COLUMNS = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<cols>[^\]]*)\])?$")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("mi", help="estimate I(X; Y) between two column groups of an .npz file")
    p.add_argument("data", help=".npz file")
    p.add_argument("--x", nargs="+", required=True, metavar="COLS", help="NAME, NAME[a:b] or NAME[i,j] (several: concatenated)")
    p.add_argument("--y", nargs="+", required=True, metavar="COLS")
    p.add_argument("--bound", default="infonce", help="infonce, nwj, dv, mine, js, smile, tuba, interpolated")
    p.add_argument("--critic", default="separable", help="separable, concat or bilinear")
    p.add_argument("--mine-clamp", type=float, metavar="C",
                   help="mine only: clamp log E_q[e^f] to [-C, C] in MINE's running mean "
                   "(9.21 = log 1e4, torch-mist's value; steadies MINE at high MI)")
    p.add_argument("--steps", type=positive_int, default=2000)
    p.add_argument("--batch-size", type=positive_int, default=128, help="K pairs per score matrix")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--heldout", type=fraction, default=0.2, help="share of pairs held out for the estimate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--json", help="write the estimate (value, stderr, trace) to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if not Path(args.data).is_file():
        raise CLIError(f"no such file: {args.data}")
    with np.load(args.data) as arrays:
        x, y = column_group(arrays, args.x, args.data), column_group(arrays, args.y, args.data)
    if len(x) != len(y):
        raise CLIError(f"--x has {len(x)} rows but --y has {len(y)}")
    bound_options = {}
    if args.mine_clamp is not None:
        if args.bound != "mine":
            raise CLIError(f"--mine-clamp applies to --bound mine only, not {args.bound!r}")
        if not args.mine_clamp > 0:
            raise CLIError(f"--mine-clamp must be > 0, got {args.mine_clamp}")
        bound_options["log_mean_clamp"] = (-args.mine_clamp, args.mine_clamp)
    set_threads(args.threads)
    est = estimate_mi(x.astype(np.float32), y.astype(np.float32), bound=args.bound, critic=args.critic,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, heldout=args.heldout,
                      seed=args.seed, device=args.device, bound_options=bound_options, progress=not args.quiet)
    print(f"I({' '.join(args.x)}; {' '.join(args.y)}) = {est}")
    if args.json:
        write_json(Path(args.json), {"x": args.x, "y": args.y, "data": str(args.data), **est.to_dict()})
    return 0


def column_group(arrays, specs: list[str], path: str) -> np.ndarray:
    """``NAME`` (a whole [N] or [N, d] array), ``NAME[a:b]`` or ``NAME[i,j]`` (its columns),
    several concatenated column-wise → float64 [N, d]."""
    parts = []
    for spec in specs:
        m = _COLUMNS.match(spec)
        if m is None:
            raise CLIError(f"bad column group {spec!r}: use NAME, NAME[a:b] or NAME[i,j,...]")
        name, cols = m["name"], m["cols"]
        if name not in arrays.files:
            raise CLIError(f"array {name!r} not in {path}; it holds: {', '.join(arrays.files)}")
        a = np.asarray(arrays[name])
        if a.ndim not in (1, 2) or not np.issubdtype(a.dtype, np.number):
            raise CLIError(f"array {name!r} in {path} must be numeric with shape [N] or [N, d], got "
                           f"{a.dtype} {a.shape}")
        a = a.reshape(len(a), -1)
        if cols is not None:
            try:
                index = slice(*[int(v) if v else None for v in cols.split(":")]) if ":" in cols \
                    else [int(v) for v in cols.split(",")]
                a = a[:, index]
            except (ValueError, IndexError) as exc:
                raise CLIError(f"bad columns {spec!r} for {name!r} with {a.shape[1]} columns: {exc}") from None
            if a.shape[1] == 0:
                raise CLIError(f"column group {spec!r} selects no columns of {name!r}")
        parts.append(a.astype(np.float64))
    if len({len(p) for p in parts}) > 1:
        raise CLIError(f"column groups {specs} have different numbers of rows")
    return np.concatenate(parts, 1)
