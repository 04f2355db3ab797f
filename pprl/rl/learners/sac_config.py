"""``SACConfig``: every SAC hyperparameter, with what the ``learner:`` block may set it to."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...spec import SpecError
from .config import _BOOL, _FLOAT, _INT, _INTS, LearnerConfig, _field


@dataclass
class SACConfig(LearnerConfig):
    """Every SAC hyperparameter. One iteration = ``num_steps`` steps in each of ``num_envs`` envs,
    then ``updates_per_step`` gradient steps per env step taken (once ``learning_starts`` steps are in
    the buffer)."""

    type: ClassVar[str] = "sac"

    num_envs: int = _field(1, _INT, lambda v: v >= 1, "an integer >= 1")
    """Parallel environment copies (gymnasium sync vector env)."""
    num_steps: int = _field(256, _INT, lambda v: v >= 1, "an integer >= 1")
    """Env steps per environment per iteration (then the gradient steps of that iteration)."""
    total_steps: int = _field(100_000, _INT, lambda v: v >= 1, "an integer >= 1")
    """Training budget in env steps (all envs)."""
    learning_starts: int = _field(5_000, _INT, lambda v: v >= 0, "an integer >= 0")
    """Env steps of uniformly random actions before the policy acts and before any update."""
    buffer_size: int = _field(1_000_000, _INT, lambda v: v >= 1, "an integer >= 1")
    """Replay buffer capacity (FIFO)."""
    batch_size: int = _field(256, _INT, lambda v: v >= 1, "an integer >= 1")
    """Transitions per gradient step."""
    updates_per_step: float = _field(1.0, _FLOAT, lambda v: v > 0, "a number > 0")
    """Gradient steps per env step (the update-to-data ratio)."""
    gamma: float = _field(0.99, _FLOAT, lambda v: 0 <= v <= 1, "a number in [0, 1]")
    """Discount factor γ."""
    tau: float = _field(0.005, _FLOAT, lambda v: 0 < v <= 1, "a number in (0, 1]")
    """Polyak averaging rate of the target critics."""
    policy_lr: float = _field(3e-4, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size of the actor (and of log α)."""
    q_lr: float = _field(1e-3, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size of the twin critics."""
    policy_frequency: int = _field(2, _INT, lambda v: v >= 1, "an integer >= 1")
    """Delayed actor updates: every this many critic steps, this many actor steps (TD3-style, as CleanRL)."""
    alpha: float = _field(0.2, _FLOAT, lambda v: v > 0, "a number > 0")
    """Entropy temperature α (the initial value when autotune)."""
    autotune: bool = _field(True, _BOOL, None, "true, false")
    """Tune α so that the policy's entropy tracks the target −dim(A) (Haarnoja et al. 2018b)."""
    hidden_sizes: tuple[int, ...] = _field((256, 256), _INTS, lambda v: len(v) >= 1 and all(s >= 1 for s in v),
                                           "a non-empty list of integers >= 1")
    """Hidden layer widths of the actor and of each critic (ReLU)."""
    max_episode_steps: int | None = _field(None, _INT, lambda v: v >= 1, "null or an integer >= 1", optional=True)
    """Time limit passed to gym.make when set."""

    def _validate_more(self, source: str) -> None:
        if self.batch_size > self.buffer_size:
            raise SpecError(f"{source}: field 'learner.batch_size': got {self.batch_size}; allowed: an integer in "
                            f"[1, buffer_size = {self.buffer_size}]")
