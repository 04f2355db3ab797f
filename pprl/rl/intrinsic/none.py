"""``intrinsic: {type: none}``: no bonus, the learner alone (the baseline of every bonus)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ...data import Transitions
from .base import IntrinsicSpec
from .vime import VIME


@dataclass(frozen=True)
class NoBonusSpec(IntrinsicSpec):
    """No fields besides the type: η = 0."""

    type: ClassVar[str] = "none"

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return ("type",)

    def to_dict(self) -> dict:
        return {"type": self.type}


class NoBonus:
    """r_int = 0: plain PPO. As VIME's baseline it reports VIME's health keys, empty (an
    ``info_gain`` column of NaN in metrics.csv, ``final_info_gain: null`` in summary.json), so the
    outputs of a run with and without the bonus line up column for column."""

    spec_class = NoBonusSpec
    health = VIME.health

    def __init__(self, spec: NoBonusSpec | None = None, obs_dim: int = 0, act_dim: int = 0, *, seed: int = 0,
                 device="cpu"):
        self.stats: dict[str, float] = {"info_gain": math.nan}

    def reward(self, transitions: Transitions) -> torch.Tensor:
        return torch.zeros(len(transitions))

    def update(self, transitions: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
