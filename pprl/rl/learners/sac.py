r"""Soft actor-critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications") for
continuous actions, on the Learner plug-in: ``collect`` steps the envs, ``update`` adds the
rollout (with the loop's combined rewards w·r + η·r_int) to a FIFO replay buffer and takes
``updates_per_step`` gradient steps per env step on minibatches drawn from it.

The gradient step is :class:`~pprl.rl.learners.soft_actor_critic.SoftActorCritic`'s (twin critics,
Polyak targets, automatic entropy tuning, CleanRL's delayed actor updates).

A time-limit truncation bootstraps (only ``terminated`` stops the return). Until
``learning_starts`` env steps the actions are uniform on the action box and nothing is updated.
Implementation choices follow CleanRL's ``sac_continuous_action.py`` (Huang et al. 2022).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from ...data import ReplayPool, Transitions
from ..envs.vector import (EpisodeTracker, encode_actions, env_state, evaluate_policy, learner_envs, load_env_state,
                           true_next_obs)
from .sac_config import SACConfig
from .soft_actor_critic import SoftActorCritic

__all__ = ["SAC", "SACConfig", "SACRollout"]


@dataclass
class SACRollout:
    """num_steps × num_envs env steps (time-major)."""

    transitions: Transitions  # T·E rows: row t·E + i is step t of env i
    rewards: Tensor           # [T, E] extrinsic rewards
    episodes: list[dict]      # finished episodes: {"return", "length", "success"}


class SAC:
    """SAC on ``env_id`` (Box observations and Box actions). See the module docstring."""

    spec_class = SACConfig

    def __init__(self, env_id: str, config: SACConfig, *, seed: int = 0, device="cpu", env_kwargs: dict | None = None):
        self.config, self.env_id, self.seed = config.validate(), env_id, seed
        self.device = torch.device(device)
        self.envs, self._make_kwargs = learner_envs(env_id, config.num_envs, config.max_episode_steps, env_kwargs)
        obs_space, self.act_space = self.envs.single_observation_space, self.envs.single_action_space
        if not isinstance(self.act_space, gym.spaces.Box):
            self.envs.close()
            raise ValueError(f"SAC needs continuous (Box) actions; '{env_id}' has {self.act_space}")
        if not (np.isfinite(self.act_space.low).all() and np.isfinite(self.act_space.high).all()):
            self.envs.close()
            raise ValueError(f"SAC squashes actions into a bounded box; '{env_id}' has unbounded actions")
        self.obs_shape, self.obs_dim = obs_space.shape, int(np.prod(obs_space.shape))
        self.act_dim = int(np.prod(self.act_space.shape))
        self.discrete = False
        self.core = SoftActorCritic(self.obs_dim, self.act_dim, self.act_space.low.reshape(-1),
                                    self.act_space.high.reshape(-1), hidden=config.hidden_sizes, gamma=config.gamma,
                                    tau=config.tau, policy_lr=config.policy_lr, q_lr=config.q_lr,
                                    policy_frequency=config.policy_frequency, alpha=config.alpha,
                                    autotune=config.autotune, seed=seed, device=self.device)
        self.actor = self.core.actor
        self.replay = ReplayPool(config.buffer_size)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.global_step = 0

        obs, _ = self.envs.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float32).reshape(config.num_envs, -1)
        self._episodes = EpisodeTracker(config.num_envs)

    def _tensor(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(len(obs), -1)

    def features(self, obs: Tensor) -> Tensor:
        """The representation the policy acts on (the actor's last hidden layer)."""
        return self.actor.features(obs)

    @torch.no_grad()
    def collect(self) -> SACRollout:
        """num_steps steps in each env: uniform actions before ``learning_starts``, then a ~ π(·|s)."""
        T, E = self.config.num_steps, self.config.num_envs
        low = torch.as_tensor(self.act_space.low.reshape(-1), device=self.device)
        high = torch.as_tensor(self.act_space.high.reshape(-1), device=self.device)
        obs, next_obs = np.zeros((T, E, self.obs_dim), np.float32), np.zeros((T, E, self.obs_dim), np.float32)
        actions = np.zeros((T, E, self.act_dim), np.float32)
        rewards, terminated, truncated = np.zeros((T, E)), np.zeros((T, E), bool), np.zeros((T, E), bool)
        episodes = []
        for step in range(T):
            if self.global_step < self.config.learning_starts:
                u = torch.rand((E, self.act_dim), generator=self.generator, device=self.device)
                action = low + (high - low) * u
            else:
                action = self.actor.sample(self._tensor(self._obs), self.generator)[0]
            env_action = action.cpu().numpy().reshape(E, *self.act_space.shape)
            obs_after, reward, term, trunc, info = self.envs.step(env_action)
            obs_after = np.asarray(obs_after, dtype=np.float32).reshape(E, -1)
            real_next = true_next_obs(obs_after, info)
            episodes += self._episodes.step(reward, term, trunc, info)
            obs[step], next_obs[step], actions[step] = self._obs, real_next, encode_actions(self.act_space, env_action)
            rewards[step], terminated[step], truncated[step] = reward, term, trunc
            self._obs = obs_after
            self.global_step += E
        flat = lambda a: torch.as_tensor(a.reshape(T * E, *a.shape[2:]), device=self.device)
        transitions = Transitions(
            obs=flat(obs), act=flat(actions), next_obs=flat(next_obs), reward=flat(rewards).float(),
            terminated=flat(terminated), truncated=flat(truncated),
            meta={"env_id": self.env_id, "discrete": False, "num_envs": E})
        return SACRollout(transitions=transitions, rewards=torch.as_tensor(rewards, dtype=torch.float32,
                                                                            device=self.device), episodes=episodes)

    def update(self, rollout: SACRollout, rewards: Tensor | None = None, aux_losses: Sequence = ()) -> dict[str, float]:
        """Store the rollout with ``rewards`` [T, E] (default: its own), then updates_per_step
        gradient steps per env step it took; returns mean statistics (none before learning_starts)."""
        if aux_losses:
            raise ValueError("SAC takes no auxiliary losses (they are defined on on-policy minibatches); "
                             "remove the experiment's auxiliary: block or use learner type ppo")
        rewards = (rollout.rewards if rewards is None else rewards).to(self.device, torch.float32)
        if rewards.shape != rollout.rewards.shape:
            raise ValueError(f"rewards must have shape {tuple(rollout.rewards.shape)}, got {tuple(rewards.shape)}")
        t = rollout.transitions
        self.replay.add(Transitions(obs=t.obs, act=t.act, next_obs=t.next_obs, reward=rewards.reshape(-1),
                                    terminated=t.terminated, truncated=t.truncated, meta=t.meta))
        if self.global_step < self.config.learning_starts:
            return {"alpha": float(self.core.alpha())}
        n = max(1, round(self.config.updates_per_step * len(t)))
        data, size = self.replay.data, self.replay.size
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(n):
            idx = torch.randint(size, (self.config.batch_size,), generator=self.generator, device=self.device)
            batch = Transitions(obs=data.obs[idx], act=data.act[idx], next_obs=data.next_obs[idx],
                                reward=data.reward[idx], terminated=data.terminated[idx],
                                truncated=data.truncated[idx])
            for k, v in self.core.gradient_step(batch, self.generator).items():
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
        return {**{k: sums[k] / counts[k] for k in sums}, "alpha": float(self.core.alpha()), "gradient_steps": n}

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env-ready action(s) for one observation or a batch (squash(μ(s)) if deterministic)."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == len(self.obs_shape)
        x = self._tensor(obs.reshape(1 if single else len(obs), -1))
        action = self.actor.mode(x) if deterministic else self.actor.sample(x, self.generator)[0]
        action = action.cpu().numpy().reshape(len(x), *self.act_space.shape)
        return action[0] if single else action

    def evaluate(self, episodes: int = 10, seed: int = 10_000) -> np.ndarray:
        """Returns of `episodes` deterministic episodes, one per copy of a fresh vector env seeded seed + i."""
        return evaluate_policy(self.env_id, self.act, episodes, seed, **self._make_kwargs)

    def state_dict(self) -> dict:
        return {"core": self.core.full_state(), "replay": self.replay.state_dict(),
                "global_step": int(self.global_step), "generator": self.generator.get_state(),
                "env": env_state(self.envs, self._obs, self._episodes)}

    def load_state_dict(self, state: dict) -> None:
        self.core.load_full_state(state["core"])
        self.replay.load_state_dict(state["replay"])
        self.global_step = int(state["global_step"])
        self.generator.set_state(state["generator"])
        obs = load_env_state(self.envs, self._episodes, state["env"])
        self._obs = self._obs if obs is None else obs

    def close(self) -> None:
        self.envs.close()
