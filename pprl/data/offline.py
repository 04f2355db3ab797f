"""Offline RL datasets in the D4RL key layout (Fu et al. 2020), as ``.npz`` or HDF5:

    observations [N, obs_dim]  actions [N, act_dim]  rewards [N]  next_observations [N, obs_dim]
    terminals [N] (bool: the episode ended in a terminal state)  timeouts [N] (bool: a time limit)

plus optional scalars: ``env_id``, ``kind`` (random, medium, …) and the reference returns
``ref_min_score`` (a random policy's) and ``ref_max_score`` (an expert's) that define the
normalised score 100 · (R − R_random) / (R_expert − R_random). A D4RL or Minari export with
these keys loads as it is; the references must come from the same env version as the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .transitions import Transitions

__all__ = ["OfflineDataset", "load_offline", "save_offline", "D4RL_KEYS"]

D4RL_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")


@dataclass(frozen=True, eq=False)
class OfflineDataset:
    """A dataset's transitions (``terminated`` = terminals, ``truncated`` = timeouts) and what
    is known about where it came from."""

    transitions: Transitions
    env_id: str | None = None
    kind: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None

    def __len__(self) -> int:
        return len(self.transitions)

    def normalized_score(self, returns) -> np.ndarray:
        """100 · (R − R_random) / (R_expert − R_random) of episode returns ``returns``."""
        if self.ref_min_score is None or self.ref_max_score is None:
            raise ValueError("this dataset has no reference returns (ref_min_score, ref_max_score): its "
                             "normalised score is undefined")
        returns = np.asarray(returns, dtype=np.float64)
        return 100.0 * (returns - self.ref_min_score) / (self.ref_max_score - self.ref_min_score)

    def episode_returns(self) -> np.ndarray:
        """The return of every complete episode in the data (episodes end at a terminal or a timeout)."""
        t = self.transitions
        ends = (t.terminated | t.truncated).cpu().numpy()
        rewards = t.reward.cpu().numpy().astype(np.float64)
        cut = np.flatnonzero(ends) + 1
        return np.array([seg.sum() for seg in np.split(rewards, cut)[:len(cut)]])


def save_offline(path, data: OfflineDataset) -> Path:
    """Write ``data`` in the D4RL layout: ``.npz`` (compressed) or ``.hdf5``/``.h5``."""
    path = Path(path)
    t = data.transitions
    arrays = {"observations": t.obs.cpu().numpy(), "actions": t.act.cpu().numpy(),
              "rewards": t.reward.cpu().numpy(), "next_observations": t.next_obs.cpu().numpy(),
              "terminals": t.terminated.cpu().numpy(), "timeouts": t.truncated.cpu().numpy()}
    scalars = {k: v for k, v in (("env_id", data.env_id), ("kind", data.kind), ("ref_min_score", data.ref_min_score),
                                 ("ref_max_score", data.ref_max_score)) if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".hdf5", ".h5"):
        import h5py

        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                f.create_dataset(k, data=v, compression="gzip")
            for k, v in scalars.items():
                f.attrs[k] = v
    elif path.suffix == ".npz":
        np.savez_compressed(path, **arrays, **{k: np.asarray(v) for k, v in scalars.items()})
    else:
        raise ValueError(f"{path}: unknown dataset format {path.suffix!r}; use .npz or .hdf5")
    return path


def load_offline(path, device="cpu") -> OfflineDataset:
    """Read a dataset in the D4RL layout (``.npz`` or HDF5). Missing keys or inconsistent shapes are
    one ValueError naming them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset file")
    if path.suffix in (".hdf5", ".h5"):
        import h5py

        with h5py.File(path, "r") as f:
            arrays = {k: np.asarray(f[k]) for k in D4RL_KEYS if k in f}
            present = sorted(f.keys())
            scalars = {k: f.attrs[k] for k in f.attrs}
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in D4RL_KEYS if k in f}
            present = sorted(f.files)
            scalars = {k: f[k][()] for k in ("env_id", "kind", "ref_min_score", "ref_max_score") if k in f}
    else:
        raise ValueError(f"{path}: unknown dataset format {path.suffix!r}; use .npz or .hdf5")
    missing = [k for k in D4RL_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: not a D4RL-layout dataset: missing {', '.join(missing)} "
                         f"(found: {', '.join(present)})")
    n = len(arrays["observations"])
    bad = {k: v.shape for k, v in arrays.items() if len(v) != n}
    if bad:
        raise ValueError(f"{path}: every key must have {n} rows (as observations), got {bad}")
    as_2d = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32).reshape(n, -1), device=device)
    transitions = Transitions(
        obs=as_2d(arrays["observations"]), act=as_2d(arrays["actions"]), next_obs=as_2d(arrays["next_observations"]),
        reward=torch.as_tensor(np.asarray(arrays["rewards"], dtype=np.float32).reshape(n), device=device),
        terminated=torch.as_tensor(np.asarray(arrays["terminals"]).astype(bool).reshape(n), device=device),
        truncated=torch.as_tensor(np.asarray(arrays["timeouts"]).astype(bool).reshape(n), device=device),
        meta={"source": str(path)})

    def scalar(name, cast):
        value = scalars.get(name)
        if value is None:
            return None
        value = value.item() if hasattr(value, "item") else value
        return cast(value.decode() if isinstance(value, bytes) else value)

    return OfflineDataset(transitions, env_id=scalar("env_id", str), kind=scalar("kind", str),
                          ref_min_score=scalar("ref_min_score", float), ref_max_score=scalar("ref_max_score", float))
