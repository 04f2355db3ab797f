"""``intrinsic: {type: none}``: no bonus, the learner alone (the baseline of every bonus)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...data import Transitions
from .base import IntrinsicSpec


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
    """r_int = 0: the learner alone. It measures nothing, so it reports no stats and no health."""

    spec_class = NoBonusSpec
    health: dict = {}

    def __init__(self, spec: NoBonusSpec | None = None, obs_dim: int = 0, act_dim: int = 0, *, seed: int = 0,
                 device="cpu"):
        self.stats: dict[str, float] = {}

    def reward(self, transitions: Transitions) -> torch.Tensor:
        return torch.zeros(len(transitions))

    def update(self, transitions: Transitions) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
