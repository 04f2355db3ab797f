"""The Learner plug-in: what ``pprl.train``'s loop asks of a policy learner.

    rollout = learner.collect()                                 act in the envs: N = T × E transitions
    stats   = learner.update(rollout, rewards, aux_losses)      learn from r + η·r_int (and auxiliary terms)

An on-policy learner (PPO) learns from this rollout alone; an off-policy one (SAC) adds it,
with its combined rewards, to a replay buffer it owns and learns from that: the loop is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence

import numpy as np
from torch import Tensor

from ...data import Transitions

if TYPE_CHECKING:
    from ..auxiliary.base import AuxiliaryLoss


class Rollout(Protocol):
    """What a learner's ``collect`` returns; a learner's own rollout type adds what it needs."""

    transitions: Transitions  # the N = T·E transitions taken, time-major (row t·E + i: step t of env i)
    rewards: Tensor           # [T, E] their extrinsic rewards (``rewards.reshape(-1)`` lines up with the rows)
    episodes: list[dict]      # episodes finished in it: {"return", "length", "success"}


@dataclass
class Minibatch:
    """What an auxiliary loss sees of a learner's minibatch."""

    obs: Tensor      # [B, obs_dim] the inputs the learner's networks see (normalised observations)
    actions: Tensor  # [B, ...] the actions taken, as the learner samples them
    index: Tensor    # [B] rows of ``rollout.transitions`` (row t·E + i: step t of env i)
    rollout: Rollout


class LearnerSpec(Protocol):
    """A learner's ``learner:`` block (e.g. :class:`PPOConfig`)."""

    type: ClassVar[str]
    total_steps: int  # the training budget in env steps

    @property
    def steps_per_iteration(self) -> int: ...  # env steps one ``collect`` takes
    @classmethod
    def keys(cls) -> Sequence[str]: ...
    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "LearnerSpec": ...
    def to_dict(self) -> dict: ...
    def validate(self, source: str = "<spec>") -> "LearnerSpec": ...


class Learner(Protocol):
    """A policy learner on a gymnasium environment, built as ``cls(env_id, spec, seed=, device=,
    env_kwargs=)``; ``spec_class`` parses its ``learner:`` block."""

    spec_class: ClassVar[type]
    obs_dim: int      # observation width (flattened)
    act_dim: int      # encoded action width (one-hot for Discrete)
    global_step: int  # env steps taken so far (all envs)

    def collect(self) -> Rollout: ...
    def update(self, rollout: Rollout, rewards: Tensor | None = None,
               aux_losses: Sequence[AuxiliaryLoss] = ()) -> dict[str, float]: ...
    def features(self, obs: Tensor) -> Tensor: ...  # the representation the policy acts on
    def evaluate(self, episodes: int = 10, seed: int = 10_000) -> np.ndarray: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def close(self) -> None: ...
