"""Empowerment from pixels (issues 14 item 5, 15 item 4): the pendulum seen only as rendered frames.

    python benchmarks/pixel_empowerment.py -o bench_out/pixel_empowerment

1. Random-policy Pendulum-v1 frames (``pprl/PendulumPixels-v0``, 32×32, two stacked frames so the
   velocity is visible), from random starts, in 8 parallel envs.
2. A latent dynamics model (models/latent_pendulum_pixels.yaml with a two-frame observation and a
   per-step encoder q(z_t | o_t)) fitted by the ELBO; its encoder's means are the embedding z.
3. Zhao et al.'s latent linear-Gaussian channel on z (``LatentGaussianChannel``: z_K = b(z) +
   A(z)·a_{1:K} + N(0, Σ), fitted to K-step windows of the encoded frames, never across episodes),
   and its water-filling empowerment of every frame.
4. The latent model's own transition as the channel (``LatentModelChannel``: z_K from K draws of
   p(z_{j+1} | z_j, a_j), so the noise is the model's K-step predictive spread, different at every
   state) and its linearised empowerment at the same codes.
5. The reference: the linearised empowerment of the simulator itself (``PendulumChannel`` with
   sensor noise, same K) at the frames' true states. Reported: the rank correlation of each
   estimate with it over the frames of two held-out envs (the latent linear-Gaussian channel is
   fitted on the other six; the encoder on all eight), and each one's mean near upright (|θ| < 0.5)
   against hanging (|θ| > 2.6). ``--nominal-points`` is passed to both linearisations.
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    import pprl
    from pprl.data import Transitions, collect_frames
    from pprl.empowerment import LatentGaussianChannel, LatentModelChannel, PendulumChannel, linearised_empowerment
    from pprl.inference.latent_posterior import load_latent_posterior

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16_000, help="random-policy frames")
    parser.add_argument("--fit-steps", type=int, default=1500, help="ELBO steps of the latent model")
    parser.add_argument("--horizon", type=int, default=20, help="K of the latent channel (env steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nominal-points", type=int, default=1, help="of the two linearisations (model, simulator)")
    parser.add_argument("-o", "--out", default="bench_out/pixel_empowerment")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    t0 = time.perf_counter()
    frames = collect_frames("pprl/PendulumPixels-v0", args.steps, seed=args.seed, frames=2, num_envs=8)
    data = frames.transitions()
    print(f"{len(frames)} frames {tuple(frames.obs.shape[1:])} in {time.perf_counter() - t0:.1f} s", flush=True)

    spec = pprl.spec.as_model_spec("latent_pendulum_pixels").to_dict()
    spec.update(name="latent_pendulum_pixels_2frames", guide="per_step")
    spec["observation"] = {"kind": "image", "shape": [2, 32, 32]}
    t0 = time.perf_counter()
    saved = out / f"latent_seed{args.seed}_steps{args.fit_steps}_frames{args.steps}.pt"
    if saved.is_file():  # the expensive part, reused across horizons
        posterior = load_latent_posterior(saved)
    else:
        posterior = pprl.fit(spec, {"family": "mean_field", "steps": args.fit_steps, "batch_size": 16, "lr": 1e-3,
                                    "lr_decay": 0.1}, data, seed=args.seed, progress=False)
        posterior.save(saved)
    fit_s = time.perf_counter() - t0
    trace = posterior.elbo_trace
    print(f"latent fit {fit_s:.0f} s; ELBO/step first {float(trace[:20].mean()):.1f}, last "
          f"{float(trace[-20:].mean()):.1f}", flush=True)

    def encode(obs: torch.Tensor) -> torch.Tensor:
        return torch.cat([posterior.encode(obs[i:i + 2048])[0] for i in range(0, len(obs), 2048)])

    z, z_next = encode(data.obs), encode(data.next_obs)
    env = torch.arange(len(frames)) % 8  # rows are time-major: row t·8 + i is step t of env i
    fit_rows, held_out = env < 6, env >= 6  # envs 6 and 7 are held out (the channel never sees them)
    latent = Transitions(obs=z[fit_rows], act=data.act[fit_rows], next_obs=z_next[fit_rows],
                         terminated=data.terminated[fit_rows], truncated=data.truncated[fit_rows],
                         meta={"num_envs": 6})
    channel = LatentGaussianChannel(z.shape[1], 1, args.horizon, seed=args.seed)
    t0 = time.perf_counter()
    channel.fit(latent, steps=1500, progress=False)
    power = args.horizon * 16 / 12  # a uniform torque in [−2, 2] per step
    emp_pixels = channel.empowerment(z[held_out], power).double()
    state = frames.state[held_out]
    print(f"latent channel fit + empowerment {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    emp_model = linearised_empowerment(LatentModelChannel(posterior, -2.0, 2.0), z[held_out].double(), args.horizon,
                                       power, nominal_points=args.nominal_points).double()
    print(f"latent model's own channel {time.perf_counter() - t0:.1f} s", flush=True)
    truth = linearised_empowerment(PendulumChannel(0.05, "final", action_repeat=1), state, args.horizon, power,
                                   nominal_points=args.nominal_points).double()

    theta = torch.atan2(state[:, 1], state[:, 0])
    up, down = theta.abs() < 0.5, theta.abs() > 2.6

    def rank(x):
        return x.argsort().argsort().double()

    def spearman_with_truth(x):
        return float(torch.corrcoef(torch.stack([rank(x), rank(truth)]))[0, 1])

    spearman = spearman_with_truth(emp_pixels)
    result = {"frames": len(frames), "fit_seconds": fit_s, "elbo_first": float(trace[:20].mean()),
              "elbo_last": float(trace[-20:].mean()), "horizon": args.horizon, "held_out_frames": int(held_out.sum()),
              "nominal_points": args.nominal_points,
              "spearman": spearman, "pixels_upright": float(emp_pixels[up].mean()),
              "pixels_hanging": float(emp_pixels[down].mean()),
              "model_spearman": spearman_with_truth(emp_model), "model_upright": float(emp_model[up].mean()),
              "model_hanging": float(emp_model[down].mean()), "simulator_upright": float(truth[up].mean()),
              "simulator_hanging": float(truth[down].mean())}
    tag = f"K{args.horizon}" + (f"_n{args.nominal_points}" if args.nominal_points > 1 else "")
    (out / f"results_{tag}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    th, thd = theta.numpy(), state[:, 2].numpy()
    for row, (values, name) in enumerate(((emp_pixels, "latent linear-Gaussian channel"),
                                          (emp_model, "the latent model's own transition"))):
        for ax, v, title in ((axes[row, 0], values, f"from pixels: {name}"),
                             (axes[row, 1], truth, "simulator, linearised (reference)")):
            sc = ax.scatter(th, thd, c=v.numpy(), s=3, cmap="viridis")
            fig.colorbar(sc, ax=ax, label="nats")
            ax.set(title=f"K = {args.horizon}: {title}", xlabel="θ (0 = upright)", ylabel="θ̇")
        axes[row, 2].scatter(truth.numpy(), values.numpy(), s=3)
        axes[row, 2].set(xlabel="simulator (nats)", ylabel="from pixels (nats)",
                         title=f"held-out frames, Spearman {spearman_with_truth(values):.2f}")
    fig.tight_layout()
    fig.savefig(out / f"pixel_empowerment_{tag}.png", dpi=100)


if __name__ == "__main__":
    main()
