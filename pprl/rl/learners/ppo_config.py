"""``PPOConfig``: every PPO hyperparameter, with what the ``learner:`` block may set it to."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ...spec import SpecError, _check_keys

_INT, _FLOAT, _BOOL, _INTS, _STR = "an integer", "a number", "true or false", "a list of integers", "a string"


def _field(default, kind: str, ok, allowed: str, optional: bool = False):
    """A field with its YAML rule: a ``kind``, a range check ``ok`` (None: any) and what is allowed,
    in words; ``optional`` also allows null."""
    return field(default=default, metadata={"rule": (kind, ok, allowed, optional)})


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@dataclass
class PPOConfig:
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

    @property
    def steps_per_iteration(self) -> int:
        return self.num_envs * self.num_steps

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys of a ``learner:`` block of type ppo."""
        return ("type", *(f.name for f in dataclasses.fields(cls)))

    @classmethod
    def from_dict(cls, d: dict, source: str = "<dict>") -> "PPOConfig":
        """Build from a spec's `learner:` mapping; every problem is one SpecError naming the field."""
        if not isinstance(d, dict):
            raise SpecError(f"{source}: field 'learner' must be a mapping, got {d!r}")
        _check_keys(d, cls.keys(), "learner", source)  # the one unknown-field message of every spec
        out = {}
        for key, value in d.items():
            if key == "type":
                if value != cls.type:
                    raise SpecError(f"{source}: field 'learner.type': got {value!r}; allowed: {cls.type}")
                continue
            out[key] = cls._check(key, value, source)
        return cls(**out).validate(source)

    def to_dict(self) -> dict:
        """The ``learner:`` block that :meth:`from_dict` reads back."""
        out = {"type": self.type, **dataclasses.asdict(self)}
        out["hidden_sizes"] = list(out["hidden_sizes"])
        return out

    def validate(self, source: str = "<PPOConfig>") -> "PPOConfig":
        """Check every field's type and range (also the ones set in Python)."""
        for f in dataclasses.fields(self):
            self._check(f.name, getattr(self, f.name), source)
        batch = self.num_envs * self.num_steps
        if self.num_minibatches > batch:
            raise SpecError(f"{source}: field 'learner.num_minibatches': got {self.num_minibatches}; allowed: "
                            f"an integer in [1, num_envs * num_steps = {batch}]")
        return self

    @classmethod
    def _check(cls, key: str, value, source: str):
        """``value`` for field ``key`` by the field's rule (numbers as float, lists as tuples)."""
        kind, ok, allowed, optional = cls.__dataclass_fields__[key].metadata["rule"]
        bad = SpecError(f"{source}: field 'learner.{key}': got {value!r} ({type(value).__name__}); allowed: {allowed}")
        if value is None and optional:
            return None
        if kind == _FLOAT and isinstance(value, str):
            try:  # YAML 1.1 reads '1e-3' (no dot) as a string
                value = float(value)
            except ValueError:
                raise bad from None
        if kind == _BOOL and not isinstance(value, bool):
            raise bad
        if kind == _INT and not _is_int(value):
            raise bad
        if kind == _FLOAT:
            if not (_is_int(value) or isinstance(value, (float, np.floating))):
                raise bad
            value = float(value)
        if kind == _STR and not isinstance(value, str):
            raise bad
        if kind == _INTS:
            if not isinstance(value, (list, tuple)) or not all(_is_int(s) for s in value):
                raise bad
            value = tuple(int(s) for s in value)
        if ok is not None and not ok(value):  # comparisons with NaN are False, so NaN is rejected
            raise bad
        return value
