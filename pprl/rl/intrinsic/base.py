"""The IntrinsicReward plug-in: what ``pprl.train``'s loop asks of an exploration bonus.

Any method plugs into the learner through two calls on time-major batches of transitions:

    reward(transitions) -> Tensor[N]     score a batch (one vectorised call)
    update(transitions) -> dict          learn from it (e.g. refit on a replay pool)

and the learner optimises r' = r + η(t)·r_int. ``state_dict``/``load_state_dict`` make a
run resumable; ``stats`` reports what the method measured on the last batch. ``health`` names
the stats and update results that tell whether the method works; the loop shows them in the
progress bar, plots one panel for each and writes ``final_<key>`` to summary.json.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NamedTuple, Protocol, Sequence

import torch

from ...data import Transitions
from ...spec import SpecError, _check_choice, _check_positive, _check_type

ETA_SCHEDULES = ("constant", "linear")


class Health(NamedTuple):
    """How the loop reports one health measure of an intrinsic reward."""

    label: str         # y-axis label of its panel in learning_curve.png
    short: str         # its name in the progress bar
    log: bool = False  # log-scale y axis


@dataclass(frozen=True)
class IntrinsicSpec:
    """What every ``intrinsic:`` block has: the method's ``type`` and the weight η(t) of its reward
    in r' = r + η(t)·r_int (VIME: Houthooft et al. 2016, Algorithm 1). A method's spec subclasses
    this with its own fields."""

    type: ClassVar[str]
    eta: float = 0.0
    eta_schedule: str = "constant"    # or linear: η(t) = η·(1 − t/T)

    def eta_at(self, step: int, total_steps: int) -> float:
        if self.eta_schedule == "linear":
            return self.eta * max(0.0, 1.0 - step / total_steps)
        return self.eta

    @classmethod
    def keys(cls) -> Sequence[str]:
        """The keys of this type's ``intrinsic:`` block."""
        return ("type", "eta", "eta_schedule")

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None) -> "IntrinsicSpec":
        """The spec of an ``intrinsic:`` block (``base``: the experiment file's folder, for paths)."""
        return cls(**cls._common(data, src))

    @staticmethod
    def _common(data: dict, src: str) -> dict:
        """η (>= 0, finite) and its schedule, where the block sets them."""
        out = {}
        if "eta" in data:
            eta = _check_positive(_check_type(data["eta"], float, "intrinsic.eta", src), "intrinsic.eta", src,
                                  strict=False)
            if not math.isfinite(eta):
                raise SpecError(f"{src}: field 'intrinsic.eta' must be finite, got {eta!r}")
            out["eta"] = eta
        if "eta_schedule" in data:
            schedule = _check_type(data["eta_schedule"], str, "intrinsic.eta_schedule", src)
            out["eta_schedule"] = _check_choice(schedule, ETA_SCHEDULES, "intrinsic.eta_schedule", src)
        return out

    def to_dict(self) -> dict:
        """The ``intrinsic:`` block that :meth:`from_dict` reads back."""
        return {"type": self.type, "eta": self.eta, "eta_schedule": self.eta_schedule}


class IntrinsicReward(Protocol):
    """An exploration bonus, built as ``cls(spec, obs_dim, act_dim, seed=, device=)``;
    ``spec_class`` parses its ``intrinsic:`` block."""

    spec_class: ClassVar[type]
    health: ClassVar[dict[str, Health]]
    stats: dict[str, float]

    def reward(self, transitions: Transitions) -> torch.Tensor: ...
    def update(self, transitions: Transitions) -> dict[str, float]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
