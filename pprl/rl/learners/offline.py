r"""Offline learners: BC, CQL(H) and MISA, trained on a fixed dataset of transitions
(``pprl.load_offline``) by :func:`pprl.rl.offline_train.train_offline`. Each is built as
``cls(obs_dim, act_dim, low, high, config, seed=, device=)`` and offers ``update(batch) -> stats``,
``act(obs)`` (deterministic), ``mi_estimate(batch)`` (the MI bound of the data's pairs under its
critic, conditional form with 50 samples from π, nats; NaN without a critic) and ``state_dict`` / ``load_state_dict``.

- **BC**: max E_D log π(a|s) for the squashed Gaussian (data actions pulled 1e-4 inside the box).
- **CQL(H)** (Kumar et al. 2020): SAC's losses plus, on each critic,
  w · (E_s log ∫ e^{Q(s,a)} da − E_D[Q(s, a)]), the integral importance-sampled from N uniform
  actions, N from π(·|s) and N from π(·|s') (CQL's proposal): the conditional form of
  :func:`~pprl.rl.learners.mi_regularizer.mi_lower_bound` with base measure Lebesgue.
- **MISA** (Ma et al. 2022): SAC's losses plus, on each critic, −γ₁ · I(Q) with I the declared
  bound (``dv``: E_D[Q] − log E_s E_{a~π}[e^Q]; ``nwj``; ``conditional``) from N = 50 samples of π;
  on the actor, γ₂ times the log-partition term, whose unbiased gradient
  Σ_s w_s E_{p̃(·|s)}[∇ log π(a|s)] uses draws from p̃ ∝ π(a|s) e^{min Q(s,a)} by MCMC
  (Langevin or HMC in the pre-squash space, where the tanh Jacobian cancels; chains start at draws
  of π, ``mcmc_burn_in`` steps), minus β · E_D[log π(a|s)], the behaviour-cloning term.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ...data import Transitions
from ...inference.mcmc.gradient_mcmc import SAMPLERS
from ...rng import seeded
from .config import _FLOAT, _INT, _INTS, _STR, _BOOL, LearnerConfig, _field
from .continuous_nets import SquashedGaussianActor
from .mi_regularizer import BOUNDS, log_partition, mi_lower_bound, state_weights
from .soft_actor_critic import SoftActorCritic

__all__ = ["BC", "BCConfig", "CQL", "CQLConfig", "MISA", "MISAConfig", "OFFLINE_LEARNERS"]

_EDGE = 1e-4  # data actions on the box's edge have log π = −∞ under a tanh squash


def _inside(actor: SquashedGaussianActor, a: Tensor) -> Tensor:
    """Actions pulled inside the open box, and their pre-squash u = atanh((a − c)/h)."""
    z = ((a - actor.centre) / actor.half_width).clamp(-1 + _EDGE, 1 - _EDGE)
    return torch.atanh(z)


def data_log_prob(actor: SquashedGaussianActor, s: Tensor, a: Tensor) -> Tensor:
    """log π(a|s) of data actions ``[B]``."""
    return actor.log_prob_pre_squash(s, _inside(actor, a))


@dataclass
class _Shared(LearnerConfig):
    batch_size: int = _field(256, _INT, lambda v: v >= 1, "an integer >= 1")
    """Transitions per update."""
    hidden_sizes: tuple[int, ...] = _field((256, 256), _INTS, lambda v: len(v) >= 1 and all(s >= 1 for s in v),
                                           "a non-empty list of integers >= 1")
    """Hidden widths of the actor (and of each critic)."""


@dataclass
class BCConfig(_Shared):
    type: ClassVar[str] = "bc"
    learning_rate: float = _field(3e-4, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size."""


