"""A compact PPO learner (clipped surrogate, GAE) for gymnasium vector environments.

Objective (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"), maximised:

    L(θ) = E_t[min(ρ_t Â_t, clip(ρ_t, 1−ε, 1+ε) Â_t)] − c_v E_t[(V_θ(s_t) − R_t)²] + c_e E_t[H(π_θ(·|s_t))],
    ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t).

Advantages by GAE (Schulman et al. 2016, "High-Dimensional Continuous Control Using
Generalized Advantage Estimation"): δ_t = r_t + γ(1 − term_t) V(s'_t) − V(s_t),
Â_t = δ_t + γλ(1 − done_t) Â_{t+1}, R_t = Â_t + V(s_t); s'_t is the true next state, so a
time-limit truncation bootstraps from V(final obs) while a termination does not.

Implementation details (orthogonal init, per-minibatch advantage normalisation, clipped value
loss, observation / reward normalisation with clipping at ±10, Adam eps 1e-5, linear lr
annealing) follow CleanRL's ppo.py and ppo_continuous_action.py (Huang et al. 2022,
"The 37 Implementation Details of Proximal Policy Optimization"). Optionally the rewards are
centred first, r − r̄ (``center_rewards``; Naik et al. 2024, "Reward Centering"). Auxiliary losses
(``pprl.rl.auxiliary``) add their terms to L on the same minibatches.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Normal

from ...data import Transitions
from ...rng import seeded
from ..envs.vector import (EpisodeTracker, action_dim, encode_actions, env_actions, env_state, evaluate_policy,
                           learner_envs, load_env_state, true_next_obs)
from .base import Minibatch
from .ppo_config import PPOConfig

__all__ = ["PPO", "PPOConfig", "PPORollout", "ActorCritic", "RunningMeanStd", "gae"]


class RunningMeanStd:
    """Running mean and variance of a stream of batches in float64 (Chan et al. 1979 parallel update)."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4):
        self.mean = torch.zeros(shape, dtype=torch.float64)
        self.var = torch.ones(shape, dtype=torch.float64)
        self.count = epsilon

    def update(self, x: Tensor) -> None:
        x = x.detach().to("cpu", torch.float64).reshape(-1, *self.mean.shape)
        n, mean, var = x.shape[0], x.mean(0), x.var(0, unbiased=False)
        delta, total = mean - self.mean, self.count + n
        m2 = self.var * self.count + var * n + delta.square() * self.count * n / total
        self.mean, self.var, self.count = self.mean + delta * n / total, m2 / total, total

    def normalize(self, x: Tensor, clip: float = 10.0, eps: float = 1e-8) -> Tensor:
        z = (x.to("cpu", torch.float64) - self.mean) / torch.sqrt(self.var + eps)
        return z.clamp(-clip, clip).to(torch.float32)

    def state_dict(self) -> dict:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": float(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = state["mean"].clone(), state["var"].clone(), float(state["count"])


