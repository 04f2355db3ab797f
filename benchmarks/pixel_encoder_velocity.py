"""Does VIME's frozen pixel encoder code the car's position and velocity? (issue 15, VIME from pixels)

The encoder of examples/vime_mountaincar_pixels.yaml (latent_mountaincar_pixels, 500 ELBO steps,
batch 16, lr 1e-3) is fitted as VIME fits it: on the first 2,048 transitions of 8 envs under the
PPO policy at initialisation (actions N(0, 0.22²), clipped), two stacked frames per window. Then,
on 4,096 fresh windows rendered at random states (x ~ U[−1, 0.4], v ~ U[−0.07, 0.07]; the window
shows the car at x − v and x), x and v are regressed on features of the codes by least squares
(3,072 windows to fit, 1,024 to score; R² on the held-out ones):

* one window's code z_t (linear, and with its pairwise products: "quadratic");
* the code and its change from the previous window, (z_t, z_t − z_{t−k}) (the state VIME's
  dynamics model gets with ``history``), the previous window showing the car at x − (k+1)v, x − kv.

    python benchmarks/pixel_encoder_velocity.py --antialias 1     # the all-or-nothing disc
    python benchmarks/pixel_encoder_velocity.py --antialias 4     # sub-pixel coverage (about 2 min each)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from pprl.data import Transitions
from pprl.rl.envs.pixels import render_mountain_car
from pprl.rl.envs.vector import make_vector_env
from pprl.rl.intrinsic.pixel_encoder import EncoderSpec, FrozenEncoder

ROOT = Path(__file__).resolve().parents[1]


def first_batch(antialias: int, seed: int) -> Transitions:
    """2,048 transitions of 8 envs (time-major) under N(0, 0.22²) actions, two stacked frames."""
    env = make_vector_env("pprl/SparseMountainCarPixels-v0", 8, frames=2, antialias=antialias)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("obs", "act", "next_obs", "reward", "terminated", "truncated")}
    for _ in range(256):
        act = np.clip(0.22 * rng.standard_normal((8, 1)), -1, 1).astype(np.float32)
        nxt, reward, term, trunc, _ = env.step(act)
        for key, value in zip(rows, (obs, act, nxt, reward, term, trunc)):
            value = torch.as_tensor(np.asarray(value))
            rows[key].append(value.reshape(8, -1) if value.dim() > 1 else value)
        obs = nxt
    env.close()
    return Transitions(*(torch.cat(rows[k]) for k in rows), meta={"num_envs": 8})


def r2(features: np.ndarray, target: np.ndarray) -> float:
    """Held-out R² of a least-squares fit with an intercept (first 3/4 to fit, last 1/4 to score)."""
    F = np.concatenate([features, np.ones((len(features), 1))], 1)
    cut = 3 * len(F) // 4
    w = np.linalg.lstsq(F[:cut], target[:cut], rcond=None)[0]
    residual = target[cut:] - F[cut:] @ w
    return float(1 - residual.var() / target[cut:].var())


def quadratic(z: np.ndarray) -> np.ndarray:
    return np.concatenate([z, np.einsum("ni,nj->nij", z, z).reshape(len(z), -1)], 1)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--antialias", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    aa = args.antialias
    block = yaml.safe_load((ROOT / "examples" / "vime_mountaincar_pixels.yaml").read_text())["intrinsic"]["encoder"]
    block["history"] = 1
    encoder = FrozenEncoder(EncoderSpec.from_dict(block), 2 * 32 * 32, 1, seed=args.seed)
    encoder(first_batch(aa, args.seed))  # fitted on the first batch, then frozen

    def codes(previous, now):
        frames = np.concatenate([render_mountain_car(previous, 32, antialias=aa),
                                 render_mountain_car(now, 32, antialias=aa)], 1)
        return encoder.encode(torch.as_tensor(frames.reshape(len(now), -1))).numpy()

    g = np.random.default_rng(100 + args.seed)
    x, v = g.uniform(-1.0, 0.4, 4096), g.uniform(-0.07, 0.07, 4096)
    z = codes(x - v, x)
    print(f"antialias {aa}, seed {args.seed}")
    print(f"  one window's code:  R² of x {r2(z, x):.3f} (quadratic {r2(quadratic(z), x):.3f}); "
          f"of v {r2(z, v):.3f} (quadratic {r2(quadratic(z), v):.3f})")
    for k in (1, 2, 4, 8):
        then = codes(x - (k + 1) * v, x - k * v)
        feats = np.concatenate([z, z - then], 1)
        print(f"  (z_t, z_t − z_t−{k}): R² of v {r2(feats, v):.3f} (quadratic {r2(quadratic(feats), v):.3f})")


if __name__ == "__main__":
    main()
