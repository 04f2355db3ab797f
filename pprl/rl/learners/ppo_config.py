"""``PPOConfig``: every PPO hyperparameter, with what the ``learner:`` block may set it to."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from ...spec import SpecError
from .config import _BOOL, _FLOAT, _INT, _INTS, _STR, LearnerConfig, _field


@dataclass
class PPOConfig(LearnerConfig):
    """Every PPO hyperparameter. Batch size = num_envs × num_steps per iteration."""

    type: ClassVar[str] = "ppo"

    num_envs: int = _field(8, _INT, lambda v: v >= 1, "an integer >= 1")
    """Parallel environment copies (gymnasium sync vector env)."""
    num_steps: int = _field(128, _INT, lambda v: v >= 1, "an integer >= 1")
    """Rollout length per environment per iteration."""
    learning_rate: float = _field(3e-4, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size (before annealing)."""
    anneal_lr: bool = _field(True, _BOOL, None, "true, false")
    """Decay the learning rate linearly to 0 at `total_steps` env steps."""
    total_steps: int = _field(200_000, _INT, lambda v: v >= 1, "an integer >= 1")
    """Training budget in env steps (all envs); the default stop of `PPO.learn` and the annealing horizon."""
    gamma: float = _field(0.99, _FLOAT, lambda v: 0 <= v <= 1, "a number in [0, 1]")
    """Discount factor γ."""
    gae_lambda: float = _field(0.95, _FLOAT, lambda v: 0 <= v <= 1, "a number in [0, 1]")
    """GAE λ (bias/variance trade-off of the advantage estimate)."""
    num_minibatches: int = _field(4, _INT, lambda v: v >= 1, "an integer >= 1")
    """Minibatches per epoch (the batch is split into this many shuffled parts)."""
    update_epochs: int = _field(10, _INT, lambda v: v >= 1, "an integer >= 1")
    """Passes over each rollout per update."""
    clip_coef: float = _field(0.2, _FLOAT, lambda v: v > 0, "a number > 0")
    """Surrogate clipping ε (also the value-clipping range when clip_value_loss)."""
    clip_value_loss: bool = _field(True, _BOOL, None, "true, false")
    """Clip the value prediction to old V ± clip_coef and take the larger squared error."""
    ent_coef: float = _field(0.0, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """Entropy bonus coefficient c_e."""
    vf_coef: float = _field(0.5, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """Value loss coefficient c_v."""
    max_grad_norm: float = _field(0.5, _FLOAT, lambda v: v > 0, "a number > 0")
    """Global gradient-norm clipping threshold."""
    target_kl: float | None = _field(None, _FLOAT, lambda v: v > 0, "null or a number > 0", optional=True)
    """Stop the update's epochs early once the approximate KL exceeds this (None: never)."""
    norm_obs: bool = _field(True, _BOOL, None, "true, false")
    """Normalise policy/value inputs by a running mean/std of observations (clipped at ±10)."""
    norm_reward: bool = _field(True, _BOOL, None, "true, false")
    """Divide rewards by the running std of discounted returns (clipped at ±10)."""
    center_rewards: bool = _field(False, _BOOL, None, "true, false")
    """Subtract the running mean r̄ of all rewards seen so far before scaling (Naik et al. 2024,
    "Reward Centering"). A constant offset c in every reward adds c/(1 − γ) to every value, which
    the critic must fit around the small differences between states that carry the signal; an
    intrinsic reward far from 0 (empowerment: nats) is such a case. With time limits only
    (truncations bootstrap) the optimal policy is unchanged; where episodes terminate an offset
    changes which episode lengths pay, so centering changes the problem (a warning says so)."""
    hidden_sizes: tuple[int, ...] = _field((64, 64), _INTS, lambda v: all(s >= 1 for s in v),
                                           "a list of integers >= 1")
    """Hidden layer widths of both the actor and the critic MLP (tanh)."""
    encoder: str = _field("mlp", _STR, lambda v: v in ("mlp", "conv"), "mlp, conv")
    """mlp: separate actor and critic MLPs on the flattened observation. conv: image observations
    ([C, H, W]) through one convolutional encoder shared by actor and critic
    (:class:`~pprl.models.encoders.ConvEncoder`, ``hidden_sizes[-1]`` features), then a linear
    policy head and a linear value head."""
    init_log_std: float = _field(0.0, _FLOAT, math.isfinite, "a finite number")
    """Continuous actions: initial state-independent log standard deviation."""
    max_episode_steps: int | None = _field(None, _INT, lambda v: v >= 1, "null or an integer >= 1", optional=True)
    """Time limit passed to gym.make when set."""

    def _validate_more(self, source: str) -> None:
        batch = self.num_envs * self.num_steps
        if self.num_minibatches > batch:
            raise SpecError(f"{source}: field 'learner.num_minibatches': got {self.num_minibatches}; allowed: "
                            f"an integer in [1, num_envs * num_steps = {batch}]")
