"""``pprl demo [vime|families]``: VIME on sparse MountainCar, or the variational families on Pendulum-v1."""
from __future__ import annotations

import fnmatch
import time
from pathlib import Path

from pprl import collect, load_experiment, train
from pprl.spec import as_inference_spec

from .common import (CLIError, add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, check_device, positive_int)
from .compare import run_compare
from .train import interrupted, print_summary

MARKER = ".pprl-demo"  # written first into a demo's output directory: what makes it a demo's output
DEMO_FILES = (MARKER, "spec.yaml", "metrics.csv", "episodes.csv", "checkpoint.pt", "learning_curve.png",
              "summary.json", "pendulum.npz", "comparison.csv", "comparison.png", "posterior_*.pt", "*.nc")


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "demo", help="VIME on sparse MountainCar; 'demo families' compares variational "
                                             "families on Pendulum-v1",
                    description="'pprl demo' (or 'pprl demo vime') trains PPO with VIME's information-gain bonus "
                                "on sparse MountainCar; 'pprl demo families' fits the BNN dynamics model to random "
                                "Pendulum-v1 transitions with several variational families and compares them. "
                                f"Output directory rule: a directory that does not exist or is empty is used; one "
                                f"that holds a previous demo's output (it has a {MARKER} file and only files a demo "
                                f"writes) is overwritten; anything else is refused, and nothing in it is touched.")
    p.add_argument("what", nargs="?", choices=["vime", "families"], default="vime",
                   help="which demo (default: vime)")
    p.add_argument("-o", "--output", default="demo_out",
                   help="output directory (a previous demo's output there is overwritten)")
    p.add_argument("--families", nargs="+", default=["mean_field", "low_rank", "flow", "map", "laplace"],
                   help="families demo: the variational families to compare")
    p.add_argument("--transitions", type=positive_int, default=6000,
                   help="families demo: random-policy Pendulum-v1 transitions to collect")
    p.add_argument("--steps", type=positive_int,
                   help="env steps (vime; default 60000) or SVI steps per family (families; default: each "
                        "inference spec's)")
    add_seed_option(p)
    add_device_option(p)
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def _demo_output(out: Path, what: str) -> None:
    """Apply the output rule (see the help): refuse a directory that holds anything but a previous
    demo's output, clear one that does, and mark the directory as this demo's."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"-o {out} is a file, not a directory; pass -o ANOTHER_DIR")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if entries:
        names = [e.name.removesuffix(".tmp") for e in entries]  # .tmp: an atomic write that was cut short
        foreign = [e.name for e, n in zip(entries, names)
                   if not e.is_file() or not any(fnmatch.fnmatchcase(n, pattern) for pattern in DEMO_FILES)]
        if not (out / MARKER).is_file() or foreign:
            example = foreign[0] if foreign else entries[0].name
            raise CLIError(f"{out} holds files that are not a previous demo's output (e.g. {example}); "
                           f"remove it or pass -o ANOTHER_DIR")
        for entry in entries:  # a previous demo's output: overwritten, as the help says
            entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(f"pprl demo {what}\n")


def run(args) -> int:
    check_device(args.device)
    if args.what == "families":
        return _demo_families(args)
    start = time.perf_counter()
    out = Path(args.output)
    spec = load_experiment("vime_mountaincar")  # shipped with pprl, found from any directory
    _demo_output(out, "vime")
    steps = args.steps or 60_000
    print(f"VIME on sparse MountainCar (reward 1 only at the goal): {steps} env steps, seed {args.seed}, "
          f"BNN dynamics with a mean-field posterior; the bonus is its information gain")
    try:
        summary = train(spec, seed=args.seed, out_dir=out, device=args.device, progress=not args.quiet,
                        total_steps=steps, threads=args.threads)
    except KeyboardInterrupt:
        return interrupted(out, args)
    print_summary(summary, out)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


def _demo_families(args) -> int:
    start = time.perf_counter()
    out = Path(args.output)
    families = list(args.families)  # family names resolve to the shipped inference specs
    for family in families:  # every spec checked before anything is written
        as_inference_spec(family)
    _demo_output(out, "families")
    print(f"[1/3] collecting {args.transitions} random-policy transitions of Pendulum-v1 (seed {args.seed})")
    data = collect("Pendulum-v1", args.transitions, seed=args.seed, threads=args.threads)
    train_data, test_data = data.split(0.2, seed=args.seed)
    data.save(out / "pendulum.npz")
    print(f"[2/3] fitting the BNN dynamics model with {', '.join(families)} "
          f"({len(train_data)} train / {len(test_data)} held-out transitions)")
    print("[3/3] comparison (ELBO and log predictive in nats; higher is better)")
    run_compare("bnn_dynamics", families, train_data, test_data, out, steps=args.steps, seed=args.seed,
                device=args.device, quiet=args.quiet, threads=args.threads)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0
