"""Transition datasets: the `Transitions` container (split, concat, .npz save/load)
and `collect`, which gathers random-policy transitions from a gymnasium environment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch

_TENSOR_FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated")


@dataclass(frozen=True, eq=False)
class Transitions:
    """A batch of N transitions stored as torch tensors sharing the leading length N.

    obs, next_obs: [N, obs_dim] float32; act: [N, act_dim] float32 (discrete actions
    one-hot); reward: [N] float32; terminated, truncated: [N] bool. `meta` is a free
    dict (env_id, seed, discrete, ...) that is saved but ignored by equality.
    """

    obs: torch.Tensor
    act: torch.Tensor
    next_obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in _TENSOR_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"Transitions.{name} must be a torch.Tensor, got {type(value).__name__}")
        shapes = {name: tuple(getattr(self, name).shape) for name in _TENSOR_FIELDS}
        for name in ("obs", "act", "next_obs"):
            if len(shapes[name]) != 2:
                raise ValueError(f"Transitions.{name} must be 2-D [N, dim], got shape {shapes[name]}")
        for name in ("reward", "terminated", "truncated"):
            if len(shapes[name]) != 1:
                raise ValueError(f"Transitions.{name} must be 1-D [N], got shape {shapes[name]}")
        if shapes["obs"] != shapes["next_obs"]:
            raise ValueError(
                f"Transitions.obs and next_obs must have the same shape, got {shapes['obs']} and {shapes['next_obs']}"
            )
        lengths = {name: shape[0] for name, shape in shapes.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"Transitions fields must share the leading length N, got shapes {shapes}")

    def __len__(self) -> int:
        return self.obs.shape[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transitions):
            return NotImplemented
        return all(torch.equal(getattr(self, n), getattr(other, n)) for n in _TENSOR_FIELDS)

    __hash__ = None  # mutable tensors inside; not hashable

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[1]

    @property
    def act_dim(self) -> int:
        return self.act.shape[1]

    def _map(self, fn) -> Transitions:
        return Transitions(**{n: fn(getattr(self, n)) for n in _TENSOR_FIELDS}, meta=dict(self.meta))

    def __getitem__(self, idx: slice | torch.Tensor | Sequence[int] | np.ndarray) -> Transitions:
        """Select rows with a slice, a 1-D integer index tensor or a 1-D bool mask."""
        if isinstance(idx, (int, np.integer)):
            raise TypeError("Transitions index must be a slice or 1-D index/mask tensor, not an int (use t[i:i+1])")
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx)
            if idx.dim() != 1:
                raise ValueError(f"Transitions index tensor must be 1-D, got shape {tuple(idx.shape)}")
            idx = idx.to(self.obs.device)
        return self._map(lambda t: t[idx])

    def to(self, device: torch.device | str) -> Transitions:
        """Return a copy with every tensor on `device`."""
        return self._map(lambda t: t.to(device, copy=True))

    def split(self, test_fraction: float, seed: int = 0) -> tuple[Transitions, Transitions]:
        """Random (seeded) split into (train, test); rows keep their original order."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        n = len(self)
        n_test = int(round(n * test_fraction))
        if n_test == 0 or n_test == n:
            raise ValueError(f"test_fraction={test_fraction} on {n} rows leaves an empty part ({n - n_test} train, {n_test} test)")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values
        return self[train_idx], self[test_idx]

    @classmethod
    def concat(cls, parts: Sequence[Transitions]) -> Transitions:
        """Concatenate along N; the result keeps the first part's meta."""
        parts = list(parts)
        if not parts:
            raise ValueError("Transitions.concat needs at least one part")
        return cls(**{n: torch.cat([getattr(p, n) for p in parts]) for n in _TENSOR_FIELDS}, meta=dict(parts[0].meta))

    def save(self, path: str | Path) -> Path:
        """Write to a compressed .npz at exactly `path` (meta stored as a JSON string)."""
        path = Path(path)
        arrays = {n: getattr(self, n).detach().cpu().numpy() for n in _TENSOR_FIELDS}
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays, meta=np.array(json.dumps(self.meta)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Transitions:
        """Read a file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no transitions file at '{path}'")
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in _TENSOR_FIELDS if n not in data.files]
            if missing:
                raise ValueError(f"transitions file '{path}' is missing keys {missing}")
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            return cls(**{n: torch.from_numpy(data[n]) for n in _TENSOR_FIELDS}, meta=meta)


def _action_encoder(space: gym.Space, env_id: str):
    """Return (fn mapping a batch of actions to a float32 [B, act_dim] array, discrete flag)."""
    if isinstance(space, gym.spaces.Box):
        return (lambda a: np.asarray(a, dtype=np.float32).reshape(len(a), -1)), False
    if isinstance(space, gym.spaces.Discrete):
        eye = np.eye(int(space.n), dtype=np.float32)
        return (lambda a: eye[np.asarray(a) - int(space.start)]), True
    raise ValueError(f"unsupported action space {space} for '{env_id}' (only Box and Discrete)")


def collect(
    env_id: str,
    steps: int,
    seed: int = 0,
    *,
    num_envs: int = 1,
    max_episode_steps: int | None = None,
) -> Transitions:
    """Collect exactly `steps` transitions from `env_id` under a uniformly random policy.

    Runs `num_envs` synchronous copies in SAME_STEP autoreset mode, so the next_obs of a
    terminated/truncated row is the true final observation (never the reset one) and no
    bogus reset transitions appear. Rows are time-major: row t*num_envs + i is step t of
    env i, so each env's stream is rows i::num_envs. The same seed gives identical data.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    make_kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    try:
        env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            **make_kwargs,
        )
    except (gym.error.UnregisteredEnv, gym.error.DeprecatedEnv) as e:
        raise ValueError(f"unknown environment '{env_id}'") from e

    try:
        if not isinstance(env.single_observation_space, gym.spaces.Box):
            raise ValueError(
                f"unsupported observation space {env.single_observation_space} for '{env_id}' (only Box)"
            )
        encode, discrete = _action_encoder(env.single_action_space, env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        buf: dict[str, list[np.ndarray]] = {n: [] for n in _TENSOR_FIELDS}
        for _ in range(-(-steps // num_envs)):
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, info = env.step(action)
            real_next = np.array(next_obs, copy=True)
            if "_final_obs" in info:  # done envs: next_obs is already the reset obs
                done = np.flatnonzero(info["_final_obs"])
                real_next[done] = np.stack([info["final_obs"][i] for i in done])
            buf["obs"].append(np.asarray(obs).reshape(num_envs, -1))
            buf["act"].append(encode(action))
            buf["next_obs"].append(real_next.reshape(num_envs, -1))
            buf["reward"].append(reward)
            buf["terminated"].append(terminated)
            buf["truncated"].append(truncated)
            obs = next_obs
    finally:
        env.close()

    dtypes = {"reward": np.float32, "terminated": np.bool_, "truncated": np.bool_}
    tensors = {
        n: torch.from_numpy(np.concatenate(v).astype(dtypes.get(n, np.float32), copy=False)[:steps])
        for n, v in buf.items()
    }
    meta = {"env_id": env_id, "seed": seed, "discrete": discrete, "num_envs": num_envs,
            "max_episode_steps": max_episode_steps}
    return Transitions(**tensors, meta=meta)
