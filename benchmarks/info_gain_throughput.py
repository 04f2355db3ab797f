"""Information-gain throughput: N transitions scored in one batched call vs a per-transition
loop, on the default BNN (2×64, D = 4,546 for MountainCar) with a mean-field posterior.

    python benchmarks/info_gain_throughput.py --n 4096 --loop 256

The loop calls the same public API one transition at a time (``ig(t[i:i+1])``) on the first
``--loop`` transitions; its per-transition time is extrapolated to N. Both are timed in one
process, so the ratio is meaningful on a noisy machine.
"""
import argparse
import time

import torch

import pprl
from pprl.inference.info_gain import InfoGain


def timed(fn, repeat=1):
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--loop", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = pprl.collect("pprl/SparseMountainCar-v0", args.n + 2000, seed=0)
    post = pprl.fit("models/bnn_dynamics.yaml", "mean_field", data[args.n:], steps=500, progress=False)
    batch = data[:args.n]
    print(f"N = {args.n}, D = {post.model.param_dim}, {args.threads} threads")
    print("| method | batched (s) | loop per transition (ms) | loop extrapolated to N (s) | speed-up |")
    print("|---|---|---|---|---|")
    for label, kw in [("second_order (S=4)", dict(method="second_order", num_samples=4)),
                      ("update, linearized", dict(solver="linearized")),
                      ("update, gradient (5 steps, S=2)", dict(steps=5, num_samples=2))]:
        ig = InfoGain(post, **kw)
        t_batch, full = timed(lambda: ig(batch))
        t_loop, looped = timed(lambda: torch.cat([ig(batch[i:i + 1]) for i in range(args.loop)]))
        err = float((looped - full[:args.loop]).abs().max() / full[:args.loop].abs().max())
        per = t_loop / args.loop
        print(f"| {label} | {t_batch:.2f} | {per * 1e3:.1f} | {per * args.n:.0f} | "
              f"{per * args.n / t_batch:.0f}× (max rel. diff {err:.1e}) |")


if __name__ == "__main__":
    main()
