"""Many fits at once: ``pprl.fit(..., num_runs=R)`` against R separate fits of the default BNN.

Model ``models/bnn_dynamics.yaml`` (2×64, D = 4675), family ``inference/mean_field.yaml`` (local
reparameterisation), batch 256 of N = 5000 synthetic Pendulum transitions, as in
``benchmarks/svi_step.py``. For each R, ``fit(num_runs=R)`` runs ``--steps`` steps; the time is the
loop's own wall time (``info["wall_time_s"]``: no set-up). R separate fits cost R times one plain
``fit`` of the same steps (every seed costs the same), so the table reports the time of R runs at
once against R × the time of one plain fit (row "plain fit"). Rounds are interleaved over the variants and the median taken,
so machine noise hits all alike.

    python benchmarks/fit_many.py                      # ~4 min on 2 CPU cores
    python benchmarks/fit_many.py --runs 1 8 64 --device cuda
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

import pprl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from svi_step import synthetic_pendulum  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--steps", type=int, default=100, help="timed SVI steps per fit (default 100)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--family", default="mean_field")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0 keeps torch's default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    threads = args.threads if args.threads > 0 else None
    data = synthetic_pendulum(5000, 0)
    model, spec = ROOT / "models" / "bnn_dynamics.yaml", ROOT / "inference" / f"{args.family}.yaml"

    def seconds(R: int | None) -> float:
        out = pprl.fit(model, spec, data, steps=args.steps, seed=0, device=args.device, progress=False,
                       num_runs=R, threads=threads)
        return (out[0] if R else out).info["wall_time_s"]

    variants = [None, *args.runs]  # None: one plain fit
    seconds(max(args.runs))  # warm-up (allocator, kernels)
    times = {R: [] for R in variants}
    for i in range(args.rounds):
        for R in variants:
            times[R].append(seconds(R))
        print(f"  round {i + 1}/{args.rounds} done", file=sys.stderr)
    one = statistics.median(times[None])
    rows = []
    print(f"\n| R | ms/step, R runs at once | ms/step per run | R separate runs (R × one) | speed-up |")
    print("|--:|--:|--:|--:|--:|")
    print(f"| plain fit | {one * 1e3 / args.steps:.2f} | | | |")
    for R in args.runs:
        t = statistics.median(times[R]) * 1e3 / args.steps
        sep = one * 1e3 / args.steps * R
        rows.append({"runs": R, "ms_per_step": t, "ms_per_step_per_run": t / R, "separate_ms_per_step": sep})
        print(f"| {R} | {t:.2f} | {t / R:.3f} | {sep:.2f} | {sep / t:.2f}× |")
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "torch": torch.__version__,
                                         "machine": platform.processor() or platform.machine(),
                                         "steps": args.steps, "family": args.family, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
