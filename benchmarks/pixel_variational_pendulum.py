"""The variational empowerment estimator reading rendered pendulum images (issue 14 item 5).

    python benchmarks/pixel_variational_pendulum.py --size 32 --repeat 10 --steps 400 -o bench_out/pixel_variational

The channel is the known simulator (``PendulumChannel``: one torque held ``--repeat`` steps of
0.05 s, Gaussian sensor noise 0.05 on the state reached), K = 1. Three estimates on a 21 × 21 grid
of (θ, θ̇):

* ``pixels``: ``pprl.Empowerment(channel, 1, observe=PendulumImage(size), encoder="conv")``: the
  source ω(a | image(s)) and the planner q(a | image(s), image(s')) read only the two-frame images
  (Mohamed & Rezende 2015 learn from images the same way);
* ``states``: the same estimator on the states themselves, same steps;
* ``linearised``: the tangent channel's water-filling capacity (``linearised_empowerment``) at the
  power of a uniform torque.

Reported: mean, upright (|θ| < 0.5) and hanging (|θ| > 2.6) means, Spearman correlations, seconds;
a figure of the three maps. A torque held 0.05 s moves the rod's tip by well under a pixel at
16×16 (the stop-22 run stayed at 0 nats), held 0.5 s by several pixels.
"""
import argparse
import json
import math
import time
from pathlib import Path

import torch


def main() -> None:
    from pprl import Empowerment
    from pprl.empowerment import PendulumChannel, linearised_empowerment
    from pprl.empowerment.continuous import PendulumImage

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--repeat", type=int, default=10, help="simulator steps each torque is held")
    parser.add_argument("--steps", type=int, default=400, help="fit steps of each variational estimator")
    parser.add_argument("--batch-states", type=int, default=16)
    parser.add_argument("--num-samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", default="bench_out/pixel_variational")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    channel = PendulumChannel(0.05, "final", action_repeat=args.repeat)
    n = 21
    th, thd = torch.meshgrid(torch.linspace(-math.pi, math.pi, n), torch.linspace(-8, 8, n), indexing="ij")
    grid = torch.stack([th.cos(), th.sin(), thd], -1).reshape(-1, 3)
    theta = th.reshape(-1)
    up, down = theta.abs() < 0.5, theta.abs() > 2.6
    maps, seconds = {}, {}
    maps["linearised"] = linearised_empowerment(channel, grid, 1, 16 / 12).double()
    common = dict(states=grid, hidden=64, lr=3e-3, seed=args.seed)
    for name, extra in (("states", {}), ("pixels", {"observe": PendulumImage(args.size), "encoder": "conv"})):
        t = time.perf_counter()
        emp = Empowerment(channel, 1, **common, **extra)
        emp.fit(args.steps, batch_states=args.batch_states, num_samples=args.num_samples, progress=False)
        maps[name] = torch.cat([emp(grid[i:i + 64], num_samples=256) for i in range(0, len(grid), 64)]).double()
        seconds[name] = time.perf_counter() - t
        print(f"{name}: {seconds[name]:.0f} s, mean {float(maps[name].mean()):.3f}", flush=True)

    def rank(x):
        return x.argsort().argsort().double()

    def spearman(a, b):
        return float(torch.corrcoef(torch.stack([rank(a), rank(b)]))[0, 1])

    result = {"args": vars(args), "seconds": seconds}
    for name, m in maps.items():
        result[name] = {"mean": float(m.mean()), "upright": float(m[up].mean()), "hanging": float(m[down].mean()),
                        "spearman_linearised": spearman(m, maps["linearised"]),
                        "spearman_states": spearman(m, maps["states"])}
    (out / f"results_size{args.size}_repeat{args.repeat}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for ax, name in zip(axes, ("linearised", "states", "pixels")):
        im = ax.imshow(maps[name].reshape(n, n).T.numpy(), origin="lower", extent=[-math.pi, math.pi, -8, 8],
                       aspect="auto", cmap="viridis")
        ax.set(title=f"{name} (nats), K = 1 torque × {args.repeat} steps", xlabel="θ (0 = upright)", ylabel="θ̇")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out / f"pixel_variational_size{args.size}_repeat{args.repeat}.png", dpi=90)


if __name__ == "__main__":
    main()
