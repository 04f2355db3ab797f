"""``pprl demo [vime|families]``: VIME on sparse MountainCar, or the variational families on Pendulum-v1."""
from __future__ import annotations

import time
from pathlib import Path

from pprl import collect, load_experiment, train

from .common import CLIError, positive_int, set_threads
from .compare import run_compare
from .train import print_summary


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="VIME on sparse MountainCar (≈20 s); 'demo families' compares "
                                           "variational families on Pendulum-v1")
    p.add_argument("what", nargs="?", choices=["vime", "families"], default="vime")
    p.add_argument("-o", "--output", default="demo_out")
    p.add_argument("--families", nargs="+", default=["mean_field", "low_rank", "flow", "map", "laplace"])
    p.add_argument("--transitions", type=positive_int, default=6000)
    p.add_argument("--steps", type=positive_int, help="env steps (vime) or SVI steps per family (families)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads for the VIME demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.what == "families":
        return _demo_families(args)
    set_threads(args.threads)
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
    print_summary(summary, out)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0


def _demo_families(args) -> int:
    start = time.perf_counter()
    out = Path(args.output)
    print(f"[1/3] collecting {args.transitions} random-policy transitions of Pendulum-v1 (seed {args.seed})")
    data = collect("Pendulum-v1", args.transitions, seed=args.seed)
    train_data, test_data = data.split(0.2, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    data.save(out / "pendulum.npz")
    families = list(args.families)  # family names resolve to the shipped inference specs
    print(f"[2/3] fitting the BNN dynamics model with {', '.join(args.families)} "
          f"({len(train_data)} train / {len(test_data)} held-out transitions)")
    print("[3/3] comparison (ELBO and log predictive in nats; higher is better)")
    run_compare("bnn_dynamics", families, train_data, test_data, out, steps=args.steps,
                seed=args.seed, device=args.device, quiet=args.quiet)
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return 0
