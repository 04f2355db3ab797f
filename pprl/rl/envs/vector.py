"""The one way pprl steps gymnasium environments (``pprl.collect`` and the learners use it).

``make_vector_env`` builds a synchronous vector env in SAME_STEP autoreset mode: when an
episode ends, ``step`` already returns the next episode's reset observation and the true last
observation sits in ``info["final_obs"]``; ``true_next_obs`` puts it back, so a transition's
next_obs is never a reset observation. Observations must be Box; actions Box or Discrete.
A transition stores an action as float32 ``[act_dim]``: one-hot for Discrete, the flattened
applied value for Box (``encode_actions``); ``env_actions`` maps a network's action to the env's.
``evaluate_policy`` runs a policy's episodes (one per env copy) and returns their returns.
"""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import torch


def make_vector_env(env_id: str, num_envs: int, **make_kwargs) -> gym.vector.VectorEnv:
    """``num_envs`` synchronous copies of ``env_id`` (``make_kwargs`` go to ``gym.make``).

    Unknown ids and unsupported spaces are a ``ValueError`` (the env is closed first)."""
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}, **make_kwargs)
    except (gym.error.UnregisteredEnv, gym.error.DeprecatedEnv) as e:
        raise ValueError(f"unknown environment '{env_id}'") from e
    obs_space, act_space = env.single_observation_space, env.single_action_space
    if not isinstance(obs_space, gym.spaces.Box):
        env.close()
        raise ValueError(f"unsupported observation space {obs_space} for '{env_id}' (only Box)")
    if not isinstance(act_space, (gym.spaces.Box, gym.spaces.Discrete)):
        env.close()
        raise ValueError(f"unsupported action space {act_space} for '{env_id}' (only Box and Discrete)")
    return env


def learner_envs(env_id: str, num_envs: int, max_episode_steps: int | None = None,
                 env_kwargs: dict | None = None) -> tuple[gym.vector.VectorEnv, dict]:
    """A learner's vector env and the ``gym.make`` keywords it was built with (kept for evaluation
    envs): the spec's ``env_kwargs`` plus the learner's time limit, where it sets one."""
    make_kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps
    return make_vector_env(env_id, num_envs, **make_kwargs), make_kwargs


def true_next_obs(next_obs: np.ndarray, info: dict) -> np.ndarray:
    """A copy of a step's ``next_obs`` [E, ...] in which each env that just finished an episode
    has its true final observation instead of the reset one (SAME_STEP autoreset)."""
    real = np.array(next_obs, copy=True)
    if "_final_obs" in info:
        rows = np.flatnonzero(info["_final_obs"])
        if len(rows):
            real[rows] = np.stack([np.asarray(info["final_obs"][i]).reshape(real.shape[1:]) for i in rows])
    return real


def success_flags(info: dict, done: np.ndarray) -> np.ndarray:
    """Per-env ``info["is_success"]`` of one vector step; for envs that just finished an episode it
    sits in ``info["final_info"]``."""
    flags = np.zeros(len(done), dtype=bool)
    for src, rows in ((info, ~done), (info.get("final_info", {}), done)):
        if "is_success" in src:
            mask = src.get("_is_success", np.ones(len(done), dtype=bool))
            flags |= rows & mask & np.asarray(src["is_success"]).astype(bool)
    return flags


def env_state(envs: gym.vector.SyncVectorEnv, obs: np.ndarray, tracker: "EpisodeTracker") -> dict:
    """Where a learner's environments are, for an exact resume: each sub-env pickled (simulator state
    and its ``np_random``; a SAME_STEP vector env holds nothing else between steps) as a uint8
    tensor, the current observations and the episodes in progress. Loading it unpickles: resume
    only runs you trust (your own)."""
    import pickle

    try:
        blob = pickle.dumps(envs.envs)
    except (pickle.PicklingError, AttributeError, TypeError) as e:  # an env holding a lambda, a file, a socket
        warnings.warn(f"the environments cannot be saved ({e}); a resumed run restarts their episodes from a "
                      f"reset, so it will not repeat the uninterrupted run exactly", ResumeWarning, stacklevel=3)
        return {}
    copy = lambda a: torch.as_tensor(np.array(a, copy=True))  # the tracker's arrays change in place
    return {"envs": torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone(), "obs": copy(obs),
            "ret": copy(tracker.ret), "length": copy(tracker.length), "success": copy(tracker.success)}


