"""``pprl.train_offline``: train an offline learner (BC, CQL, MISA) on a fixed dataset and evaluate
its policy in the environment every so often.

An offline experiment spec::

    name: misa_pendulum
    env: Pendulum-v1                     # where the policy is evaluated
    dataset: data/pendulum-medium.npz    # D4RL layout (pprl.load_offline); relative to the spec file
    learner: {type: misa, ...}           # bc | cql | misa (pprl.rl.learners.offline)
    updates: 100000                      # gradient steps
    eval_every: 5000                     # updates between evaluations
    eval_episodes: 10                    # deterministic episodes per evaluation

Outputs in ``out_dir``: ``spec.yaml``, ``metrics.csv`` (one row per evaluation: mean return, its
normalised score where the dataset has reference returns, the learner's mean statistics since
the last row, and ``data_mi``, the learner's ``mi_estimate`` of the data's pairs, nats),
``learning_curve.png``, ``checkpoint.pt`` and ``summary.json``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from ..data import Transitions
from ..data.offline import load_offline
from ..spec import SpecError, _check_keys, _check_positive, _check_type
from ..threads import uses_threads
from .envs.vector import evaluate_policy, make_vector_env
from .learners.offline import OFFLINE_LEARNERS
from .registry import plugin
from .train import _atomic_write

__all__ = ["OfflineSpec", "load_offline_experiment", "train_offline"]

FORMAT = "pprl.train_offline/1"


@dataclass(frozen=True)
class OfflineSpec:
    name: str
    env: str
    dataset: str
    learner: object
    updates: int = 100_000
    eval_every: int = 5_000
    eval_episodes: int = 10
    env_kwargs: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "env": self.env, "env_kwargs": dict(self.env_kwargs), "dataset": self.dataset,
                "learner": self.learner.to_dict(), "updates": self.updates, "eval_every": self.eval_every,
                "eval_episodes": self.eval_episodes}


def load_offline_experiment(spec, src: str | None = None) -> OfflineSpec:
    """An :class:`OfflineSpec` from a mapping or a YAML file; the dataset path is resolved against
    the file's folder. Every problem is one SpecError naming the field."""
    if isinstance(spec, OfflineSpec):
        return spec
    base = None
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise SpecError(f"{path}: no such offline experiment file")
        src, base, spec = str(path), path.parent, yaml.safe_load(path.read_text())
    src = src or "<dict>"
    _check_keys(spec, {"name", "env", "env_kwargs", "dataset", "learner", "updates", "eval_every", "eval_episodes"},
                "", src)
    for required in ("env", "dataset", "learner"):
        if required not in spec:
            raise SpecError(f"{src}: field '{required}' is required")
    learner_cls = plugin(OFFLINE_LEARNERS, spec["learner"], "learner", src)
    learner = learner_cls.spec_class.from_dict({k: v for k, v in spec["learner"].items()}, src)
    dataset = Path(_check_type(spec["dataset"], str, "dataset", src))
    if base is not None and not dataset.is_absolute() and not dataset.is_file() and (base / dataset).is_file():
        dataset = base / dataset
    counts = {}
    for key, default in (("updates", 100_000), ("eval_every", 5_000), ("eval_episodes", 10)):
        counts[key] = _check_positive(_check_type(spec.get(key, default), int, key, src), key, src)
    return OfflineSpec(name=_check_type(spec.get("name", "offline"), str, "name", src),
                       env=_check_type(spec["env"], str, "env", src), dataset=str(dataset), learner=learner,
                       env_kwargs=dict(_check_type(spec.get("env_kwargs", {}), dict, "env_kwargs", src)), **counts)


def _plot(metrics: pd.DataFrame, path: Path, title: str, normalised: bool) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 3.4))
    ax, ax2 = fig.subplots(1, 2)
    key = "normalized_score" if normalised else "eval_return"
    ax.plot(metrics["updates"], metrics[key], marker=".")
    ax.set(xlabel="gradient steps", ylabel="normalised score" if normalised else "evaluation return", title=title)
    if metrics["data_mi"].notna().any():
        ax2.plot(metrics["updates"], metrics["data_mi"], color="tab:purple", marker=".")
    ax2.set(xlabel="gradient steps", ylabel="nats", title="data's MI bound under the critic (conditional)")
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


