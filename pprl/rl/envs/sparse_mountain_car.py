"""Sparse continuous Mountain Car (VIME, Houthooft et al. 2016, Sec. 4).

Dynamics, spaces and start distribution are gymnasium's ``Continuous_MountainCarEnv``
(position in [-1.2, 0.6], velocity in [-0.07, 0.07], force in [-1, 1], start position
U(-0.6, -0.4) at rest). Only the reward changes::

    r_t = 1  if  position >= goal_position and velocity >= goal_velocity  (episode terminates)
    r_t = 0  otherwise   (no action cost)

so a return of 1 means the car escaped the valley and 0 means it never did.
"""
import numpy as np
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv


class SparseMountainCarEnv(Continuous_MountainCarEnv):
    """Continuous Mountain Car whose only reward is 1.0 on reaching the goal."""

    def step(self, action: np.ndarray):
        obs, _dense, terminated, truncated, info = super().step(action)
        info = dict(info, is_success=bool(terminated))
        return obs, 1.0 if terminated else 0.0, terminated, truncated, info