def load_env_state(envs: gym.vector.SyncVectorEnv, tracker: "EpisodeTracker", state: dict) -> np.ndarray:
    """Put :func:`env_state`'s environments and episodes back; returns the observations (None when the
    state holds no environments: they stay as reset)."""
    import pickle

    if "envs" not in state:
        return None
    restored = pickle.loads(state["envs"].numpy().tobytes())
    if len(restored) != len(envs.envs):
        raise ValueError(f"the checkpoint holds {len(restored)} environments, this learner has {len(envs.envs)}")
    for env in envs.envs:
        env.close()
    envs.envs = restored
    tracker.ret, tracker.length = state["ret"].numpy().copy(), state["length"].numpy().copy()
    tracker.success = state["success"].numpy().copy()
    return state["obs"].numpy().copy()


class ResumeWarning(UserWarning):
    """A checkpoint that cannot make its resume exact."""


class EpisodeTracker:
    """The running return, length and success of each of ``num_envs`` envs; :meth:`step` returns the
    episodes that ended on that step, ``{"return", "length", "success"}`` each, and restarts them."""

    def __init__(self, num_envs: int):
        self.ret = np.zeros(num_envs)
        self.length = np.zeros(num_envs, dtype=np.int64)
        self.success = np.zeros(num_envs, dtype=bool)

    def step(self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, info: dict) -> list[dict]:
        done = terminated | truncated
        self.ret += reward
        self.length += 1
        self.success |= success_flags(info, done)
        ended = []
        for i in np.flatnonzero(done):
            ended.append({"return": float(self.ret[i]), "length": int(self.length[i]), "success": bool(self.success[i])})
            self.ret[i], self.length[i], self.success[i] = 0.0, 0, False
        return ended


def action_dim(space: gym.Space) -> int:
    """Width of an encoded action: the number of choices (Discrete) or of entries (Box)."""
    return int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape))


def encode_actions(space: gym.Space, actions: np.ndarray) -> np.ndarray:
    """Actions as the env took them, [B, ...] → float32 [B, act_dim]: one-hot of (index − start)
    for Discrete, the flattened values for Box."""
    if isinstance(space, gym.spaces.Discrete):
        return np.eye(int(space.n), dtype=np.float32)[np.asarray(actions) - int(space.start)]
    return np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)


def env_actions(space: gym.Space, actions: torch.Tensor) -> np.ndarray:
    """A network's actions → what the env takes: index + start (Discrete, indices from 0), or the
    values reshaped to the space and clipped to its bounds in its dtype (Box)."""
    a = actions.cpu().numpy()
    if isinstance(space, gym.spaces.Discrete):
        return a + int(space.start)
    a = a.reshape(len(a), *space.shape)
    return np.clip(a, space.low, space.high).astype(space.dtype)


def evaluate_policy(env_id: str, act, episodes: int = 10, seed: int = 10_000, **env_kwargs) -> np.ndarray:
    """Returns of ``episodes`` episodes of ``act(obs [E, ...]) -> actions``, one per copy of a
    fresh vector env seeded seed + i."""
    env = make_vector_env(env_id, episodes, **env_kwargs)
    try:
        obs, _ = env.reset(seed=seed)
        returns, finished = np.zeros(episodes), np.zeros(episodes, dtype=bool)
        while not finished.all():
            action = np.asarray(act(obs)).reshape(episodes, *env.single_action_space.shape)
            obs, reward, term, trunc, _ = env.step(action)
            returns += np.where(finished, 0.0, reward)
            finished |= term | trunc
    finally:
        env.close()
    return returns
