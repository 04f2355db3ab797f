"""Information-gain throughput: N transitions scored in one batched call vs a per-transition
loop, on the default BNN (2×64, D = 4,546 for MountainCar) with a mean-field posterior.

    python benchmarks/info_gain_throughput.py --n 4096 --loop 128 --threads 1 --train-steps 30720

The loop calls the same public API one transition at a time (``ig(t[i:i+1])``) on the first
``--loop`` transitions; its per-transition time is extrapolated to N. Both are timed in one
process, so the ratio is meaningful on a noisy machine.

With ``--train-steps`` it then runs ``pprl.train`` on examples/ppo_mountaincar.yaml and
examples/vime_mountaincar.yaml for that many env steps, alternating PPO, VIME, PPO, VIME
in this process, and reports env steps per second of each and their ratio (best of two).
"""
import argparse
import tempfile
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
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=0, help="also compare PPO vs PPO+VIME env steps/s")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = pprl.collect("pprl/SparseMountainCar-v0", args.n + 2000, seed=0)
    post = pprl.fit("models/bnn_dynamics.yaml", "mean_field", data[args.n:], steps=500, progress=False)
    batch = data[:args.n]
    print(f"N = {args.n}, D = {post.model.param_dim}, {args.threads} threads")
    print("| method | batched (s) | loop per transition (ms) | loop extrapolated to N (s) | speed-up |")
    print("|---|---|---|---|---|")
    for label, kw in [("second_order (S=4)", dict(method="second_order", num_samples=4)),
                      ("second_order (S=8)", dict(method="second_order", num_samples=8)),
                      ("update, linearized", dict(solver="linearized")),
                      ("update, gradient (5 steps, S=2)", dict(steps=5, num_samples=2))]:
        ig = InfoGain(post, **kw)
        t_batch, full = timed(lambda: ig(batch))
        t_loop, looped = timed(lambda: torch.cat([ig(batch[i:i + 1]) for i in range(args.loop)]))
        err = float((looped - full[:args.loop]).abs().max() / full[:args.loop].abs().max())
        per = t_loop / args.loop
        print(f"| {label} | {t_batch:.2f} | {per * 1e3:.1f} | {per * args.n:.0f} | "
              f"{per * args.n / t_batch:.0f}× (max rel. diff {err:.1e}) |")
    if args.train_steps:
        compare_training_throughput(args.train_steps)


def compare_training_throughput(steps: int) -> None:
    """Env steps/s of PPO alone and PPO+VIME, alternating runs in one process (best of two)."""
    best = {"ppo": 0.0, "vime": 0.0}
    for name in ("ppo", "vime", "ppo", "vime"):
        with tempfile.TemporaryDirectory() as out:
            summary = pprl.train(f"examples/{name}_mountaincar.yaml", seed=0, out_dir=out, progress=False,
                                 total_steps=steps)
        best[name] = max(best[name], summary["env_steps_per_s"])
        print(f"{name}: {summary['env_steps']} env steps in {summary['wall_time_s']:.1f} s "
              f"({summary['env_steps_per_s']:.0f} steps/s)")
    print(f"PPO+VIME / PPO env steps per second: {best['vime']:.0f} / {best['ppo']:.0f} = "
          f"{best['vime'] / best['ppo']:.2f}")


if __name__ == "__main__":
    main()