@uses_threads
def train_offline(spec, seed: int = 0, out_dir: str | Path | None = None, *, device: str = "cpu",
                  progress: bool = True, updates: int | None = None) -> dict:
    """Train ``spec``'s learner on its dataset; returns the summary (``updates`` overrides the spec's)."""
    spec = load_offline_experiment(spec)
    if updates is not None:
        spec = dataclasses.replace(spec, updates=int(updates))
    out = Path(out_dir) if out_dir is not None else Path("runs") / f"{spec.name}-seed{seed}"
    if (out / "checkpoint.pt").exists():
        raise FileExistsError(f"{out} already holds a run (checkpoint.pt); use another output directory")
    data = load_offline(spec.dataset, device=device)
    t = data.transitions
    probe = make_vector_env(spec.env, 1, **spec.env_kwargs)
    space, obs_space = probe.single_action_space, probe.single_observation_space
    probe.close()
    if int(np.prod(obs_space.shape)) != t.obs.shape[1] or int(np.prod(space.shape)) != t.act.shape[1]:
        raise ValueError(f"{spec.dataset}: observations of width {t.obs.shape[1]} and actions of width "
                         f"{t.act.shape[1]}, but {spec.env} has {int(np.prod(obs_space.shape))} and "
                         f"{int(np.prod(space.shape))}")
    learner = OFFLINE_LEARNERS[spec.learner.type](t.obs.shape[1], t.act.shape[1], space.low.reshape(-1),
                                                  space.high.reshape(-1), spec.learner, seed=seed, device=device)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "spec.yaml", lambda tmp: tmp.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
    generator = torch.Generator(device).manual_seed(seed)
    held = torch.randint(len(t), (min(len(t), 1024),), generator=generator, device=device)
    held_batch = _rows(t, held)
    rows, sums, counts, start, update_s = [], {}, {}, time.perf_counter(), 0.0
    normalised = data.ref_min_score is not None and data.ref_max_score is not None
    bar = tqdm(total=spec.updates, desc=spec.name, disable=not progress, dynamic_ncols=True, unit="update")
    try:
        for step in range(1, spec.updates + 1):
            idx = torch.randint(len(t), (spec.learner.batch_size,), generator=generator, device=device)
            tick = time.perf_counter()
            stats = learner.update(_rows(t, idx))
            update_s += time.perf_counter() - tick
            for k, v in stats.items():  # per key: the actor's statistics only exist on actor steps
                sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
            bar.update(1)
            if step % spec.eval_every == 0 or step == spec.updates:
                returns = evaluate_policy(spec.env, learner.act, spec.eval_episodes, seed=10_000 + seed,
                                          **spec.env_kwargs)
                row = {"updates": step, "wall_s": time.perf_counter() - start, "eval_return": float(returns.mean()),
                       "eval_return_std": float(returns.std()),
                       "normalized_score": float(data.normalized_score(returns).mean()) if normalised else float("nan"),
                       "data_mi": learner.mi_estimate(held_batch), **{k: v / counts[k] for k, v in sums.items()}}
                rows.append(row)
                sums, counts = {}, {}
                bar.set_postfix({"ret": f"{row['eval_return']:.3g}"}, refresh=False)
    finally:
        bar.close()
    metrics = pd.DataFrame(rows)
    _atomic_write(out / "metrics.csv", lambda tmp: metrics.to_csv(tmp, index=False))
    torch.save({"format": FORMAT, "spec": spec.to_dict(), "seed": seed, "learner": learner.state_dict(),
                "metrics": rows}, out / "checkpoint.pt")
    _plot(metrics, out / "learning_curve.png", f"{spec.name} (seed {seed})", normalised)
    last = metrics.tail(max(1, len(metrics) // 5))
    summary = {"experiment": spec.name, "env": spec.env, "learner": spec.learner.type, "seed": seed,
               "dataset": spec.dataset, "dataset_size": len(t), "updates": spec.updates,
               "final_return": float(last["eval_return"].mean()),
               "final_normalized_score": float(last["normalized_score"].mean()) if normalised else None,
               "final_data_mi": float(last["data_mi"].mean()), "wall_time_s": float(metrics["wall_s"].iloc[-1]),
               "ms_per_update": 1000 * update_s / spec.updates}
    _atomic_write(out / "summary.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    return summary


def _rows(t: Transitions, idx: torch.Tensor) -> Transitions:
    return Transitions(obs=t.obs[idx], act=t.act[idx], next_obs=t.next_obs[idx], reward=t.reward[idx],
                       terminated=t.terminated[idx], truncated=t.truncated[idx])
