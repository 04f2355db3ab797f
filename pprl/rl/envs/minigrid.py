"""``pprl/MiniGrid-v0``: a MiniGrid task (Chevalier-Boisvert et al., the ``minigrid`` package, the
extra ``pip install "pprl[minigrid]"``) as an image the learner's conv encoder reads.

The observation is the agent's egocentric 7×7 view, MiniGrid's symbolic image: per cell (object,
colour, state) indices, here scaled to [0, 1] by their ranges (object/10, colour/5, state/2) and laid
out as channels, ``Box(0, 1, (3, 7, 7), float32)``. The task must be read from it: in DoorKey the
agent has to see the key, pick it up, find and open the door, then reach the goal, and the view
only shows what is in front of it. ``info["is_success"]`` is set on the step the episode
terminates with a positive reward (the goal reached). Reward and time limit are MiniGrid's own:
1 − 0.9·(steps / max_steps) on success, else 0; DoorKey-5x5 truncates at 250 steps.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

DEFAULT_TASK = "MiniGrid-DoorKey-5x5-v0"
_SCALE = np.array([10.0, 5.0, 2.0], dtype=np.float32)  # object, colour, state index ranges


class SymbolicImage(gym.ObservationWrapper):
    """MiniGrid's dict observation → its symbolic image, scaled to [0, 1], channels first; marks
    success in ``info``."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        h, w, c = env.observation_space["image"].shape
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(c, h, w), dtype=np.float32)

    def observation(self, observation):
        return (observation["image"].astype(np.float32) / _SCALE).transpose(2, 0, 1)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info = {**info, "is_success": bool(terminated and reward > 0)}
        return obs, reward, terminated, truncated, info


def make_minigrid(task: str = DEFAULT_TASK, **kwargs) -> gym.Env:
    """The MiniGrid ``task`` (any registered MiniGrid id) observed as a scaled symbolic image."""
    try:
        import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
    except ImportError:
        raise ImportError("pprl/MiniGrid-v0 needs the minigrid package: pip install \"pprl[minigrid]\"") from None
    if task not in gym.registry or not task.startswith("MiniGrid-"):
        known = sorted(i for i in gym.registry if i.startswith("MiniGrid-"))
        raise ValueError(f"unknown MiniGrid task {task!r}; e.g. {', '.join(known[:6])}, … ({len(known)} in all)")
    return SymbolicImage(gym.make(task, **kwargs))
