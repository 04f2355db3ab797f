"""`collect_frames`: image transitions (with their low-dimensional states) from a pixel environment.

The data of a latent (pixel) dynamics model (Levine's lecture, seed 004: "learn an embedding of
the image and a dynamics model jointly"): frames o_t, actions a_t, next frames o_{t+1} and episode
boundaries, plus the states s_t the frames were drawn from, for tests and diagnostics.

The env is stepped on its low-dimensional states (:func:`pprl.rl.envs.vector.make_vector_env`,
SAME_STEP autoreset, so a last row's next state is the true final state) and all frames are drawn
afterwards in one batched call of the renderer, never one image at a time. The frames are exactly
the observations of the registered pixel env (:data:`pprl.rl.envs.pixels.PIXEL_SOURCES`) stepped with
the same seed and actions, frame stacking included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from ..rl.envs.vector import encode_actions, make_vector_env, true_next_obs
from .transitions import Transitions

_FIELDS = ("obs", "act", "next_obs", "reward", "terminated", "truncated", "state", "next_state", "episode")


@dataclass(frozen=True, eq=False)
class Frames:
    """N image transitions, torch tensors sharing the leading length N, rows time-major as in
    :func:`pprl.data.collect` (row t·E + i is step t of env i, E = ``meta["num_envs"]``).

    obs, next_obs: float32 ``[N, C, H, W]`` in [0, 1] (float32, not uint8, so that they equal the
    pixel env's observations exactly; C = frames × the renderer's channels, oldest frame first);
    act: float32 ``[N, act_dim]`` (one-hot for Discrete); reward: float32 ``[N]``; terminated,
    truncated: bool ``[N]``; state, next_state: float32 ``[N, d]``, the underlying env's observations
    that obs[:, -C/frames:] and next_obs[:, -C/frames:] are images of; episode: int64 ``[N]``, equal
    on the rows of one episode of one env. ``meta``: env ids, seed, num_envs, frames, obs_shape.
    """

    obs: torch.Tensor
    act: torch.Tensor
    next_obs: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    state: torch.Tensor
    next_state: torch.Tensor
    episode: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.obs.shape[0]

    def transitions(self) -> Transitions:
        """The images as a :class:`~pprl.data.Transitions` (which holds flat observations): obs and
        next_obs flattened to ``[N, C·H·W]``, the image shape in ``meta["obs_shape"]``
        (``obs.reshape(-1, *meta["obs_shape"])`` restores it)."""
        return Transitions(obs=self.obs.flatten(1), act=self.act, next_obs=self.next_obs.flatten(1),
                           reward=self.reward, terminated=self.terminated, truncated=self.truncated,
                           meta=dict(self.meta))

    def state_transitions(self) -> Transitions:
        """The same transitions on the low-dimensional states (what :func:`pprl.data.collect` gives)."""
        return Transitions(obs=self.state, act=self.act, next_obs=self.next_state, reward=self.reward,
                           terminated=self.terminated, truncated=self.truncated,
                           meta={k: v for k, v in self.meta.items() if k != "obs_shape"})


def _stack_index(ends: np.ndarray, num_envs: int, frames: int) -> np.ndarray:
    """``[N, frames]`` row indices, oldest first: the last ``frames`` rows of each row's episode up to
    and including it, the episode's first row repeated where the episode is shorter (a reset fills the
    stack with its own frame, as gymnasium's ``FrameStackObservation(padding_type="reset")`` does)."""
    n = len(ends)
    rows = np.arange(n)
    prev = rows - num_envs
    starts = prev < 0
    starts[~starts] = ends[prev[~starts]]
    prev = np.where(starts, rows, prev)
    index = [rows]
    for _ in range(frames - 1):
        index.insert(0, prev[index[0]])
    return np.stack(index, 1)


