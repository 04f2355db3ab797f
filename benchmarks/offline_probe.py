"""Diagnostics of one offline learner on one dataset over training (issue 17: why CQL trails BC).

    OMP_NUM_THREADS=1 python benchmarks/offline_probe.py --data bench_out/d4rl/halfcheetah/halfcheetah-medium.npz \
        --env HalfCheetah-v5 --learner cql --updates 30000 --every 2000 -o bench_out/probe/cql.csv
    python benchmarks/offline_probe.py --plot bench_out/probe/bc.csv bench_out/probe/cql.csv -o bench_out/probe/probe.png

Every ``--every`` updates, on 2,048 held-out data states s with their data actions a_D:

* ``score``: the normalised score of the deterministic policy squash(μ(s)), ``--episodes`` episodes;
* ``mode_mse``: mean over states and action dimensions of (squash(μ(s)) − a_D)², how closely the
  policy's mode follows the data's actions; ``mode_saturated``: the share of mode coordinates with
  |a| > 0.99 (``data_saturated``: the same for a_D); ``pi_std``: the mean pre-squash σ(s);
* for actor-critics: min_i Q_i at a_D (``q_data``), at the mode (``q_mode``) and at uniform actions
  (``q_uniform``), and the learner's own training statistics averaged since the last probe.

``--set key=value`` overrides the learner's config (values read as YAML), e.g. ``policy_lr=0.0003``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def probe(data_path: str, env_id: str, learner_type: str, updates: int, every: int, episodes: int, seed: int,
          overrides: dict) -> list[dict]:
    import torch

    from pprl.data.offline import load_offline
    from pprl.rl.envs.vector import evaluate_policy
    from pprl.rl.learners.offline import OFFLINE_LEARNERS
    from pprl.rl.offline_train import _rows

    data = load_offline(data_path)
    t = data.transitions
    cls = OFFLINE_LEARNERS[learner_type]
    config = cls.spec_class.from_dict({"batch_size": 256, "hidden_sizes": [64, 64], **overrides})
    import gymnasium as gym
    env = gym.make(env_id)
    space = env.action_space
    env.close()
    learner = cls(t.obs.shape[1], t.act.shape[1], space.low, space.high, config, seed=seed)
    g = torch.Generator().manual_seed(seed)
    held = _rows(t, torch.randint(len(t), (2048,), generator=g))
    rows, sums, n, start = [], {}, 0, time.perf_counter()
    for step in range(1, updates + 1):
        for k, v in learner.update(_rows(t, torch.randint(len(t), (config.batch_size,), generator=g))).items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        if step % every:
            continue
        with torch.no_grad():
            s, a_data = held.obs, held.act
            mean, log_std = learner.actor.gaussian(s)
            mode = learner.actor.squash(mean)
            returns = evaluate_policy(env_id, learner.act, episodes, seed=10_000 + seed)
            row = {"updates": step, "score": float(data.normalized_score(returns).mean()),
                   "mode_mse": float((mode - a_data).square().mean()),
                   "mode_saturated": float((mode.abs() > 0.99).float().mean()),
                   "data_saturated": float((a_data.abs() > 0.99).float().mean()), "pi_std": float(log_std.exp().mean())}
            core = getattr(learner, "core", None)
            if core is not None:
                q = lambda a: torch.min(core.q1(s, a), core.q2(s, a))  # noqa: E731
                uniform = learner.actor.centre + learner.actor.half_width * (
                    2 * torch.rand((10, *a_data.shape), generator=g) - 1)
                row.update(q_data=float(q(a_data).mean()), q_mode=float(q(mode).mean()),
                           q_uniform=float(q(uniform).mean()))
        row.update({k: v / n for k, v in sums.items()}, wall_s=time.perf_counter() - start)
        rows.append(row)
        sums, n = {}, 0
        print(json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return rows


def plot(paths: list[str], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for path in paths:
        m = pd.read_csv(path)
        label = Path(path).stem
        axes[0].plot(m["updates"], m["score"], marker=".", label=label)
        axes[1].plot(m["updates"], m["mode_mse"], marker=".", label=label)
    axes[0].set(xlabel="updates", ylabel="normalised score", title="deterministic policy, 5 episodes")
    axes[1].set(xlabel="updates", ylabel="E (squash μ(s) − a_D)²", title="policy mode vs the data's actions",
                yscale="log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--learner", default="cql", choices=("bc", "cql", "misa"))
    p.add_argument("--updates", type=int, default=10_000)
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--plot", nargs="*", metavar="CSV", help="plot these probe CSVs instead of training")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    if a.plot:
        return plot(a.plot, a.output)
    if not a.data:
        p.error("--data DATASET.npz is required (unless --plot)")
    import torch
    import yaml

    torch.set_num_threads(1)
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    rows = probe(a.data, a.env, a.learner, a.updates, a.every, a.episodes, a.seed, overrides)
    import pandas as pd
    Path(a.output).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(a.output, index=False)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
