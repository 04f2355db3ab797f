"""``intrinsic: {type: empowerment, ...}``: K-step empowerment of the state reached, as the reward
(Mohamed & Rezende 2015, "Variational Information Maximisation for Intrinsically Motivated RL").

    intrinsic:
      type: empowerment
      eta: 1.0                 # r' = r + η(t)·E(s')
      horizon: 3               # K: empowerment over K-step action sequences
      channel: gridworld       # gridworld (default), pendulum (the known simulator) or learned
      # channel: gridworld
      method: exact            # exact: Blahut–Arimoto; variational: a fitted pprl.Empowerment
      layout: [...]            # the gridworld's map (default: pprl/GridRoom-v0's 7×7 room)
      slip: 0.0                # its slip probability
      # channel: pendulum or learned (continuous actions; see pprl.empowerment.continuous)
      method: linearised       # linearised: water-filling on the tangent channel; or variational
      noise: final             # where the channel's Gaussian noise enters: final (sensor) or step
      action_repeat: 1         # each of the K actions held this many env steps
      power: null              # linearised: E‖a_k − ā‖² per action (default: a uniform box's Σ(high−low)²/12)
      nominal_points: 1        # linearised: tangent at the box's centre (1), or the best of n constant torques
      noise_std: 0.05          # pendulum: σ on (θ, θ̇); learned: σ on the observation reached
                               # (default null: the model's own noise, times noise_scale)
      model: bnn_dynamics      # learned: the dynamics model and its family, fitted online
      family: mean_field
      action_low: [-2.0]       # learned: the environment's action box
      action_high: [2.0]
      noise_scale: 1.0         # learned: multiplies the model's noise scale
      initial_fit_steps: 500   # learned: SVI steps of the first fit; refit_steps after each iteration
      refit_steps: 100
      replay_size: 100000

Gridworld: the channel p(s_K | s, a_{1:K}) is ``GridWorld(layout, slip)``: the block declares the
map the agent's environment (``pprl/GridRoom-v0``, observations = scaled (row, col)) runs on. A
block whose map or slip is not the environment's is a :class:`SpecError` on the first batch that
shows it: an observation that is no free cell of the declared map, or a transition (s, a, s') the
declared channel gives probability 0 (the plug-in does not see ``env_kwargs``, so this is checked
on the data; a declared slip > 0 where the env's differs cannot show itself this way).

Pendulum and learned: see :class:`~pprl.rl.intrinsic.empowerment_continuous.ContinuousEmpowerment`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ...data import Transitions
from ...empowerment import ACTIONS, Empowerment, GridWorld, exact
from ...empowerment.continuous import NOISE
from ...spec import InferenceSpec, ModelSpec, SpecError, _check_choice, _check_positive, _check_type
from ..envs.grid_room import ROOM_7X7, obs_to_cells
from ..registry import resolve_spec
from .base import Health, IntrinsicSpec

CHANNELS = ("gridworld", "pendulum", "learned")
METHODS = {"gridworld": ("exact", "variational"), "pendulum": ("linearised", "variational"),
           "learned": ("linearised", "variational")}
_GRID = ("layout", "slip", "tol")
_CONTINUOUS = ("noise", "action_repeat", "power", "nominal_points")
ONLY = {"gridworld": _GRID, "pendulum": (*_CONTINUOUS, "noise_std"),
        "learned": (*_CONTINUOUS, "noise_std", "model", "family", "action_low", "action_high", "noise_scale", "theta",
                    "initial_fit_steps", "refit_steps", "replay_size")}


@dataclass(frozen=True)
class EmpowermentSpec(IntrinsicSpec):
    """The channel, the horizon K and how E(s) is computed (module docstring). Gridworld:
    ``exact`` (Blahut–Arimoto to ``tol`` nats) or ``variational`` (``pprl.Empowerment`` trained for
    ``fit_steps`` steps, evaluated with ``num_samples`` draws per cell). Continuous channels:
    ``linearised`` (:func:`~pprl.empowerment.continuous.linearised_empowerment`) or ``variational``
    (``fit_steps`` estimator steps after each iteration, ``num_samples`` draws per state)."""

    type: ClassVar[str] = "empowerment"
    horizon: int = 3
    channel: str = "gridworld"
    method: str | None = None           # default: exact (gridworld) or linearised (continuous)
    layout: tuple[str, ...] = ROOM_7X7
    slip: float = 0.0
    fit_steps: int = 2000
    num_samples: int = 4096
    tol: float = 1e-7
    noise: str = "final"
    action_repeat: int = 1
    power: float | None = None
    nominal_points: int = 1
    noise_std: float | None = None      # pendulum: 0.05 when not declared; learned: None = the model's noise
    model: ModelSpec | None = None
    inference: InferenceSpec | None = None
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    noise_scale: float = 1.0
    theta: str = "mean"
    initial_fit_steps: int = 500
    refit_steps: int = 100
    replay_size: int = 100_000

    def __post_init__(self):
        if self.method is None:
            object.__setattr__(self, "method", METHODS[self.channel][0])
        if self.channel == "pendulum" and self.noise_std is None:
            object.__setattr__(self, "noise_std", 0.05)
        if self.channel == "learned" and self.noise_std is not None and self.noise_scale != 1.0:
            raise SpecError("fields 'intrinsic.noise_std' and 'intrinsic.noise_scale': noise_std declares the "
                            "channel's noise, noise_scale scales the model's own; set one")
        if self.nominal_points != 1 and self.method != "linearised":
            raise SpecError(f"field 'intrinsic.nominal_points' applies to method 'linearised', not {self.method!r}")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(dict.fromkeys(("type", "eta", "eta_schedule", "horizon", "channel", "method", "fit_steps",
                                    "num_samples", *_GRID, *_CONTINUOUS, *ONLY["pendulum"], *ONLY["learned"])))

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None) -> "EmpowermentSpec":
        out = cls._common(data, src)
        channel = _check_choice(_check_type(data.get("channel", "gridworld"), str, "intrinsic.channel", src),
                                CHANNELS, "intrinsic.channel", src)
        out["channel"] = channel
        for name in set(data) - set(ONLY[channel]):
            owners = [c for c, names in ONLY.items() if name in names]
            if owners:
                raise SpecError(f"{src}: field 'intrinsic.{name}' applies to channel {' or '.join(owners)}, "
                                f"not {channel!r}")
        for name in ("horizon", "fit_steps", "num_samples", "action_repeat", "nominal_points", "initial_fit_steps",
                     "replay_size"):
            if name in data:
                out[name] = _check_positive(_check_type(data[name], int, f"intrinsic.{name}", src),
                                            f"intrinsic.{name}", src)
        if "refit_steps" in data:
            out["refit_steps"] = _check_positive(_check_type(data["refit_steps"], int, "intrinsic.refit_steps", src),
                                                 "intrinsic.refit_steps", src, strict=False)
        if "method" in data:
            out["method"] = _check_choice(_check_type(data["method"], str, "intrinsic.method", src), METHODS[channel],
                                          "intrinsic.method", src)
        for name in ("slip", "tol", "noise_std", "noise_scale"):
            if data.get(name) is not None:
                out[name] = _check_type(data[name], float, f"intrinsic.{name}", src)
        if "slip" in out and not 0 <= out["slip"] <= 1:
            raise SpecError(f"{src}: field 'intrinsic.slip' must be in [0, 1], got {out['slip']!r}")
        for name in ("tol", "noise_std", "noise_scale"):
            if name in out:
                _check_positive(out[name], f"intrinsic.{name}", src)
        if data.get("power") is not None:
            out["power"] = _check_positive(_check_type(data["power"], float, "intrinsic.power", src), "intrinsic.power",
                                           src)
        if "noise" in data:
            out["noise"] = _check_choice(_check_type(data["noise"], str, "intrinsic.noise", src), NOISE,
                                         "intrinsic.noise", src)
        if "theta" in data:
            out["theta"] = _check_choice(_check_type(data["theta"], str, "intrinsic.theta", src), ("mean", "sample"),
                                         "intrinsic.theta", src)
        if "layout" in data:
            layout = data["layout"]
            if (not isinstance(layout, (list, tuple)) or not layout or not all(isinstance(r, str) for r in layout)
                    or len({len(r) for r in layout}) != 1 or all(ch == "#" for r in layout for ch in r)):
                raise SpecError(f"{src}: field 'intrinsic.layout' must be a list of equally long strings "
                                f"('#' wall, '.' free) with a free cell, got {layout!r}")
            out["layout"] = tuple(layout)
        if channel == "learned":
            for required in ("model", "family", "action_low", "action_high"):
                if required not in data:
                    raise SpecError(f"{src}: field 'intrinsic.{required}' is required for channel 'learned'")
            out["model"] = resolve_spec(data["model"], "model", "intrinsic.model", src, base)
            out["inference"] = resolve_spec(data["family"], "inference", "intrinsic.family", src, base)
            if out["model"].likelihood.type != "normal":
                raise SpecError(f"{src}: field 'intrinsic.model': a learned channel needs a Gaussian likelihood, "
                                f"the model has {out['model'].likelihood.type!r}")
            for name in ("action_low", "action_high"):
                value = data[name]
                if (not isinstance(value, (list, tuple)) or not value
                        or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in value)):
                    raise SpecError(f"{src}: field 'intrinsic.{name}' must be a list of finite numbers, got {value!r}")
                out[name] = tuple(float(v) for v in value)
            if (len(out["action_low"]) != len(out["action_high"])
                    or not all(lo < hi for lo, hi in zip(out["action_low"], out["action_high"]))):
                raise SpecError(f"{src}: fields 'intrinsic.action_low'/'action_high' must have equal lengths and "
                                f"low < high, got {out['action_low']} and {out['action_high']}")
        try:
            return cls(**out)
        except SpecError as exc:  # the cross-field checks of __post_init__, with the file named
            raise SpecError(f"{src}: {exc}") from None

    def to_dict(self) -> dict:
        out = {**super().to_dict(), "horizon": self.horizon, "channel": self.channel, "method": self.method,
               "fit_steps": self.fit_steps, "num_samples": self.num_samples}
        if self.channel == "gridworld":
            return {**out, "layout": list(self.layout), "slip": self.slip, "tol": self.tol}
        out.update(noise=self.noise, action_repeat=self.action_repeat, power=self.power,
                   nominal_points=self.nominal_points)
        if self.channel == "pendulum":
            return {**out, "noise_std": self.noise_std}
        return {**out, "model": self.model.to_dict(), "family": self.inference.to_dict(),
                "action_low": list(self.action_low), "action_high": list(self.action_high),
                "noise_std": self.noise_std, "noise_scale": self.noise_scale, "theta": self.theta, "initial_fit_steps": self.initial_fit_steps,
                "refit_steps": self.refit_steps, "replay_size": self.replay_size}


class EmpowermentReward:
    """r_int(s, a, s') = E_K(s'), the K-step empowerment of the cell reached, in nats:
    E_K(s) = max_ω I(a_{1:K}; s_K | s), the capacity of the gridworld's K-step channel. ``exact``:
    Blahut–Arimoto over the |A|^K sequences (the capacity itself, to ``tol``); ``variational``:
    Mohamed & Rezende's bound H(ω) + E[log q(a|s, s_K)] from a fitted :class:`pprl.Empowerment`
    (a lower bound up to Monte-Carlo error). Either way one table over cells, computed once at
    construction; ``reward`` is one batched lookup and ``update`` learns nothing.

    Health: ``empowerment``, the batch's mean E(s') (it rises as the agent learns to stay where
    it has the most options).

    The registry holds one class per ``type``; a block with ``channel: pendulum`` or ``learned``
    constructs a :class:`~pprl.rl.intrinsic.empowerment_continuous.ContinuousEmpowerment`
    instead (``__new__``), which has the same plug-in methods."""

    spec_class = EmpowermentSpec
    health = {"empowerment": Health("mean empowerment of s' (nats)", "emp")}

    def __new__(cls, spec: EmpowermentSpec, *args, **kwargs):
        if cls is EmpowermentReward and spec.channel != "gridworld":  # continuous channels: their own class
            from .empowerment_continuous import ContinuousEmpowerment
            return ContinuousEmpowerment(spec, *args, **kwargs)
        return super().__new__(cls)

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