@dataclass
class _ActorCriticConfig(_Shared):
    gamma: float = _field(0.99, _FLOAT, lambda v: 0 <= v <= 1, "a number in [0, 1]")
    """Discount factor γ."""
    tau: float = _field(0.005, _FLOAT, lambda v: 0 < v <= 1, "a number in (0, 1]")
    """Polyak averaging rate of the target critics."""
    policy_lr: float = _field(1e-4, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size of the actor and of log α (CQL's and MISA's 1e-4)."""
    q_lr: float = _field(3e-4, _FLOAT, lambda v: v > 0, "a number > 0")
    """Adam step size of the twin critics."""
    policy_frequency: int = _field(1, _INT, lambda v: v >= 1, "an integer >= 1")
    """Actor steps per critic step (delayed updates when > 1)."""
    alpha: float = _field(1.0, _FLOAT, lambda v: v > 0, "a number > 0")
    """Entropy temperature α (the initial value when autotune)."""
    autotune: bool = _field(True, _BOOL, None, "true, false")
    """Tune α towards the target entropy −dim(A)."""
    backup_entropy: bool = _field(True, _BOOL, None, "true, false")
    """Keep SAC's −α log π(a'|s') in the critics' target (the soft value); false: the plain
    r + γ min Q'(s', a'), as JaxCQL's default configuration has it."""


@dataclass
class CQLConfig(_ActorCriticConfig):
    type: ClassVar[str] = "cql"
    cql_weight: float = _field(5.0, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """w: the conservative penalty's weight on each critic (CQL's min_q_weight)."""
    num_action_samples: int = _field(10, _INT, lambda v: v >= 1, "an integer >= 1")
    """N: actions per proposal (uniform, π(s), π(s')) per state."""
    bc_steps: int = _field(0, _INT, lambda v: v >= 0, "an integer >= 0")
    """Updates at the start in which the actor is trained by behaviour cloning, α log π − log π(a_D|s),
    instead of against Q (the original CQL code's policy_eval_start, 40,000 on D4RL locomotion)."""


@dataclass
class MISAConfig(_ActorCriticConfig):
    type: ClassVar[str] = "misa"
    mi_bound: str = _field("dv", _STR, lambda v: v in BOUNDS, ", ".join(BOUNDS))
    """The MI lower bound with Q as the critic."""
    mi_weight: float = _field(5.0, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """γ₁: the bound's weight on each critic's loss."""
    num_action_samples: int = _field(50, _INT, lambda v: v >= 1, "an integer >= 1")
    """N: samples of π per state for the inner expectation."""
    policy_mi_weight: float = _field(1.0, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """γ₂: the weight of the log-partition's gradient on the actor."""
    bc_weight: float = _field(1.0, _FLOAT, lambda v: v >= 0, "a number >= 0")
    """β: the behaviour-cloning term E_D[log π(a|s)] on the actor."""
    mcmc: str = _field("langevin", _STR, lambda v: v in SAMPLERS, ", ".join(SAMPLERS))
    """The sampler of π(a|s) e^{Q(s,a)}."""
    mcmc_burn_in: int = _field(5, _INT, lambda v: v >= 0, "an integer >= 0")
    """MCMC steps from draws of π before the draws are used."""
    mcmc_step_size: float = _field(0.01, _FLOAT, lambda v: v > 0, "a number > 0")
    """MCMC step size ε (in the pre-squash space)."""


class _ActsByMode:
    """The deterministic policy every offline learner is evaluated with: squash(μ(s))."""

    actor: SquashedGaussianActor
    device: torch.device

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        return self.actor.mode(x.reshape(len(x), -1)).cpu().numpy()


class BC(_ActsByMode):
    """Behaviour cloning (module docstring)."""

    spec_class = BCConfig

    def __init__(self, obs_dim: int, act_dim: int, low, high, config: BCConfig, *, seed: int = 0, device="cpu"):
        self.config, self.device = config.validate(), torch.device(device)
        with seeded(seed):
            self.actor = SquashedGaussianActor(obs_dim, act_dim, config.hidden_sizes, low, high).to(self.device)
        self.optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.learning_rate)

    def update(self, batch: Transitions) -> dict[str, float]:
        loss = -data_log_prob(self.actor, batch.obs, batch.act).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"bc_loss": float(loss.detach())}

    def mi_estimate(self, batch: Transitions) -> float:
        return float("nan")

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.optimizer.load_state_dict(state["optimizer"])


class _OfflineSAC(_ActsByMode):
    """SAC's gradient step on dataset minibatches, with the subclass's critic and actor terms."""

    def __init__(self, obs_dim: int, act_dim: int, low, high, config, *, seed: int = 0, device="cpu"):
        self.config, self.device = config.validate(), torch.device(device)
        self.core = SoftActorCritic(obs_dim, act_dim, low, high, hidden=config.hidden_sizes, gamma=config.gamma,
                                    tau=config.tau, policy_lr=config.policy_lr, q_lr=config.q_lr,
                                    policy_frequency=config.policy_frequency, alpha=config.alpha,
                                    autotune=config.autotune, backup_entropy=config.backup_entropy, seed=seed,
                                    device=self.device)
        self.actor = self.core.actor
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.probe_generator = torch.Generator(self.device).manual_seed(seed + 1)  # mi_estimate's: training's stream stays put

    def critic_term(self, core, batch, critics):
        return torch.zeros((), device=self.device), {}

    def actor_term(self, core, batch, pi, logp):
        return torch.zeros((), device=self.device), {}

    def warming_up(self) -> bool:
        """Whether the actor is still in its behaviour-cloning warm-up (``bc_steps``)."""
        return self.core.gradient_steps < getattr(self.config, "bc_steps", 0)

    def update(self, batch: Transitions) -> dict[str, float]:
        stats = self.core.gradient_step(batch, self.generator, self.critic_term, self.actor_term,
                                        actor_uses_q=not self.warming_up())
        return {k: float(v) for k, v in stats.items()} | {"alpha": float(self.core.alpha())}

    @torch.no_grad()
    def mi_estimate(self, batch: Transitions, num: int = 50) -> float:
        """E_s[Q₁(s, a) − log E_{a'~π(·|s)} e^{Q₁(s, a')}] over the data's pairs, ``num`` samples of π per
        state (nats): the conditional form, which Q's state-dependent offset (returns of hundreds)
        does not move; the global DV form mixes states and sits tens of nats below zero."""
        s = batch.obs
        samples = self.actor.sample(s, self.probe_generator, num=num)[0]
        return float(mi_lower_bound(self.core.q1(s, batch.act), self.core.q1(s, samples), "conditional"))

    def state_dict(self) -> dict:
        return {"core": self.core.full_state(), "generator": self.generator.get_state(),
                "probe_generator": self.probe_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.core.load_full_state(state["core"])
        self.generator.set_state(state["generator"])
        self.probe_generator.set_state(state["probe_generator"])


class CQL(_OfflineSAC):
    """CQL(H) (module docstring)."""

    spec_class = CQLConfig

    def proposal(self, batch: Transitions) -> tuple[Tensor, Tensor]:
        """CQL's samples [3N, B, d] (uniform on the box, π(·|s), π(·|s')) and their log densities [3N, B]."""
        N, (B, d) = self.config.num_action_samples, batch.act.shape
        actor = self.actor
        with torch.no_grad():
            u = torch.rand((N, B, d), generator=self.generator, device=self.device)
            uniform = actor.centre + actor.half_width * (2 * u - 1)
            log_uniform = torch.full((N, B), -float(torch.log(2 * actor.half_width).sum()), device=self.device)
            here, here_logp = actor.sample(batch.obs, self.generator, num=N)
            there, there_logp = actor.sample(batch.next_obs, self.generator, num=N)
        return torch.cat([uniform, here, there]), torch.cat([log_uniform, here_logp, there_logp])

    def critic_term(self, core, batch, critics):
        actions, log_proposal = self.proposal(batch)
        penalty = 0.0
        for q in critics:
            bound = mi_lower_bound(q(batch.obs, batch.act), q(batch.obs, actions), "conditional",
                                   log_base=torch.zeros((), device=self.device), log_proposal=log_proposal)
            penalty = penalty - bound
        return self.config.cql_weight * penalty, {"cql_penalty": penalty.detach() / len(critics)}

    def actor_term(self, core, batch, pi, logp):
        if not self.warming_up():
            return torch.zeros((), device=self.device), {}
        bc = data_log_prob(self.actor, batch.obs, batch.act).mean()
        return -bc, {"bc_log_prob": bc.detach()}


class MISA(_OfflineSAC):
    """MISA (module docstring)."""

    spec_class = MISAConfig

    def critic_term(self, core, batch, critics):
        N = self.config.num_action_samples
        with torch.no_grad():
            samples = self.actor.sample(batch.obs, self.generator, num=N)[0]
        bounds = [mi_lower_bound(q(batch.obs, batch.act), q(batch.obs, samples), self.config.mi_bound)
                  for q in critics]
        mi = sum(bounds) / len(bounds)
        return -self.config.mi_weight * sum(bounds), {"misa_mi": mi.detach()}

    def tilted_samples(self, s: Tensor) -> tuple[Tensor, Tensor]:
        """MCMC draws ũ [N, B, d] from π(a|s) e^{min Q(s,a)} in the pre-squash space, started at
        draws of π, and the state weights w_s [B] of the bound's log-partition (from Q at the starts)."""
        cfg, actor, core = self.config, self.actor, self.core
        with torch.no_grad():
            mean, log_std = actor.gaussian(s)
            u0 = mean + log_std.exp() * torch.randn((cfg.num_action_samples, *mean.shape), generator=self.generator,
                                                    device=self.device)
            q0 = torch.min(core.q1(s, actor.squash(u0)), core.q2(s, actor.squash(u0)))
            weights = state_weights(q0, cfg.mi_bound)

        def log_target(u):  # log N(u; μ, σ) + min Q(s, squash(u)): π's tanh Jacobian cancels in u
            gaussian = (-0.5 * ((u - mean) / log_std.exp()).square() - log_std).sum(-1)
            a = actor.squash(u)
            return gaussian + torch.min(core.q1(s, a), core.q2(s, a))

        u, _ = SAMPLERS[cfg.mcmc](log_target, u0, cfg.mcmc_burn_in, cfg.mcmc_step_size, self.generator)
        return u.detach(), weights

    def actor_term(self, core, batch, pi, logp):
        cfg, actor = self.config, self.actor
        term, stats = torch.zeros((), device=self.device), {}
        if cfg.policy_mi_weight:
            u, weights = self.tilted_samples(batch.obs)
            mean, log_std = actor.gaussian(batch.obs)
            log_pi = (-0.5 * ((u - mean) / log_std.exp()).square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            term = term + cfg.policy_mi_weight * (weights * log_pi.mean(0)).sum()  # gradient: ∇ log-partition
        if cfg.bc_weight:
            bc = data_log_prob(actor, batch.obs, batch.act).mean()
            term = term - cfg.bc_weight * bc
            stats["bc_log_prob"] = bc.detach()
        return term, stats


OFFLINE_LEARNERS: dict[str, type] = {"bc": BC, "cql": CQL, "misa": MISA}