def _linear(n_in: int, n_out: int, std: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, std)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(sizes: list[int], out_std: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [_linear(n_in, n_out, math.sqrt(2)), nn.Tanh()]
    return nn.Sequential(*layers, _linear(sizes[-2], sizes[-1], out_std))


class ActorCritic(nn.Module):
    """Critic V(s) and actor π(a|s) — Categorical logits, or a diagonal Gaussian mean with a
    state-independent log std. ``encoder="mlp"``: separate tanh MLPs on the flattened observation.
    ``encoder="conv"``: observations reshaped to ``obs_shape`` = [C, H, W], one
    :class:`~pprl.models.encoders.ConvEncoder` (``hidden[-1]`` features) shared by a linear actor
    head and a linear critic head, as in CleanRL's Atari PPO."""

    def __init__(self, obs_dim: int, act_dim: int, discrete: bool, hidden: tuple[int, ...], init_log_std: float,
                 encoder: str = "mlp", obs_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.discrete, self.encoder_type = discrete, encoder
        if encoder == "conv":
            from ...models.encoders import ConvEncoder

            if obs_shape is None or len(obs_shape) != 3:
                raise ValueError(f"learner.encoder 'conv' needs image observations [C, H, W], got observations of "
                                 f"shape {obs_shape}")
            self.obs_shape = tuple(int(n) for n in obs_shape)
            self.encoder = ConvEncoder(self.obs_shape, features=hidden[-1])
            self.critic = nn.Sequential(self.encoder, _linear(hidden[-1], 1, 1.0))
            self.actor = nn.Sequential(self.encoder, _linear(hidden[-1], act_dim, 0.01))
        else:
            self.critic = _mlp([obs_dim, *hidden, 1], 1.0)
            self.actor = _mlp([obs_dim, *hidden, act_dim], 0.01)
        if not discrete:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))

    def _images(self, obs: Tensor) -> Tensor:
        return obs.reshape(len(obs), *self.obs_shape)

    def features(self, obs: Tensor) -> Tensor:
        """The representation the policy acts on: the actor's last hidden layer (mlp), the shared
        encoder's output (conv)."""
        if self.encoder_type == "conv":
            return self.encoder(self._images(obs))
        return self.actor[:-1](obs)

    def feature_map(self, obs: Tensor) -> Tensor | None:
        """conv: the encoder's intermediate feature map [B, C', H', W'] (local features); mlp: None."""
        if self.encoder_type != "conv":
            return None
        return self.encoder.feature_map(self._images(obs))

    def value(self, obs: Tensor) -> Tensor:
        return self.critic(self._images(obs) if self.encoder_type == "conv" else obs).squeeze(-1)

    def policy_output(self, obs: Tensor) -> Tensor:
        """Logits (discrete) or the Gaussian mean (continuous)."""
        return self.actor(self._images(obs) if self.encoder_type == "conv" else obs)

    def dist(self, obs: Tensor) -> Categorical | Normal:
        out = self.policy_output(obs)
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        return Normal(out, self.log_std.exp().expand_as(out), validate_args=False)

    def log_prob_entropy(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        d = self.dist(obs)
        if self.discrete:
            return d.log_prob(action), d.entropy()
        return d.log_prob(action).sum(-1), d.entropy().sum(-1)

    def sample(self, obs: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw a ~ π(·|s) from `generator` (no global RNG); return (a, log π(a|s))."""
        d = self.dist(obs)
        if self.discrete:
            a = torch.multinomial(d.probs, 1, generator=generator).squeeze(-1)
            return a, d.log_prob(a)
        a = d.loc + d.scale * torch.randn(d.loc.shape, generator=generator, device=d.loc.device)
        return a, d.log_prob(a).sum(-1)


def gae(rewards: Tensor, values: Tensor, next_value: Tensor, terminated: Tensor, truncated: Tensor,
        final_values: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over [T, E] tensors (Schulman et al. 2016).

    V(s'_t) is values[t+1] (next_value at t = T−1) within an episode and final_values[t] at an
    episode end (there values[t+1] already belongs to the next episode). Then
    δ_t = r_t + γ(1 − terminated_t) V(s'_t) − V(s_t), Â_t = δ_t + γλ(1 − done_t) Â_{t+1},
    returns R_t = Â_t + V(s_t). Terminated: no bootstrap; truncated: bootstrap from final_values.
    """
    done = terminated | truncated
    next_values = torch.where(done, final_values, torch.cat([values[1:], next_value[None]]))
    deltas = rewards + gamma * next_values * (~terminated) - values
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        last = deltas[t] + gamma * lam * (~done[t]) * last
        advantages[t] = last
    return advantages, advantages + values


@dataclass
class PPORollout:
    """One rollout of T = num_steps by E = num_envs (tensors on the learner's device)."""

    obs: Tensor           # [T, E, obs_dim] raw observations
    actions: Tensor       # [T, E, *act_shape] sampled (unclipped) actions; discrete: long indices from 0
    logprobs: Tensor      # [T, E]
    values: Tensor        # [T, E]
    rewards: Tensor       # [T, E] extrinsic rewards, float32
    terminated: Tensor    # [T, E] bool
    truncated: Tensor     # [T, E] bool
    final_values: Tensor  # [T, E] V(true final obs) where truncated (and not terminated), else 0
    next_value: Tensor    # [E] V(obs after the last step)
    transitions: Transitions  # T*E rows, time-major, as pprl.data encodes them
    episodes: list[dict]  # finished episodes: {"return", "length", "success"}
    policy_obs: Tensor | None = None  # [T, E, obs_dim] the (normalised) inputs the networks saw



class PPO:
    """PPO on `env_id` (Box observations; Box or Discrete actions). See the module docstring."""

    spec_class = PPOConfig

    def __init__(self, env_id: str, config: PPOConfig, *, seed: int = 0, device="cpu", env_kwargs: dict | None = None):
        self.config, self.env_id, self.seed = config.validate(), env_id, seed
        self.device = torch.device(device)
        self.envs, self._make_kwargs = learner_envs(env_id, config.num_envs, config.max_episode_steps, env_kwargs)
        obs_space, self.act_space = self.envs.single_observation_space, self.envs.single_action_space
        self.discrete = isinstance(self.act_space, gym.spaces.Discrete)
        self.obs_shape, self.obs_dim = obs_space.shape, int(np.prod(obs_space.shape))
        self.act_dim = action_dim(self.act_space)

        with seeded(seed):  # seeded init without touching the global RNG
            self.agent = ActorCritic(self.obs_dim, self.act_dim, self.discrete, config.hidden_sizes,
                                     config.init_log_std, config.encoder, self.obs_shape).to(self.device)
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.learning_rate, eps=1e-5)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.obs_rms, self.ret_rms = RunningMeanStd((self.obs_dim,)), RunningMeanStd(())
        self.reward_rms = RunningMeanStd(())  # r̄ for center_rewards
        self._disc_return = torch.zeros(config.num_envs, dtype=torch.float64)  # for reward scaling
        self.global_step = 0
        self._warned_termination = False

        self.envs.action_space.seed(seed)
        obs, _ = self.envs.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float32).reshape(config.num_envs, -1)
        self._episodes = EpisodeTracker(config.num_envs)

    def _policy_input(self, obs: np.ndarray, update: bool = False) -> Tensor:
        """Raw [B, obs_dim] observations -> network input (normalised if norm_obs)."""
        x = torch.as_tensor(obs, dtype=torch.float32).reshape(len(obs), -1)
        if self.config.norm_obs:
            if update:
                self.obs_rms.update(x)
            x = self.obs_rms.normalize(x)
        return x.to(self.device)

    def features(self, obs: Tensor) -> Tensor:
        """The representation the policy acts on, from network inputs [B, obs_dim] (auxiliary losses use it)."""
        return self.agent.features(obs)

    def feature_map(self, obs: Tensor) -> Tensor | None:
        """The conv encoder's local features [B, C', H', W'] of network inputs [B, obs_dim]; None for mlp."""
        return self.agent.feature_map(obs)

    @torch.no_grad()
    def collect(self) -> PPORollout:
        """Run num_steps steps in each env with the current policy (obs normaliser stats updated)."""
        T, E, dev = self.config.num_steps, self.config.num_envs, self.device
        obs = torch.zeros((T, E, self.obs_dim))                       # s_t, raw
        policy_obs = torch.zeros((T, E, self.obs_dim), device=dev)    # s_t as the networks see it
        actions = (torch.zeros((T, E), dtype=torch.long, device=dev) if self.discrete
                   else torch.zeros((T, E, self.act_dim), device=dev))  # sampled, unclipped
        logprobs = torch.zeros((T, E), device=dev)
        values = torch.zeros((T, E), device=dev)
        rewards = torch.zeros((T, E))
        terminated = torch.zeros((T, E), dtype=torch.bool)
        truncated = torch.zeros((T, E), dtype=torch.bool)
        final_values = torch.zeros((T, E), device=dev)                # V(true final obs) at time limits
        next_obs = torch.zeros((T, E, self.obs_dim))                  # s'_t, the true next state
        applied = torch.zeros((T, E, self.act_dim))                   # the action the env took, encoded
        episodes = []
        for step in range(T):
            x = self._policy_input(self._obs, update=True)
            action, logp = self.agent.sample(x, self.generator)
            env_action = env_actions(self.act_space, action)
            obs_after, reward, term, trunc, info = self.envs.step(env_action)
            obs_after = np.asarray(obs_after, dtype=np.float32).reshape(E, -1)  # a reset obs where an episode ended
            real_next = true_next_obs(obs_after, info)
            boot = np.flatnonzero(trunc & ~term)  # a time limit bootstraps from V(final obs); a termination does not
            if len(boot):
                final_values[step, boot] = self.agent.value(self._policy_input(real_next[boot]))
            episodes += self._episodes.step(reward, term, trunc, info)
            obs[step] = torch.as_tensor(self._obs)
            policy_obs[step] = x
            actions[step] = action
            logprobs[step] = logp
            values[step] = self.agent.value(x)
            rewards[step] = torch.as_tensor(reward)
            terminated[step] = torch.as_tensor(term)
            truncated[step] = torch.as_tensor(trunc)
            next_obs[step] = torch.as_tensor(real_next)
            applied[step] = torch.as_tensor(encode_actions(self.act_space, env_action))
            self._obs = obs_after
            self.global_step += E

        transitions = Transitions(
            obs=obs.reshape(T * E, -1).to(dev), act=applied.reshape(T * E, -1).to(dev),
            next_obs=next_obs.reshape(T * E, -1).to(dev), reward=rewards.reshape(-1).to(dev),
            terminated=terminated.reshape(-1).to(dev), truncated=truncated.reshape(-1).to(dev),
            meta={"env_id": self.env_id, "discrete": self.discrete, "num_envs": E})
        return PPORollout(
            obs=obs.to(dev), actions=actions.reshape(T, E, *self.act_space.shape), logprobs=logprobs,
            values=values, rewards=rewards.to(dev), terminated=terminated.to(dev), truncated=truncated.to(dev),
            final_values=final_values, next_value=self.agent.value(self._policy_input(self._obs)),
            transitions=transitions, episodes=episodes, policy_obs=policy_obs)

    def _center_rewards(self, rewards: Tensor, terminated: Tensor) -> Tensor:
        """r − r̄, r̄ the plain (1/t-weighted) mean of every reward seen so far, this rollout's included
        (``center_rewards``). Naik et al. also use a constant step size, which tracks a drifting
        reward faster; the all-time mean is the simpler choice and only needs to be near the level."""
        if bool(terminated.any()) and not self._warned_termination:
            self._warned_termination = True
            warnings.warn("learner.center_rewards: an episode terminated; subtracting the mean reward changes "
                          "which episode lengths pay, so the centred problem's optimum can differ from the "
                          "original's (centering is meant for time limits only)", stacklevel=3)
        self.reward_rms.update(rewards)
        return rewards - float(self.reward_rms.mean)

    def _scale_rewards(self, rewards: Tensor, done: Tensor) -> Tensor:
        """r / std(discounted return), the return tracked per env across rollouts (gymnasium's NormalizeReward)."""
        r64, done = rewards.detach().to("cpu", torch.float64), done.cpu()
        returns = torch.empty_like(r64)
        ret = self._disc_return
        for t in range(len(r64)):
            ret = ret * self.config.gamma + r64[t]
            returns[t] = ret
            ret = ret.masked_fill(done[t], 0.0)
        self._disc_return = ret
        self.ret_rms.update(returns)
        return (rewards / math.sqrt(float(self.ret_rms.var) + 1e-8)).clamp(-10.0, 10.0)

    def update(self, rollout: PPORollout, rewards: Tensor | None = None, aux_losses: Sequence = ()) -> dict[str, float]:
        """Several epochs of minibatch Adam steps on the clipped PPO loss (plus each auxiliary
        loss's term) with ``rewards`` [T, E] (default: the rollout's own); returns mean statistics."""
        cfg, dev = self.config, self.device
        rewards = (rollout.rewards if rewards is None else rewards).to(dev, torch.float32)
        if rewards.shape != rollout.rewards.shape:
            raise ValueError(f"rewards must have shape {tuple(rollout.rewards.shape)}, got {tuple(rewards.shape)}")
        if cfg.center_rewards:
            rewards = self._center_rewards(rewards, rollout.terminated)
        if cfg.norm_reward:
            rewards = self._scale_rewards(rewards, rollout.terminated | rollout.truncated)
        advantages, returns = gae(rewards, rollout.values, rollout.next_value, rollout.terminated,
                                  rollout.truncated, rollout.final_values, cfg.gamma, cfg.gae_lambda)
        batch = rollout.values.numel()
        lr = cfg.learning_rate
        if cfg.anneal_lr:  # fraction of the budget left when this rollout started
            lr *= max(0.0, 1.0 - (self.global_step - batch) / cfg.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        x = (rollout.policy_obs if rollout.policy_obs is not None
             else self._policy_input(rollout.obs.reshape(batch, -1).cpu().numpy())).reshape(batch, -1)
        actions = rollout.actions.reshape(batch) if self.discrete else rollout.actions.reshape(batch, -1)
        old_logp, old_v = rollout.logprobs.reshape(-1), rollout.values.reshape(-1)
        adv, ret = advantages.reshape(-1), returns.reshape(-1)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(batch, generator=self.generator, device=dev)
            for mb in perm.tensor_split(cfg.num_minibatches):
                logp, entropy = self.agent.log_prob_entropy(x[mb], actions[mb])
                log_ratio = logp - old_logp[mb]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()  # unbiased, low-variance KL(old‖new) estimate
                    clipfrac = ((ratio - 1).abs() > cfg.clip_coef).float().mean()
                a = adv[mb]
                a = (a - a.mean()) / (a.std() + 1e-8) if len(a) > 1 else a
                policy_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
                v = self.agent.value(x[mb])
                value_loss = (v - ret[mb]).square()
                if cfg.clip_value_loss:
                    v_clip = old_v[mb] + (v - old_v[mb]).clamp(-cfg.clip_coef, cfg.clip_coef)
                    value_loss = torch.max(value_loss, (v_clip - ret[mb]).square())
                value_loss = 0.5 * value_loss.mean()
                entropy = entropy.mean()
                loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
                aux_stats = {}
                for aux in aux_losses:
                    term, term_stats = aux.loss(Minibatch(obs=x[mb], actions=actions[mb], index=mb, rollout=rollout), self)
                    loss = loss + term
                    aux_stats.update(term_stats)
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.agent.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                for aux in aux_losses:
                    aux.step()
                step_stats = {"policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(),
                              "entropy": entropy.detach(), "approx_kl": approx_kl, "clipfrac": clipfrac, **aux_stats}
                for name, value in step_stats.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                    counts[name] = counts.get(name, 0) + 1
            if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
                break
        stats = {k: s / counts[k] for k, s in sums.items()}  # a key a term skipped on some minibatches: its mean where recorded
        var_ret = float(ret.var()) if batch > 1 else 0.0
        stats["explained_variance"] = float("nan") if var_ret == 0 else 1 - float((ret - old_v).var()) / var_ret
        stats["learning_rate"] = lr
        return stats

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Env-ready action(s) for one observation or a batch (mean / argmax if deterministic)."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == len(self.obs_shape)
        x = self._policy_input(obs.reshape(1 if single else len(obs), -1))
        if deterministic:
            out = self.agent.policy_output(x)
            action = out.argmax(-1) if self.discrete else out
        else:
            action = self.agent.sample(x, self.generator)[0]
        action = env_actions(self.act_space, action)
        return action[0] if single else action

    def evaluate(self, episodes: int = 10, seed: int = 10_000) -> np.ndarray:
        """Returns of `episodes` deterministic episodes, one per copy of a fresh vector env seeded seed + i."""
        return evaluate_policy(self.env_id, self.act, episodes, seed, **self._make_kwargs)

    def learn(self, total_steps: int | None = None, callback=None) -> list[dict]:
        """collect -> update until global_step >= total_steps (default config.total_steps).

        callback(ppo, rollout, stats) runs after each update; returning False stops early.
        Returns every episode finished during training."""
        total = self.config.total_steps if total_steps is None else total_steps
        episodes: list[dict] = []
        while self.global_step < total:
            rollout = self.collect()
            stats = self.update(rollout)
            episodes += rollout.episodes
            if callback is not None and callback(self, rollout, stats) is False:
                break
        return episodes

    def state_dict(self) -> dict:
        """Learner state, the environments' included (:func:`~pprl.rl.envs.vector.env_state`), as
        tensors and numbers for torch.load(weights_only=True): a resume continues exactly."""
        return {"agent": self.agent.state_dict(), "optimizer": self.optimizer.state_dict(),
                "obs_rms": self.obs_rms.state_dict(), "ret_rms": self.ret_rms.state_dict(),
                "reward_rms": self.reward_rms.state_dict(), "warned_termination": self._warned_termination,
                "disc_return": self._disc_return.clone(), "global_step": int(self.global_step),
                "generator": self.generator.get_state(), "env": env_state(self.envs, self._obs, self._episodes)}

    def load_state_dict(self, state: dict) -> None:
        self.agent.load_state_dict(state["agent"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        if "reward_rms" in state:
            self.reward_rms.load_state_dict(state["reward_rms"])
            self._warned_termination = bool(state.get("warned_termination", False))
        elif self.config.center_rewards:  # a checkpoint from before center_rewards existed
            warnings.warn("learner.center_rewards: the checkpoint holds no reward mean; r̄ restarts from the next "
                          "rollout", stacklevel=2)
        self._disc_return = state["disc_return"].clone()
        self.global_step = int(state["global_step"])
        self.generator.set_state(state["generator"])
        if "env" in state:  # checkpoints written before environments were saved restart them from a reset
            obs = load_env_state(self.envs, self._episodes, state["env"])
            self._obs = self._obs if obs is None else obs

    def close(self) -> None:
        self.envs.close()
