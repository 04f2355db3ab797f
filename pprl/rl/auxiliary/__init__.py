"""Auxiliary losses, the AuxiliaryLoss plug-in (``auxiliary: [{type: ..., weight: ...}]`` in an
experiment): terms the learner adds to its loss on its own minibatches.

To add one: a module with the term's class (the :class:`AuxiliaryLoss` protocol) and its spec class
(``spec_class``, a subclass of :class:`AuxiliarySpec`), plus one line in ``AUXILIARY``.
"""
from .base import AuxiliaryLoss, AuxiliarySpec
from .driml import DRIML, DRIMLSpec

AUXILIARY: dict[str, type] = {"driml": DRIML}


def make_auxiliary(spec: AuxiliarySpec, learner, *, seed: int = 0, device="cpu"):
    """The auxiliary loss an ``auxiliary:`` entry declares, for ``learner``."""
    return AUXILIARY[spec.type](spec, learner, seed=seed, device=device)


__all__ = ["AUXILIARY", "AuxiliaryLoss", "AuxiliarySpec", "DRIML", "DRIMLSpec", "make_auxiliary"]
