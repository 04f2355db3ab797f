"""The AuxiliaryLoss plug-in: a term added to the learner's loss on its own minibatches.

    loss = learner's loss + Σ_k term_k(minibatch),  term_k, stats_k = aux_k.loss(minibatch, learner)

A term sees the minibatch (:class:`~pprl.rl.learners.base.Minibatch`: the network inputs, actions,
their rows in the rollout) and the learner, whose ``features(obs)`` is the representation the
policy acts on, so the term shapes that encoder (DRIML: InfoNCE between (s_t, a_t) and s_{t+k}).
Its stats are averaged over the update's minibatches and recorded with the learner's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence

from torch import Tensor

from ...spec import SpecError, _check_positive, _check_type

if TYPE_CHECKING:
    from ..learners.base import Learner, Minibatch


@dataclass(frozen=True)
class AuxiliarySpec:
    """What every ``auxiliary:`` entry has: the term's ``type`` and its ``weight`` in the loss. A
    term's spec subclasses this with its own fields."""

    type: ClassVar[str]
    weight: float = 1.0

    @classmethod
    def keys(cls) -> Sequence[str]:
        """The keys of this type's ``auxiliary:`` entry."""
        return ("type", "weight")

    @classmethod
    def from_dict(cls, data: dict, src: str = "<dict>", base: Path | None = None,
                  where: str = "auxiliary[0]") -> "AuxiliarySpec":
        """The spec of one ``auxiliary:`` entry (``where`` names it in errors)."""
        return cls(**cls._common(data, src, where))

    @staticmethod
    def _common(data: dict, src: str, where: str) -> dict:
        """The weight (>= 0, finite), where the entry sets it."""
        if "weight" not in data:
            return {}
        weight = _check_positive(_check_type(data["weight"], float, f"{where}.weight", src), f"{where}.weight", src,
                                 strict=False)
        if not math.isfinite(weight):
            raise SpecError(f"{src}: field '{where}.weight' must be finite, got {weight!r}")
        return {"weight": weight}

    def to_dict(self) -> dict:
        """The entry that :meth:`from_dict` reads back."""
        return {"type": self.type, "weight": self.weight}


class AuxiliaryLoss(Protocol):
    """A term on the learner's minibatches, built as ``cls(spec, learner, seed=, device=)``;
    ``spec_class`` parses its ``auxiliary:`` entry."""

    spec_class: ClassVar[type]

    def loss(self, minibatch: Minibatch, learner: Learner) -> tuple[Tensor, dict[str, float]]:
        """The term to add to the learner's loss (weighted by the entry's ``weight``, or with the
        weight on its gradient as DRIML does), and what to record about it."""
    def step(self) -> None:
        """After the learner's optimiser step: apply the gradients its backward pass left on the
        term's own parameters (e.g. a critic), then zero them; nothing if it has none."""
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
