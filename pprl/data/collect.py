"""`collect`: random-policy transitions from a gymnasium environment."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ..rl.envs.vector import encode_actions, make_vector_env, true_next_obs
from .transitions import Transitions
from ..threads import uses_threads


@uses_threads
def collect(
    env_id: str,
    steps: int,
    seed: int = 0,
    *,
    num_envs: int = 1,
    max_episode_steps: int | None = None,
    policy=None,
) -> Transitions:
    """Collect exactly `steps` transitions from `env_id` under a uniformly random policy, or under
    ``policy(obs [num_envs, ...]) -> actions [num_envs, ...]`` when given (e.g. a trained learner's
    ``act``: the offline datasets' behaviour policies).

    Runs `num_envs` synchronous copies in SAME_STEP autoreset mode, so the next_obs of a
    terminated/truncated row is the true final observation (never the reset one) and no
    bogus reset transitions appear. Rows are time-major: row t*num_envs + i is step t of
    env i, so each env's stream is rows i::num_envs. The same seed gives identical data.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    make_kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = make_vector_env(env_id, num_envs, **make_kwargs)
    space = env.single_action_space
    obs, act, next_obs, reward, terminated, truncated = [], [], [], [], [], []
    try:
        env.action_space.seed(seed)
        o, _ = env.reset(seed=seed)
        for _ in range(-(-steps // num_envs)):
            a = env.action_space.sample() if policy is None else np.asarray(policy(o)).reshape(env.action_space.shape)
            o_next, r, term, trunc, info = env.step(a)
            obs.append(np.asarray(o).reshape(num_envs, -1))
            act.append(encode_actions(space, a))
            next_obs.append(true_next_obs(o_next, info).reshape(num_envs, -1))
            reward.append(r)
            terminated.append(term)
            truncated.append(trunc)
            o = o_next
    finally:
        env.close()

    def rows(parts: list[np.ndarray], dtype) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(parts).astype(dtype, copy=False)[:steps])

    meta = {"env_id": env_id, "seed": seed, "discrete": isinstance(space, gym.spaces.Discrete),
            "num_envs": num_envs, "max_episode_steps": max_episode_steps}
    return Transitions(obs=rows(obs, np.float32), act=rows(act, np.float32), next_obs=rows(next_obs, np.float32),
                       reward=rows(reward, np.float32), terminated=rows(terminated, np.bool_),
                       truncated=rows(truncated, np.bool_), meta=meta)
