"""``intrinsic: {type: empowerment, ...}``: K-step empowerment of the state reached, as the reward
(Mohamed & Rezende 2015, "Variational Information Maximisation for Intrinsically Motivated RL").

    intrinsic:
      type: empowerment
      eta: 1.0                 # r' = r + η(t)·E(s')
      horizon: 3               # K: empowerment over K-step action sequences (|A|^K of them)
      method: exact            # exact: Blahut–Arimoto; variational: a fitted pprl.Empowerment
      layout: [...]            # the gridworld's map (default: pprl/GridRoom-v0's 7×7 room)
      slip: 0.0                # its slip probability

The channel p(s_K | s, a_{1:K}) is ``GridWorld(layout, slip)``: the block declares the map the
agent's environment (``pprl/GridRoom-v0``, observations = scaled (row, col)) runs on. A block
whose map or slip is not the environment's is a :class:`SpecError` on the first batch that shows
it: an observation that is no free cell of the declared map, or a transition (s, a, s') the
declared channel gives probability 0 (the plug-in does not see ``env_kwargs``, so this is checked
on the data; a declared slip > 0 where the env's differs cannot show itself this way).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ...data import Transitions
from ...empowerment import ACTIONS, Empowerment, GridWorld, exact
from ...spec import SpecError, _check_choice, _check_positive, _check_type
from ..envs.grid_room import ROOM_7X7, obs_to_cells
from .base import Health, IntrinsicSpec

METHODS = ("exact", "variational")


@dataclass(frozen=True)
class EmpowermentSpec(IntrinsicSpec):
    """The channel (``layout``, ``slip``), the horizon K and how the per-cell table is computed:
    ``exact`` (Blahut–Arimoto to ``tol`` nats) or ``variational`` (``pprl.Empowerment`` trained for
    ``fit_steps`` steps, evaluated with ``num_samples`` draws per cell)."""

    type: ClassVar[str] = "empowerment"
    horizon: int = 3
    method: str = "exact"
    layout: tuple[str, ...] = ROOM_7X7
    slip: float = 0.0
    fit_steps: int = 2000
    num_samples: int = 4096
    tol: float = 1e-7

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return ("type", "eta", "eta_schedule", "horizon", "method", "layout", "slip", "fit_steps", "num_samples",
                "tol")

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None) -> "EmpowermentSpec":
        out = cls._common(data, src)
        for name in ("horizon", "fit_steps", "num_samples"):
            if name in data:
                out[name] = _check_positive(_check_type(data[name], int, f"intrinsic.{name}", src),
                                            f"intrinsic.{name}", src)
        if "method" in data:
            out["method"] = _check_choice(_check_type(data["method"], str, "intrinsic.method", src), METHODS,
                                          "intrinsic.method", src)
        for name in ("slip", "tol"):
            if name in data:
                out[name] = _check_type(data[name], float, f"intrinsic.{name}", src)
        if "slip" in out and not 0 <= out["slip"] <= 1:
            raise SpecError(f"{src}: field 'intrinsic.slip' must be in [0, 1], got {out['slip']!r}")
        if "tol" in out:
            _check_positive(out["tol"], "intrinsic.tol", src)
        if "layout" in data:
            layout = data["layout"]
            if (not isinstance(layout, (list, tuple)) or not layout or not all(isinstance(r, str) for r in layout)
                    or len({len(r) for r in layout}) != 1 or all(ch == "#" for r in layout for ch in r)):
                raise SpecError(f"{src}: field 'intrinsic.layout' must be a list of equally long strings "
                                f"('#' wall, '.' free) with a free cell, got {layout!r}")
            out["layout"] = tuple(layout)
        return cls(**out)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "horizon": self.horizon, "method": self.method, "layout": list(self.layout),
                "slip": self.slip, "fit_steps": self.fit_steps, "num_samples": self.num_samples, "tol": self.tol}


class EmpowermentReward:
    """r_int(s, a, s') = E_K(s'), the K-step empowerment of the cell reached, in nats:
    E_K(s) = max_ω I(a_{1:K}; s_K | s), the capacity of the gridworld's K-step channel. ``exact``:
    Blahut–Arimoto over the |A|^K sequences (the capacity itself, to ``tol``); ``variational``:
    Mohamed & Rezende's bound H(ω) + E[log q(a|s, s_K)] from a fitted :class:`pprl.Empowerment`
    (a lower bound up to Monte-Carlo error). Either way one table over cells, computed once at
    construction; ``reward`` is one batched lookup and ``update`` learns nothing.

    Health: ``empowerment``, the batch's mean E(s') (it rises as the agent learns to stay where
    it has the most options)."""

    spec_class = EmpowermentSpec
    health = {"empowerment": Health("mean empowerment of s' (nats)", "emp")}

    def __init__(self, spec: EmpowermentSpec, obs_dim: int = 2, act_dim: int = len(ACTIONS), *, seed: int = 0,
                 device="cpu"):
        self.spec, self.device = spec, torch.device(device)
        if obs_dim != 2 or act_dim != len(ACTIONS):
            raise SpecError(f"intrinsic.type 'empowerment' needs a gridworld environment (observations (row, col), "
                            f"{len(ACTIONS)} actions), got obs_dim {obs_dim} and act_dim {act_dim}")
        self.grid = GridWorld(list(spec.layout), spec.slip)
        if spec.method == "exact":
            table = exact(self.grid, spec.horizon, tol=spec.tol).capacity
        else:
            estimator = Empowerment(self.grid, spec.horizon, seed=seed, device=self.device)
            estimator.fit(spec.fit_steps, progress=False)
            table = estimator(torch.arange(len(self.grid.cells)), num_samples=spec.num_samples)
        self.table = table.detach().to("cpu", torch.float32)  # [S] nats
        self.stats: dict[str, float] = {}

    def cells(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations ``[N, 2]`` → cell indices ``[N]``; a SpecError if one is no free cell of the map."""
        cells = torch.from_numpy(obs_to_cells(obs.detach().cpu().numpy(), self.spec.layout))
        if len(cells) and bool((cells < 0).any()):
            bad = obs[int((cells < 0).nonzero()[0, 0])].tolist()
            raise SpecError(f"intrinsic.layout: observation {bad} is no free cell of the declared layout "
                            f"({len(self.spec.layout)}×{len(self.spec.layout[0])}); the block must declare the "
                            f"environment's layout (env_kwargs.layout)")
        return cells

    def _check_channel(self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor) -> None:
        p = self.grid.kernel[s, a, s_next]
        if len(p) and bool((p <= 0).any()):
            i = int((p <= 0).nonzero()[0, 0])
            raise SpecError(f"intrinsic.layout/slip: the transition {self.grid.cells[int(s[i])]} --"
                            f"{ACTIONS[int(a[i])]}--> {self.grid.cells[int(s_next[i])]} has probability 0 under "
                            f"the declared channel (slip {self.spec.slip:g}); the block must declare the "
                            f"environment's layout and slip (env_kwargs)")

    def reward(self, transitions: Transitions) -> torch.Tensor:
        """E_K(s') of each transition → ``[N]`` (CPU float32, nats)."""
        s_next = self.cells(transitions.next_obs)
        self._check_channel(self.cells(transitions.obs), transitions.act.detach().cpu().argmax(-1), s_next)
        r = self.table[s_next]
        self.stats = {"empowerment": float(r.mean()) if len(r) else float("nan")}
        return r

    def update(self, transitions: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {"table": self.table.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.table = state["table"].clone().float()
