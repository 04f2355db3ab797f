"""The ``pprl`` command line: ``validate | collect | fit | compare | train | mi | demo``.

Bad input (a malformed spec, a missing file, an unknown environment) prints one line
``pprl: error: ...`` and exits with status 2; nothing already written is touched, because
inputs are all checked before any output is written and outputs are written atomically.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

from .data import Transitions, collect
from .inference.svi import FitDiverged, fit
from .models.dynamics import build_model
from .rl.experiment import load_experiment
from .spec import SpecError, as_inference_spec, as_model_spec, load_spec



class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def _train_test(args) -> tuple[Transitions, Transitions]:
    data = Transitions.load(args.data)
    if args.test_data:
        return data, Transitions.load(args.test_data)
    return data.split(args.test_fraction, seed=args.seed)


# ----------------------------------------------------------------------------- commands

def cmd_validate(args) -> int:
    failed = 0
    for path in args.files:
        try:
            spec = load_spec(path)
            kind = "model" if hasattr(spec, "type") else "inference"
            detail = spec.type if kind == "model" else spec.family
            print(f"ok  {path}  ({kind} spec: {detail})")
        except SpecError as exc:
            print(f"pprl: error: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def cmd_collect(args) -> int:
    data = collect(args.env, args.steps, seed=args.seed, num_envs=args.num_envs)
    path = data.save(args.output)
    print(f"wrote {len(data)} transitions of {args.env} (obs_dim={data.obs_dim}, act_dim={data.act_dim}) to {path}")
    return 0


def cmd_fit(args) -> int:
    mspec, ispec = as_model_spec(args.model), as_inference_spec(args.inference)
    train, test = _train_test(args)
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
    _write_json(out / "metrics.json", metrics)
    print(f"{ispec.name}: ELBO {metrics['elbo']['final_mean']:.1f}  held-out log predictive "
          f"{metrics['test_log_predictive']:.3f} nats/transition  ({metrics['wall_time_s']:.1f} s)")
    print(f"wrote {out / 'posterior.pt'} and {out / 'metrics.json'}")
    return 0


def _run_compare(model, families, train, test, out: Path, *, steps, seed, device, quiet) -> None:
    from .diagnostics.compare import compare, plot_comparison

    specs = [as_inference_spec(f) for f in families]  # check every spec before fitting any
    out.mkdir(parents=True, exist_ok=True)
    table, posteriors = compare(model, specs, train, test, steps=steps, seed=seed, device=device,
                                progress=not quiet, return_posteriors=True)
    for name, post in posteriors.items():
        post.save(out / f"posterior_{name}.pt")
    tmp = out / "comparison.csv.tmp"
    table.to_csv(tmp)
    tmp.replace(out / "comparison.csv")
    figure = plot_comparison(table, posteriors, out / "comparison.png")
    with_cols = ["elbo", "train_log_pred", "test_log_pred", "prior_log_pred", "wall_time_s"]
    print(table[with_cols].to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out / 'comparison.csv'}, {figure} and posterior_<family>.pt")


def cmd_compare(args) -> int:
    mspec = as_model_spec(args.model)
    for f in args.inference:
        as_inference_spec(f)
    train, test = _train_test(args)
    _run_compare(mspec, args.inference, train, test, Path(args.output), steps=args.steps, seed=args.seed,
                 device=args.device, quiet=args.quiet)
    return 0


def _set_threads(n: int) -> None:
    """PPO's and the BNN's tensors are small: one torch thread is fastest, and more threads
    spin-wait badly when other processes share the cores (measured 10-60× slower updates)."""
    import torch

    torch.set_num_threads(n)


def cmd_train(args) -> int:
    from .rl.train import train

    _set_threads(args.threads)
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
    _print_summary(summary, out)
    return 0


_COLUMNS = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<cols>[^\]]*)\])?$")


def _column_group(arrays, specs: list[str], path: str):
    """``NAME`` (a whole [N] or [N, d] array), ``NAME[a:b]`` or ``NAME[i,j]`` (its columns),
    several concatenated column-wise → float64 [N, d]."""
    import numpy as np

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


def cmd_mi(args) -> int:
    import numpy as np

    from .inference.mi import estimate_mi

    if not Path(args.data).is_file():
        raise CLIError(f"no such file: {args.data}")
    with np.load(args.data) as arrays:
        x, y = _column_group(arrays, args.x, args.data), _column_group(arrays, args.y, args.data)
    if len(x) != len(y):
        raise CLIError(f"--x has {len(x)} rows but --y has {len(y)}")
    bound_options = {}
    if args.mine_clamp is not None:
        if args.bound != "mine":
            raise CLIError(f"--mine-clamp applies to --bound mine only, not {args.bound!r}")
        if not args.mine_clamp > 0:
            raise CLIError(f"--mine-clamp must be > 0, got {args.mine_clamp}")
        bound_options["log_mean_clamp"] = (-args.mine_clamp, args.mine_clamp)
    _set_threads(args.threads)
    est = estimate_mi(x.astype(np.float32), y.astype(np.float32), bound=args.bound, critic=args.critic,
                      steps=args.steps, batch_size=args.batch_size, lr=args.lr, heldout=args.heldout,
                      seed=args.seed, device=args.device, bound_options=bound_options, progress=not args.quiet)
    print(f"I({' '.join(args.x)}; {' '.join(args.y)}) = {est}")
    if args.json:
        _write_json(Path(args.json), {"x": args.x, "y": args.y, "data": str(args.data), **est.to_dict()})
    return 0


def _print_summary(summary: dict, out: Path) -> None:
    first = summary["first_success_step"]
    print(f"{summary['experiment']} (seed {summary['seed']}): {summary['env_steps']} env steps, "
          f"{summary['episodes']} episodes, success rate {summary['success_rate']:.2f} "
          f"(last 10%: {summary['final_success_rate']:.2f}), first success at "
          f"{'step ' + str(first) if first is not None else 'never'}, "
          f"{summary['env_steps_per_s']:.0f} env steps/s")
    if summary.get("final_info_gain") is not None:
        elbo = summary.get("final_elbo_per_transition")
        print(f"dynamics model at the end: mean info gain {summary['final_info_gain']:.3g} nats/transition"
              + (f", replay-pool ELBO {elbo:.3g} nats/transition" if elbo is not None else ""))
    print(f"wrote {out}/metrics.csv, learning_curve.png, checkpoint.pt, summary.json")


def cmd_demo(args) -> int:
    if args.what == "families":
        return _demo_families(args)
    from .rl.train import train

    _set_threads(args.threads)
    start = time.perf_counter()
    out = Path(args.output)
    if (out / "checkpoint.pt").exists():
        raise CLIError(f"{out} already holds a run; remove it or pass -o ANOTHER_DIR")
    spec = load_experiment("vime_mountaincar")  # shipped with pprl, found from any directory
    steps = args.steps or 60_000
    print(f"VIME on sparse MountainCar (reward 1 only at the goal): {steps} env steps, seed {args.seed}, "
          f"BNN dynamics with a mean-field posterior; the bonus is its information gain")
    summary = train(spec, seed=args.seed, out_dir=out, device=args.device, progress=not args.quiet,
                    total_steps=steps)
    _print_summary(summary, out)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


def _demo_families(args) -> int:
    start = time.perf_counter()
    out = Path(args.output)
    print(f"[1/3] collecting {args.transitions} random-policy transitions of Pendulum-v1 (seed {args.seed})")
    data = collect("Pendulum-v1", args.transitions, seed=args.seed)
    train, test = data.split(0.2, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    data.save(out / "pendulum.npz")
    families = list(args.families)  # family names resolve to the shipped inference specs
    print(f"[2/3] fitting the BNN dynamics model with {', '.join(args.families)} "
          f"({len(train)} train / {len(test)} held-out transitions)")
    print("[3/3] comparison (ELBO and log predictive in nats; higher is better)")
    _run_compare("bnn_dynamics", families, train, test, out, steps=args.steps,
                 seed=args.seed, device=args.device, quiet=args.quiet)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


# ----------------------------------------------------------------------------- parser

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="training transitions (.npz from `pprl collect`)")
    p.add_argument("--test-data", help="held-out transitions; default: a split of --data")
    p.add_argument("--test-fraction", type=_fraction, default=0.2, help="held-out share when no --test-data")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--steps", type=_positive_int, help="SVI steps (default: the inference spec's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pprl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check model/inference YAML specs")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("collect", help="random-policy transitions from a gymnasium environment")
    p.add_argument("env")
    p.add_argument("--steps", type=_positive_int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-envs", type=_positive_int, default=1)
    p.add_argument("-o", "--output", required=True, help="output .npz")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("fit", help="fit one variational family to a dynamics model")
    p.add_argument("model", help="model spec (models/*.yaml)")
    p.add_argument("inference", help="inference spec (inference/*.yaml) or a family name")
    _add_fit_options(p)
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (0: none)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("compare", help="fit several families and compare them")
    p.add_argument("model", help="model spec (models/*.yaml)")
    p.add_argument("inference", nargs="+", help="inference specs or family names")
    _add_fit_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("train", help="run an experiment spec: PPO with an intrinsic reward")
    p.add_argument("experiment", nargs="?", help="experiment spec (examples/*.yaml)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="output directory (default runs/NAME-seedS)")
    p.add_argument("--resume", metavar="DIR", help="continue the stopped run in DIR")
    p.add_argument("--steps", type=_positive_int, help="override learner.total_steps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("mi", help="estimate I(X; Y) between two column groups of an .npz file")
    p.add_argument("data", help=".npz file")
    p.add_argument("--x", nargs="+", required=True, metavar="COLS", help="NAME, NAME[a:b] or NAME[i,j] (several: concatenated)")
    p.add_argument("--y", nargs="+", required=True, metavar="COLS")
    p.add_argument("--bound", default="infonce", help="infonce, nwj, dv, mine, js, smile, tuba, interpolated")
    p.add_argument("--critic", default="separable", help="separable, concat or bilinear")
    p.add_argument("--mine-clamp", type=float, metavar="C",
                   help="mine only: clamp log E_q[e^f] to [-C, C] in MINE's running mean "
                   "(9.21 = log 1e4, torch-mist's value; steadies MINE at high MI)")
    p.add_argument("--steps", type=_positive_int, default=2000)
    p.add_argument("--batch-size", type=_positive_int, default=128, help="K pairs per score matrix")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--heldout", type=_fraction, default=0.2, help="share of pairs held out for the estimate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--json", help="write the estimate (value, stderr, trace) to this JSON file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_mi)

    p = sub.add_parser("demo", help="VIME on sparse MountainCar (≈20 s); 'demo families' compares "
                                    "variational families on Pendulum-v1")
    p.add_argument("what", nargs="?", choices=["vime", "families"], default="vime")
    p.add_argument("-o", "--output", default="demo_out")
    p.add_argument("--families", nargs="+", default=["mean_field", "low_rank", "flow", "map", "laplace"])
    p.add_argument("--transitions", type=_positive_int, default=6000)
    p.add_argument("--steps", type=_positive_int, help="env steps (vime) or SVI steps per family (families)")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads for the VIME demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def _one_line_warnings(show):
    """pprl's own warnings as one line ``pprl: warning: ...``; others as Python shows them."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("pprl."):
            print(f"pprl: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return show_warning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # pprl's own warnings as one line each (restored on exit)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return args.func(args)
    except (CLIError, SpecError, FileNotFoundError, FileExistsError, ValueError, FitDiverged) as exc:
        print(f"pprl: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pprl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
