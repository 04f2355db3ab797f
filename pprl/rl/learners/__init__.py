"""Policy learners, the Learner plug-in (``learner: {type: ...}`` in an experiment).

To add one: a module with the learner class (the :class:`Learner` protocol) and its spec class
(``spec_class``: the ``learner:`` block), plus one line in ``LEARNERS``.
"""
from .base import Learner, LearnerSpec, Minibatch, Rollout
from .ppo import PPO, PPORollout
from .ppo_config import PPOConfig
from .sac import SAC, SACConfig, SACRollout

LEARNERS: dict[str, type] = {
    "ppo": PPO,
    "sac": SAC,
}


def make_learner(spec: LearnerSpec, env_id: str, *, seed: int = 0, device="cpu", env_kwargs: dict | None = None):
    """The learner a ``learner:`` block declares, on ``env_id``."""
    return LEARNERS[spec.type](env_id, spec, seed=seed, device=device, env_kwargs=env_kwargs)


__all__ = ["LEARNERS", "Learner", "LearnerSpec", "Minibatch", "Rollout", "PPO", "PPOConfig", "PPORollout", "SAC", "SACConfig", "SACRollout",
           "make_learner"]
