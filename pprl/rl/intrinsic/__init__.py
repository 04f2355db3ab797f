"""Exploration bonuses, the IntrinsicReward plug-in (``intrinsic: {type: ...}`` in an experiment).

To add one: a module with the bonus class (the :class:`IntrinsicReward` protocol: ``reward``,
``update``, ``stats``, ``health``, ``state_dict``) and its spec class (``spec_class``, a subclass of
:class:`IntrinsicSpec`: the ``intrinsic:`` block), plus one line in ``INTRINSICS``.
"""
from .base import ETA_SCHEDULES, Health, IntrinsicReward, IntrinsicSpec
from .empowerment import EmpowermentReward, EmpowermentSpec
from .none import NoBonus, NoBonusSpec
from .vime import VIME, VIMEHealthWarning, VIMESpec

INTRINSICS: dict[str, type] = {
    "none": NoBonus,
    "vime": VIME,
    "empowerment": EmpowermentReward,
}


def make_intrinsic(spec: IntrinsicSpec, obs_dim: int, act_dim: int, *, seed: int = 0, device="cpu"):
    """The intrinsic reward an experiment's ``intrinsic:`` block declares."""
    return INTRINSICS[spec.type](spec, obs_dim, act_dim, seed=seed, device=device)


__all__ = ["INTRINSICS", "ETA_SCHEDULES", "EmpowermentReward", "EmpowermentSpec", "Health", "IntrinsicReward",
           "IntrinsicSpec", "NoBonus", "NoBonusSpec", "VIME", "VIMEHealthWarning", "VIMESpec", "make_intrinsic"]
