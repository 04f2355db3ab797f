"""Latent (pixel) dynamics on rendered pendulum frames (issue 15's benchmark).

For each seed: a random policy on pprl/PendulumPixels-v0 (``--size`` pixels, 2 stacked frames so
velocity is visible), a quarter of the episodes held out; a ``type: latent`` model (conv encoder
and decoder, MLP transition, Bernoulli pixels, filtering guide) fitted by ``pprl.fit``, and a
:class:`~pprl.models.deterministic_ae.DeterministicAE` of the same architectures trained for the
same steps, batch and lr. Reported: frames per second of latent-model training (this process's
torch threads), the training ELBO per observed step averaged over each quarter of training, the
held-out ELBO per observed step, and the K-step open-loop prediction MSE per pixel (K = 1, 5, 10)
on held-out windows for

* latent: ``LatentPosterior.predict`` (the transition's mean rolled forward from q(z_0 | o_0)'s mean);
* latent_mc: the average of 16 ``predict(sample=True)`` rollouts, the model's predictive mean;
* ae: the deterministic autoencoder's rollout;
* constant: the context frame repeated;
* mean_frame: the training set's average frame (a blur that knows nothing of the state).

    OMP_NUM_THREADS=1 python benchmarks/latent_pixels.py --seeds 0 1 2 --steps 1000 -o bench_out/latent_pixels
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import pprl
from pprl.data import collect_frames
from pprl.data.sequences import split_episodes, to_sequences
from pprl.inference.latent_fit import image_strip
from pprl.models.deterministic_ae import build_deterministic_ae

HORIZONS = (1, 5, 10)


def model_spec(size: int, latent: int, seq_len: int, overshooting: int = 0, overshooting_scale: float = 1.0,
               kl_balance: float | None = None) -> dict:
    spec = {"type": "latent", "name": "pendulum_pixels_bench",
            "observation": {"kind": "image", "shape": [2, size, size]}, "latent_size": latent,
            "encoder": {"type": "conv", "features": 64}, "decoder": {"type": "conv"},
            "transition": {"type": "mlp", "hidden_sizes": [64]}, "likelihood": {"type": "bernoulli"},
            "guide": "filtering", "sequence_length": seq_len}
    if overshooting > 1:
        spec.update(overshooting=overshooting, overshooting_scale=overshooting_scale)
    if kl_balance is not None:
        spec["kl_balance"] = kl_balance
    return spec


def run_seed(args, seed: int, out: Path) -> dict:
    frames = collect_frames("pprl/PendulumPixels-v0", args.env_steps, seed=seed, frames=2, render={"size": args.size})
    train, test = split_episodes(frames.transitions(), 0.25, seed=seed)
    spec = model_spec(args.size, args.latent, args.seq_len, args.overshooting, args.overshooting_scale, args.kl_balance)
    inference = {"family": "mean_field", "steps": args.steps, "batch_size": args.batch, "lr": args.lr}
    post = pprl.fit(spec, inference, train, progress=False, seed=seed, threads=None)
    ae = build_deterministic_ae(spec, train.act_dim, seed=seed)
    ae_info = ae.fit(to_sequences(train, args.seq_len), args.steps, args.batch, args.lr, seed=seed, threads=None)

    held = to_sequences(test, max(HORIZONS), hop=5)
    held_elbo = post.elbo(to_sequences(test, args.seq_len, hop=5), num_particles=4, threads=None)

    def mse(pred):
        return (pred - held.obs).pow(2).mean((0, 2))

    first, act = held.obs[:, 0], held.act
    errors = {"latent": mse(post.predict(first, act, threads=None)),
              "latent_mc": mse(torch.stack([post.predict(first, act, sample=True, seed=s, threads=None)
                                            for s in range(16)]).mean(0)),
              "ae": mse(ae.predict(first, act, threads=None)),
              "constant": mse(held.obs[:, :1].expand_as(held.obs)),
              "mean_frame": mse(to_sequences(train, 0).obs.mean(0).expand_as(held.obs))}
    trace = post.elbo_trace
    quarters = [float(q.mean()) for q in trace.chunk(4)]
    if seed == args.seeds[0]:
        image_strip(post, held, out / f"strip_seed{seed}.png", index=3)
    return {"seed": seed, "train_windows": len(to_sequences(train, args.seq_len)), "held_out_windows": len(held),
            "frames_per_s": post.info["frames_per_s"], "wall_s": post.info["wall_time_s"],
            "ae_frames_per_s": ae_info.frames_per_s, "train_elbo_quarters": quarters,
            "held_out_elbo_per_step": held_elbo,
            "mse": {k: {K: float(v[K]) for K in HORIZONS} for k, v in errors.items()}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--env-steps", type=int, default=3000)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--latent", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=10)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--overshooting", type=int, default=0, help="latent overshooting distance D (0: off)")
    p.add_argument("--overshooting-scale", type=float, default=1.0)
    p.add_argument("--kl-balance", type=float, default=None)
    p.add_argument("-o", "--out", default="bench_out/latent_pixels")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        rows.append(run_seed(args, seed, out))
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s  {json.dumps(rows[-1])}", flush=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "machine": platform.processor() or platform.machine(),
                                                  "torch_threads": torch.get_num_threads(), "rows": rows}, indent=2))
    print(f"\nfps (latent training) {np.mean([r['frames_per_s'] for r in rows]):.0f}; "
          f"held-out ELBO/step {np.mean([r['held_out_elbo_per_step'] for r in rows]):.2f}")
    print("| predictor | K=1 | K=5 | K=10 | per seed K=10 |\n|---|---|---|---|---|")
    for name in rows[0]["mse"]:
        vals = {K: [r["mse"][name][K] for r in rows] for K in HORIZONS}
        print(f"| {name} | " + " | ".join(f"{np.mean(vals[K]):.4f}" for K in HORIZONS)
              + " | " + ", ".join(f"{v:.4f}" for v in vals[10]) + " |")


if __name__ == "__main__":
    main()