def collect_frames(
    env_id: str,
    num_steps: int,
    seed: int = 0,
    *,
    render: dict | Callable[[np.ndarray], np.ndarray] | None = None,
    policy: str | Callable[[np.ndarray], np.ndarray] = "random",
    frames: int = 1,
    num_envs: int = 1,
    max_episode_steps: int | None = None,
    env_kwargs: dict | None = None,
) -> Frames:
    """Exactly ``num_steps`` image transitions of ``env_id``.

    ``env_id``: a pixel env of :data:`~pprl.rl.envs.pixels.PIXEL_SOURCES` (e.g.
    ``"pprl/PendulumPixels-v0"``) or the env it observes (``"Pendulum-v1"``); with a callable
    ``render``, any env with Box observations. ``render``: the renderer's keywords (``{"size": 64}``;
    ``{"cell_size": 4}`` for the grid), or a function from states ``[N, d]`` to images
    ``[N, C, H, W]``. ``policy``: ``"random"`` (the action space sampled, seeded by ``seed``) or a
    function from the E envs' states ``[E, d]`` to their actions. ``frames``: the number of stacked
    frames (velocities are invisible in one frame). ``env_kwargs`` go to ``gym.make`` of the underlying
    env (e.g. ``{"start": "random"}`` for the grid room). Same seed, same frames; the global numpy /
    ``random`` / torch RNGs are not used.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    if not (policy == "random" or callable(policy)):
        raise ValueError(f"policy must be 'random' or a function of the states [E, d], got {policy!r}")
    from ..rl.envs.pixels import PIXEL_SOURCES  # here: pixels → grid_room → empowerment → … → pprl.data

    base_id, factory = env_id, None
    for pixel_id, (source_id, source_factory) in PIXEL_SOURCES.items():
        if env_id in (pixel_id, source_id):
            base_id, factory = source_id, source_factory
    if not callable(render):
        if factory is None:
            raise ValueError(f"no renderer for '{env_id}'; pass render= a function of the states [N, d], or one "
                             f"of {', '.join(PIXEL_SOURCES)} (or the env it observes)")
        if render is not None and not isinstance(render, dict):
            raise ValueError(f"render must be None, a dict of renderer keywords or a function, got {render!r}")

    make_kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps
    env = make_vector_env(base_id, num_envs, **make_kwargs)
    space = env.single_action_space
    state, act, next_state, reward, terminated, truncated = [], [], [], [], [], []
    try:
        render_fn = render if callable(render) else factory(env.envs[0].unwrapped, **(render or {}))[0]
        env.action_space.seed(seed)
        s, _ = env.reset(seed=seed)
        for _ in range(-(-num_steps // num_envs)):
            a = env.action_space.sample() if policy == "random" else np.asarray(policy(np.asarray(s)))
            s_next, r, term, trunc, info = env.step(a)
            state.append(np.asarray(s).reshape(num_envs, -1))
            act.append(encode_actions(space, a))
            next_state.append(true_next_obs(s_next, info).reshape(num_envs, -1))
            reward.append(r)
            terminated.append(term)
            truncated.append(trunc)
            s = s_next
    finally:
        env.close()

    state, next_state = np.concatenate(state).astype(np.float32), np.concatenate(next_state).astype(np.float32)
    terminated, truncated = np.concatenate(terminated).astype(bool), np.concatenate(truncated).astype(bool)
    n = len(state)
    images = np.asarray(render_fn(np.concatenate([state, next_state])), dtype=np.float32)  # one batched call
    if images.ndim != 4 or len(images) != 2 * n:
        raise ValueError(f"render returned shape {images.shape} for {2 * n} states; expected images [N, C, H, W]")
    image, next_image = images[:n], images[n:]
    ends = terminated | truncated
    index = _stack_index(ends, num_envs, frames)  # [n, frames]
    obs = image[index]  # [n, frames, C, H, W]
    next_obs = np.concatenate([obs[:, 1:], next_image[:, None]], 1)
    C, H, W = image.shape[1:]
    obs, next_obs = obs.reshape(n, frames * C, H, W), next_obs.reshape(n, frames * C, H, W)
    count = np.zeros(n, dtype=np.int64)  # episodes of the row's env finished before the row
    count[num_envs:] = np.cumsum(ends.reshape(-1, num_envs), 0)[:-1].reshape(-1)
    _, episode = np.unique(count * num_envs + np.arange(n) % num_envs, return_inverse=True)

    def rows(a: np.ndarray, dtype=None) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[:num_steps] if dtype is None else a[:num_steps].astype(dtype)))

    meta = {"env_id": env_id, "base_env_id": base_id, "seed": seed, "num_envs": num_envs, "frames": frames,
            "discrete": isinstance(space, gym.spaces.Discrete), "max_episode_steps": max_episode_steps,
            "obs_shape": [frames * C, H, W]}
    return Frames(obs=rows(obs), act=rows(np.concatenate(act), np.float32), next_obs=rows(next_obs),
                  reward=rows(np.concatenate(reward), np.float32), terminated=rows(terminated),
                  truncated=rows(truncated), state=rows(state), next_state=rows(next_state),
                  episode=rows(episode, np.int64), meta=meta)
