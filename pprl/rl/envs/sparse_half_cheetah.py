"""Sparse HalfCheetah (VIME, Houthooft et al. 2016, Sec. 4) on gymnasium's HalfCheetah-v5.

Same MuJoCo model, observation (17-d, torso x excluded by default as in v5), action
([-1, 1]^6) and start distribution as HalfCheetah-v5; only the reward changes::

    r_t = 1  if  x_torso > 5   (x_torso = data.qpos[0] after the step),   else 0

i.e. the cheetah is paid for every step spent more than five units forward of the start. The
dense v5 reward (forward velocity − 0.1‖a‖²) is kept in ``info["dense_reward"]``. Registered
with HalfCheetah-v5's horizon of 1000 steps (50 s at dt = 0.05). Pass
``exclude_current_positions_from_observation=False`` to make the reward a function of the
observation (rllab's HalfCheetah, used by VIME, observed the torso position).
"""
import numpy as np
from gymnasium.error import DependencyNotInstalled

try:
    from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv as _Base
    _MUJOCO_ERROR: Exception | None = None
except (ImportError, DependencyNotInstalled) as e:  # mujoco missing or broken
    import gymnasium as gym
    _Base, _MUJOCO_ERROR = gym.Env, e

GOAL_X = 5.0


class SparseHalfCheetahEnv(_Base):
    """HalfCheetah-v5 with reward 1.0 per step while the torso is beyond x = 5."""

    def __init__(self, **kwargs):
        if _MUJOCO_ERROR is not None:
            raise DependencyNotInstalled(
                "pprl/SparseHalfCheetah-v0 needs MuJoCo, which could not be imported "
                f"({_MUJOCO_ERROR}). Install it with: pip install \"gymnasium[mujoco]\"")
        super().__init__(**kwargs)

    def step(self, action: np.ndarray):
        obs, dense, terminated, truncated, info = super().step(action)
        success = bool(self.data.qpos[0] > GOAL_X)
        info = dict(info, dense_reward=float(dense), is_success=success)
        return obs, 1.0 if success else 0.0, terminated, truncated, info
