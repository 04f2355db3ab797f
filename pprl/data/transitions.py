"""The `Transitions` container: N transitions as tensors (split, concat, .npz save/load)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

_TENSOR_FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated")


@dataclass(frozen=True, eq=False)
class Transitions:
    """A batch of N transitions stored as torch tensors sharing the leading length N.

    obs, next_obs: [N, obs_dim] float32; act: [N, act_dim] float32 (discrete actions
    one-hot); reward: [N] float32; terminated, truncated: [N] bool. A dynamics model reads only
    obs, act and next_obs: left out, reward is 0 and the flags False. `meta` is a free
    dict (env_id, seed, discrete, ...) that is saved but ignored by equality.
    """

    obs: torch.Tensor
    act: torch.Tensor
    next_obs: torch.Tensor
    reward: torch.Tensor | None = None
    terminated: torch.Tensor | None = None
    truncated: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = self.obs.shape[0] if isinstance(self.obs, torch.Tensor) and self.obs.dim() else 0
        device = self.obs.device if isinstance(self.obs, torch.Tensor) else None
        for name, dtype in (("reward", torch.float32), ("terminated", torch.bool), ("truncated", torch.bool)):
            if getattr(self, name) is None:  # frozen dataclass: set the default once, here
                object.__setattr__(self, name, torch.zeros(n, dtype=dtype, device=device))
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
        """Read an .npz written by `save` (or by numpy.savez with the same keys): float arrays
        obs, act, next_obs [N, d] and reward [N], bool arrays terminated, truncated [N]. Floating
        arrays are read as float32. Every problem is a FileNotFoundError or ValueError naming the file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no transitions file at '{path}'")
        expected = ("obs, act, next_obs [N, d] (floating point); optional: reward [N] (floating point), "
                    "terminated, truncated [N] (bool)")
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            data = None
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: not an .npz archive of transitions; expected arrays {expected}")
        with data:
            missing = [n for n in ("obs", "act", "next_obs") if n not in data.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {', '.join(missing)}; expected {expected}")
            arrays = {}
            for name in [n for n in _TENSOR_FIELDS if n in data.files]:
                try:
                    a = data[name]
                except (ValueError, OSError, EOFError, zipfile.BadZipFile):  # object arrays, damaged members
                    raise ValueError(f"{path}: array '{name}' is not a plain numeric array; expected {expected}") from None
                flag = name in ("terminated", "truncated")
                if flag and a.dtype != np.bool_ or not flag and not np.issubdtype(a.dtype, np.floating):
                    raise ValueError(f"{path}: array '{name}' has dtype {a.dtype}; expected {expected}")
                arrays[name] = torch.from_numpy(a if flag else a.astype(np.float32, copy=False))
            try:
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
            except (ValueError, OSError, EOFError, zipfile.BadZipFile):
                raise ValueError(f"{path}: array 'meta' is not the JSON string `save` writes") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: array 'meta' is not the JSON string of a mapping that `save` writes")
        try:
            return cls(**arrays, meta=meta)
        except ValueError as exc:  # shapes
            raise ValueError(f"{path}: {exc}") from None
