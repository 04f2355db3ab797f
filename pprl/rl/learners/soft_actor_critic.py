r"""The soft actor-critic core that SAC (online) and the offline learners (CQL, MISA) share: a
squashed-Gaussian actor, twin critics with Polyak-averaged targets, the temperature α, and one
gradient step on a minibatch, with optional extra terms on the critics' and the actor's losses.

Per gradient step (Haarnoja et al. 2018), α = e^{log α}:

    y = r + γ (1 − terminated) [min_i Q̄_i(s', a') − α log π(a'|s')],  a' ~ π(·|s')
    L_Q = Σ_i E (Q_i(s, a) − y)²  (+ the learner's critic term)
    L_π = E_{a~π} [α log π(a|s) − min_i Q_i(s, a)]  (+ the learner's actor term)
    L_α = −E [log α · (log π(a|s) + H̄)],  H̄ = −dim(A)

The actor steps every ``policy_frequency`` critic steps, that many times (CleanRL's delayed
updates); the targets move by Polyak averaging at rate τ after every critic step.
"""
from __future__ import annotations

import copy
import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ...data import Transitions
from ...rng import seeded
from .continuous_nets import QNetwork, SquashedGaussianActor

__all__ = ["SoftActorCritic"]

CriticTerm = Callable[["SoftActorCritic", Transitions, Sequence[QNetwork]], tuple[Tensor, dict]]
ActorTerm = Callable[["SoftActorCritic", Transitions, Tensor, Tensor], tuple[Tensor, dict]]


class SoftActorCritic(nn.Module):
    """Networks, optimisers and the gradient step (module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, low, high, *, hidden: Sequence[int] = (256, 256),
                 gamma: float = 0.99, tau: float = 0.005, policy_lr: float = 3e-4, q_lr: float = 1e-3,
                 policy_frequency: int = 2, alpha: float = 0.2, autotune: bool = True, backup_entropy: bool = True,
                 seed: int = 0, device="cpu"):
        super().__init__()
        self.gamma, self.tau, self.policy_frequency = gamma, tau, policy_frequency
        self.backup_entropy = bool(backup_entropy)
        self.device = torch.device(device)
        with seeded(seed):
            self.actor = SquashedGaussianActor(obs_dim, act_dim, hidden, low, high)
            self.q1 = QNetwork(obs_dim, act_dim, hidden)
            self.q2 = QNetwork(obs_dim, act_dim, hidden)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha)), requires_grad=autotune)
        self.to(self.device)
        self.q_optimizer = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=q_lr)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=policy_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=policy_lr) if autotune else None
        self.target_entropy = -float(act_dim)
        self.gradient_steps = 0

    def alpha(self) -> Tensor:
        return self.log_alpha.detach().exp()

    def gradient_step(self, batch: Transitions, generator: torch.Generator, critic_term: CriticTerm | None = None,
                      actor_term: ActorTerm | None = None, actor_uses_q: bool = True) -> dict[str, Tensor]:
        """One critic step (and the delayed actor/α steps) on ``batch``; returns what to record.
        ``actor_uses_q=False`` drops −min Q(s, π(s)) from the actor's loss (a warm-up in which
        ``actor_term`` alone, e.g. behaviour cloning, trains the policy)."""
        s, a, r, s2 = batch.obs, batch.act, batch.reward, batch.next_obs
        with torch.no_grad():
            a2, logp2 = self.actor.sample(s2, generator)
            q_next = torch.min(self.q1_target(s2, a2), self.q2_target(s2, a2))
            if self.backup_entropy:  # the soft value V(s') = E[Q(s', a') − α log π(a'|s')]
                q_next = q_next - self.alpha() * logp2
            target = r + self.gamma * (~batch.terminated).float() * q_next
        q1, q2 = self.q1(s, a), self.q2(s, a)
        q_loss = (q1 - target).square().mean() + (q2 - target).square().mean()
        stats: dict = {"q_loss": q_loss.detach(), "q_mean": q1.detach().mean()}
        if critic_term is not None:
            extra, extra_stats = critic_term(self, batch, (self.q1, self.q2))
            q_loss = q_loss + extra
            stats.update(extra_stats)
        self.q_optimizer.zero_grad()
        q_loss.backward()
        self.q_optimizer.step()
        if self.gradient_steps % self.policy_frequency == 0:
            for _ in range(self.policy_frequency):
                pi, logp = self.actor.sample(s, generator)
                q_pi = torch.min(self.q1(s, pi), self.q2(s, pi)) if actor_uses_q else 0.0
                actor_loss = (self.alpha() * logp - q_pi).mean()
                stats.update(actor_loss=actor_loss.detach(), entropy=-logp.detach().mean())
                if actor_term is not None:
                    extra, extra_stats = actor_term(self, batch, pi, logp)
                    actor_loss = actor_loss + extra
                    stats.update(extra_stats)
                self.actor_optimizer.zero_grad()
                actor_loss.backward()
                self.actor_optimizer.step()
                if self.alpha_optimizer is not None:
                    alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
                    self.alpha_optimizer.zero_grad()
                    alpha_loss.backward()
                    self.alpha_optimizer.step()
        with torch.no_grad():
            for net, target_net in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
                for p, tp in zip(net.parameters(), target_net.parameters()):
                    tp.lerp_(p, self.tau)
        self.gradient_steps += 1
        return stats

    def full_state(self) -> dict:
        """Networks, α, optimisers and the step count (``torch.load(weights_only=True)``-safe)."""
        return {"modules": self.state_dict(), "q_optimizer": self.q_optimizer.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "alpha_optimizer": self.alpha_optimizer.state_dict() if self.alpha_optimizer else {},
                "gradient_steps": int(self.gradient_steps)}

    def load_full_state(self, state: dict) -> None:
        self.load_state_dict(state["modules"])
        self.q_optimizer.load_state_dict(state["q_optimizer"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        if self.alpha_optimizer is not None:
            self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.gradient_steps = int(state["gradient_steps"])
