"""``pprl mi FILE.npz --x COLS --y COLS``: estimate I(X; Y) between two column groups with a critic bound."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pprl import estimate_mi
from pprl.inference.bounds import BOUND_NAMES
from pprl.models.critics import CRITICS

from .common import (CLIError, add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, check_device, fraction, load_npz, output_parent, positive_int, write_json)

_COLUMNS = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<cols>[^\]]*)\])?$")
_GROUP_HELP = ("NAME (a whole [N] or [N, d] array), NAME[a:b] or NAME[i,j,...] (its columns, counted from 0; "
               "out-of-range columns are an error); several groups are concatenated")


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "mi", help="estimate I(X; Y) between two column groups of an .npz file",
                    description="Estimate the mutual information I(X; Y) in nats between two groups of columns "
                                "of an .npz file (rows are paired samples): a critic is trained on a bound and the "
                                "bound is evaluated on held-out pairs. X and Y must not share a column (I(X; X) is "
                                "infinite; a bound would report only its own ceiling): that is an error.")
    p.add_argument("data", help=".npz file of numeric arrays with one row per sample (numpy.savez writes one)")
    p.add_argument("--x", nargs="+", required=True, metavar="COLS", help="the X columns: " + _GROUP_HELP)
    p.add_argument("--y", nargs="+", required=True, metavar="COLS",
                   help="the Y columns, disjoint from --x (same syntax)")
    p.add_argument("--bound", default="infonce", help=f"the MI bound: {', '.join(BOUND_NAMES)}")
    p.add_argument("--critic", default="concat",
                   help=f"the critic f(x, y): {', '.join(CRITICS)} (default concat: a (16, 8) MLP on [x, y])")
    p.add_argument("--mine-clamp", type=float, metavar="C",
                   help="mine only: clamp log E_q[e^f] to [-C, C] in MINE's running mean "
                   "(9.21 = log 1e4, torch-mist's value; steadies MINE at high MI)")
    p.add_argument("--steps", type=positive_int, default=3000, help="critic training steps")
    p.add_argument("--batch-size", type=positive_int, default=128,
                   help="K pairs per score matrix (InfoNCE cannot exceed log K)")
    p.add_argument("--lr", type=float, help="Adam learning rate of the critic (default per critic: concat 5e-3, "
                   "separable and bilinear 5e-4)")
    p.add_argument("--heldout", type=fraction, default=0.2, help="share of pairs held out for the estimate")
    p.add_argument("--preprocess", choices=["standardize", "copula", "none"], default="standardize",
                   help="marginal map applied to every column first (I is invariant under it): standardize "
                   "(default), copula (normal scores of the ranks; for heavy tails and monotone warps) or none")
    add_seed_option(p, "the split, the critic and the minibatches")
    add_device_option(p)
    add_threads_option(p)
    p.add_argument("--json", help="also write the estimate (value, stderr, trace) to this JSON file")
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    arrays = load_npz(args.data)
    (x, x_cols), (y, y_cols) = column_group(arrays, args.x, args.data), column_group(arrays, args.y, args.data)
    if len(x) != len(y):
        raise CLIError(f"--x has {len(x)} rows but --y has {len(y)} in {args.data}")
    shared = [f"{name}[{c}]" for name, c in x_cols if (name, c) in set(y_cols)]
    if shared:
        raise CLIError(f"--x and --y share column(s) {', '.join(shared)} of {args.data}: I(X; Y) with a shared "
                       f"column is infinite and a bound would report only its own ceiling; give disjoint columns")
    bound_options = {}
    if args.mine_clamp is not None:
        if args.bound != "mine":
            raise CLIError(f"--mine-clamp applies to --bound mine only, not {args.bound!r}")
        if not args.mine_clamp > 0:
            raise CLIError(f"--mine-clamp must be > 0, got {args.mine_clamp}")
        bound_options["log_mean_clamp"] = (-args.mine_clamp, args.mine_clamp)
    if args.json and Path(args.json).is_dir():
        raise CLIError(f"--json {args.json} is a directory; give a file name")
    est = estimate_mi(x.astype(np.float32), y.astype(np.float32), bound=args.bound, critic=args.critic,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, heldout=args.heldout,
                      seed=args.seed, device=args.device, bound_options=bound_options,
                      preprocess=None if args.preprocess == "none" else args.preprocess, progress=not args.quiet,
                      threads=args.threads)
    print(f"I({' '.join(args.x)}; {' '.join(args.y)}) = {est}")
    if args.json:
        write_json(output_parent(args.json), {"x": args.x, "y": args.y, "data": str(args.data), **est.to_dict()})
    return 0


def _columns(spec: str, cols: str, d: int, shape: tuple, where: str) -> list[int]:
    """The column indices ``cols`` (``a:b``, ``a:b:s`` or ``i,j,...``) selects of ``d``; out of range is an error."""
    def bad(detail: str) -> CLIError:
        return CLIError(f"column group {spec!r}: {detail}; {where} has shape {shape}, so columns 0..{d - 1}")

    try:
        parts = [int(v) if v.strip() else None for v in cols.split(":" if ":" in cols else ",")]
    except ValueError:
        raise bad(f"{cols!r} is not a:b or i,j,... with integers") from None
    if ":" in cols:
        if len(parts) > 3 or (len(parts) == 3 and parts[2] == 0):
            raise bad(f"{cols!r} is not a slice a:b or a:b:step")
        for v in parts[:2]:
            if v is not None and not -d <= v <= d:
                raise bad(f"column {v} is out of range")
        index = list(range(d))[slice(*parts)]
    else:
        if None in parts:
            raise bad(f"{cols!r} has an empty column index")
        for v in parts:
            if not -d <= v < d:
                raise bad(f"column {v} is out of range")
        index = [v % d for v in parts]
    if not index:
        raise CLIError(f"column group {spec!r} selects no columns of {where} (shape {shape})")
    return index


def column_group(arrays: dict[str, np.ndarray], specs: list[str], path) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """``NAME`` (a whole [N] or [N, d] array), ``NAME[a:b]`` or ``NAME[i,j]`` (its columns), several
    concatenated column-wise → float64 [N, d], and the (array, column) pairs it holds."""
    parts, picked = [], []
    for spec in specs:
        m = _COLUMNS.match(spec)
        if m is None:
            raise CLIError(f"bad column group {spec!r}: use NAME, NAME[a:b] or NAME[i,j,...]")
        name, cols = m["name"], m["cols"]
        if name not in arrays:
            raise CLIError(f"array {name!r} not in {path}; it holds: {', '.join(arrays)}")
        a = np.asarray(arrays[name])
        where = f"array {name!r} in {path}"
        if a.ndim not in (1, 2) or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise CLIError(f"{where} must be numeric with shape [N] or [N, d], got {a.dtype} {a.shape}")
        shape, a = a.shape, a.reshape(len(a), -1)
        index = list(range(a.shape[1])) if cols is None else _columns(spec, cols, a.shape[1], shape, where)
        a = a[:, index].astype(np.float64)
        if not np.isfinite(a).all():
            raise CLIError(f"column group {spec!r} of {path} holds NaN or infinite values")
        parts.append(a)
        picked += [(name, c) for c in index]
    if len({len(p) for p in parts}) > 1:
        raise CLIError(f"column groups {specs} of {path} have different numbers of rows")
    return np.concatenate(parts, 1), picked
