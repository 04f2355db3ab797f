"""Variational empowerment (Mohamed & Rezende 2015, "Variational Information Maximisation for
Intrinsically Motivated Reinforcement Learning").

Empowerment E(s) = max_ω I(a_{1:K}; s_K | s). With a source ω(a | s) and a planning distribution
q(a | s, s_K) (Barber & Agakov 2003),

    I^ω(a; s_K | s) ≥ H(ω(·|s)) + E_{ω(a|s) p(s_K|s,a)}[log q(a | s, s_K)],

with gap E_{s_K} KL[p^ω(a | s, s_K) ‖ q(a | s, s_K)] ≥ 0; maximising over q and ω gives E(s). The
estimate is a Monte-Carlo lower bound (unbiased for the bound, so below E(s) in expectation).

Training alternates (i) maximum likelihood for q on fresh (a, s_K) pairs and (ii) a source update:

* ``"psi"`` (discrete sources; the paper's §3.3, β = 1): given q the optimal source is
  ω*(a|s) = exp(u(s, a) − ψ*(s)), u(s, a) = E_{p(s_K|s,a)} log q(a|s, s_K), ψ*(s) = log Σ_a e^{u(s,a)}
  = the bound's maximum. We regress log q(a|s, s_K) on log ω(a|s) + ψ(s) by least squares over the
  source's logits and the ψ network; at the fixed point log ω + ψ = u, so ω = ω* and ψ(s) is the
  empowerment (β = 1 makes the value the MI itself). The regression is fitted pointwise, so its
  actions may come from any distribution covering ω's support: we draw them from
  (1 − ε) ω + ε·uniform (``explore`` = ε) and importance-weight q's likelihood and the trace back
  to ω. Drawn from ω alone, sequences whose mass falls early get no data and the source stalls
  below capacity (a fixed point of the on-policy regression).
* ``"ascent"``: plain stochastic gradient ascent of the bound in ω — the score-function gradient
  E_ω[∇log ω(a|s) (log q(a|s,s_K) − b(s))] plus the exact entropy gradient for discrete sources
  (b(s) the per-state mean, a baseline), the reparameterisation gradient for Gaussian sources.

Channels:

* :class:`~pprl.empowerment.channels.TabularChannel` (and ``GridWorld``): ω(a_{1:K}|s) and
  q(a_{1:K}|s, s_K) are each **one categorical over the |A|^K action sequences** (a_1 slowest, the
  order of ``channel.compose(K)``), with logits from a small MLP on one-hot states (for q: the
  one-hot s and s_K concatenated), amortised over states. Given ``observe`` (state indices →
  observations, e.g. ``GridWorld.render``'s images), the networks see each state's observation
  instead of its one-hot vector: flattened (``encoder="mlp"``) or through a convolutional encoder
  (``encoder="conv"``), the paper's setting of an agent that sees images. The entropy H(ω(·|s)) is then exact and
  only E[log q] is sampled. s_K is drawn from ``channel.compose(K)``. This is practical while
  |A|^K is in the thousands; an autoregressive factorisation for longer horizons is not built.
* :class:`~pprl.empowerment.channels.LinearGaussianChannel`: ω(a_{1:K}) = N(μ, Σ) (state-free, as
  the channel's empowerment is), rescaled so that E‖a‖² = ‖μ‖² + tr Σ = ``power`` exactly (the
  capacity grows with power, so the constraint E‖a‖² ≤ P binds); q(a | s, s_K) = N(W s_K + V s + c, LLᵀ),
  which contains the exact posterior of a Gaussian source. The optimum is water-filling
  (:func:`~pprl.empowerment.exact.linear_gaussian_empowerment`). Only ``"ascent"`` applies.

Why the bound is written in torch rather than through
:func:`pprl.inference.barber_agakov.barber_agakov_terms`: that function returns one term per joint
sample summed over every other batch dimension, so amortising over a batch of states loses the
per-state values ``__call__`` must return (and that the ψ regression needs per (s, a)); and the
discrete source's gradient needs the score-function term, which a trace of a sampled categorical
does not carry. The same pair is still available as a Pyro model and guide (:meth:`Empowerment.model`,
:meth:`Empowerment.guide`); ``barber_agakov_terms(model, guide, "a", "s_K", N, states)`` gives the
sum over the states of the same bound, which the tests check.

Randomness: networks are initialised under :func:`pprl.rng.seeded`; every sample is drawn from a
``torch.Generator`` owned by the estimator (training) or made per call (evaluation), so the global
torch RNG is never touched and the same ``seed`` gives the same numbers.
"""
from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as pdist
import torch
from torch import nn
from torch.nn import functional as F

from ..models.encoders import ConvEncoder
from ..rng import seeded
from ..threads import uses_threads
from .channels import LinearGaussianChannel, TabularChannel
from .continuous import ContinuousNets, continuous_batch, is_continuous_channel

_EVAL_STREAM = 1_000_003  # offset of the evaluation generator's seed from the training one


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _observe_all(observe, num_states: int, device, encoder: str) -> torch.Tensor:
    """``observe`` on every state index → float32 ``[S, ...]`` on ``device``, checked."""
    with torch.no_grad():
        obs = torch.as_tensor(observe(torch.arange(num_states, device=device)), dtype=torch.float32, device=device)
    if obs.dim() < 2 or obs.shape[0] != num_states:
        raise ValueError(f"observe must map state indices [N] to observations [N, ...]; on all {num_states} "
                         f"states it returned shape {tuple(obs.shape)}")
    if encoder == "conv" and obs.dim() != 4:
        raise ValueError(f"encoder='conv' needs image observations [N, C, H, W], got {tuple(obs.shape)}")
    if not torch.isfinite(obs).all():
        raise ValueError("observe returned NaN or inf entries")
    return obs


class _TabularNets(nn.Module):
    """Source logits h(s) → [X], planner logits g(s, s_K) → [X], and ψ(s), X = |A|^K.

    The networks see state s through its input x_s (:meth:`onehot`): the one-hot vector of s, or,
    given ``observations [S, ...]`` (one per state, computed once), the observation of s, flattened
    into the MLPs (``encoder="mlp"``) or encoded by a
    :class:`~pprl.models.encoders.ConvEncoder` of ``features`` outputs (``encoder="conv"``). The
    conv path has two encoders: φ_ω, shared by the source and ψ, and φ_q, the planner's, applied
    to both s and s_K (g = MLP([φ_q(x_s), φ_q(x_{s_K})])). Source and ψ share one because one loss
    fits them jointly (log ω + ψ ≈ log q); q has its own because q and ω are trained in
    alternation by different losses and optimisers, and a shared encoder would let each step move
    the other's function (the source step's regression target log q must stay fixed). φ_q runs on
    the S observations once per call and its features are indexed by s and s_K: the same values
    as encoding every draw's image, at the cost of S images instead of one per draw.
    """

    def __init__(self, num_states: int, num_inputs: int, hidden: int, observations: torch.Tensor | None = None,
                 encoder: str = "mlp", features: int = 64):
        super().__init__()
        self.S, self.conv = num_states, encoder == "conv"
        self.register_buffer("observations", observations, persistent=False)
        if self.conv:
            source_encoder, self.planner_encoder = (ConvEncoder(observations.shape[1:], features) for _ in range(2))
            self.source = nn.Sequential(source_encoder, _mlp(features, hidden, num_inputs))
            self.planner = _mlp(2 * features, hidden, num_inputs)
            self.psi = nn.Sequential(source_encoder, _mlp(features, hidden, 1))
            return
        n_in = num_states if observations is None else observations[0].numel()
        self.source = _mlp(n_in, hidden, num_inputs)
        self.planner = _mlp(2 * n_in, hidden, num_inputs)
        self.psi = _mlp(n_in, hidden, 1)

    def onehot(self, s: torch.Tensor) -> torch.Tensor:
        """The networks' input for states s ``[...]``: one-hot ``[..., S]``, or the observation
        (flattened for ``encoder="mlp"``)."""
        if self.observations is None:
            return F.one_hot(s, self.S).to(self.source[0].weight.dtype)
        x = self.observations[s]
        return x if self.conv else x.flatten(s.dim())

    def source_parameters(self) -> list[nn.Parameter]:
        """The source's and ψ's parameters, each once (they share φ_ω)."""
        return list(dict.fromkeys([*self.source.parameters(), *self.psi.parameters()]))

    def planner_parameters(self) -> list[nn.Parameter]:
        return [*(self.planner_encoder.parameters() if self.conv else ()), *self.planner.parameters()]

    def source_logp(self, s):  # [B] → [B, X]
        return torch.log_softmax(self.source(self.onehot(s)), -1)

    def planner_logp(self, s, s_K):  # [...], [...] → [..., X]
        if self.conv:
            phi = self.planner_encoder(self.observations)  # [S, features]
            return torch.log_softmax(self.planner(torch.cat([phi[s], phi[s_K]], -1)), -1)
        return torch.log_softmax(self.planner(torch.cat([self.onehot(s), self.onehot(s_K)], -1)), -1)


class _GaussianNets(nn.Module):
    """Source N(μ, Σ) rescaled to power P; planner N(W s_K + V s + c, L Lᵀ)."""

    def __init__(self, n: int, d: int, power: float):
        super().__init__()
        self.power = float(power)
        self.mu = nn.Parameter(torch.zeros(d))
        self.source_tril = nn.Parameter(torch.eye(d))       # lower triangle used; diagonal via |·|
        self.W = nn.Parameter(torch.zeros(d, n))
        self.V = nn.Parameter(torch.zeros(d, n))
        self.c = nn.Parameter(torch.zeros(d))
        self.planner_tril = nn.Parameter(torch.eye(d))

    @staticmethod
    def _tril(raw):
        return torch.tril(raw, -1) + torch.diag(raw.diagonal().abs() + 1e-6)

    def source(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(loc, scale_tril) of ω after rescaling to E‖a‖² = P."""
        L = self._tril(self.source_tril)
        scale = torch.sqrt(self.power / (self.mu.square().sum() + L.square().sum()))
        return scale * self.mu, scale * L

    def planner(self, s, s_K) -> pdist.MultivariateNormal:
        return pdist.MultivariateNormal(s_K @ self.W.T + s @ self.V.T + self.c, scale_tril=self._tril(self.planner_tril))


class Empowerment:
    """Variational K-step empowerment of a channel (module docstring): ``fit`` trains ω and q,
    ``__call__(states)`` returns the Monte-Carlo lower bound in nats per state.

    ``channel``: a :class:`TabularChannel` (states are indices) or a :class:`LinearGaussianChannel`
    (states are ``[N, n]`` tensors; ``power`` = P of E‖a_{1:K}‖² ≤ P is then required).
    ``source_update``: ``"psi"`` (the paper's ψ(s) regression, β = 1; tabular only) or ``"ascent"``
    (gradient ascent of the bound); ``None`` picks ``"psi"`` for tabular channels, ``"ascent"``
    otherwise. ``explore``: ε of the ψ regression's behaviour distribution. ``trace`` holds the training bound (mean over the step's batch, nats) per step.
    ``observe`` (tabular channels): a callable mapping state indices (LongTensor ``[N]``) to
    observations ``[N, ...]`` (for a :class:`GridWorld`, ``grid.render``: images ``[N, 1, H, W]``);
    it is called once on all states. ``encoder``: ``"mlp"`` (the networks take the one-hot state,
    or the flattened observation) or ``"conv"`` (a convolutional encoder of image observations
    ``[N, C, H, W]``; needs ``observe``). See :class:`_TabularNets` for which networks share it.
    Continuous channels (``states=`` the ``[N, n]`` states to amortise over): ``observe`` is a
    *differentiable* map from states ``[N, n]`` to images ``[N, C, H, W]`` with a ``.shape``
    (e.g. :class:`~pprl.empowerment.continuous.PendulumImage`), applied to every batch (the
    source's gradient flows through the image of s_K), with ``encoder="conv"``: ω and q each read
    the images through their own conv encoder.
    ``planner_components`` (continuous channels): J > 1 makes the planner q(a | s, s_K) a mixture
    of J full-covariance Gaussians (see :class:`~pprl.empowerment.continuous.ContinuousNets`),
    for channels whose optimal input is nearly discrete.
    ``lr``: Adam's step size (annealed by :meth:`fit`); None gives 1e-2, or 3e-3 with
    ``encoder="conv"``, whose convolutional weights do not train stably with Adam steps of 1e-2.
    """

    def __init__(self, channel, horizon: int = 1, *, hidden: int = 128, lr: float | None = None,
                 observe=None, encoder: str = "mlp",
                 power: float | None = None, source_update: str | None = None, explore: float = 0.5,
                 states=None, planner_components: int = 1, seed: int = 0, device="cpu"):
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if encoder not in ("mlp", "conv"):
            raise ValueError(f"encoder must be 'mlp' or 'conv', got {encoder!r}")
        if (observe is not None or encoder != "mlp") and not (isinstance(channel, TabularChannel)
                                                             or is_continuous_channel(channel)):
            raise ValueError(f"observe and encoder='conv' apply to tabular and continuous channels, "
                             f"got a {type(channel).__name__}")
        if is_continuous_channel(channel) and (observe is None) != (encoder == "mlp"):
            raise ValueError("a continuous channel seen as images needs both observe= (a differentiable map from "
                             "states [N, n] to images [N, C, H, W] with a .shape, e.g. PendulumImage()) and "
                             "encoder='conv'")
        if int(planner_components) != 1 and not is_continuous_channel(channel):
            raise ValueError(f"planner_components applies to continuous channels (a tabular planner is already a "
                             f"full categorical; a linear-Gaussian one is exact), got {planner_components} for a "
                             f"{type(channel).__name__}")
        self.channel, self.horizon, self.seed = channel, int(horizon), int(seed)
        self.device, self.lr = torch.device(device), float(lr if lr is not None else 3e-3 if encoder == "conv" else 1e-2)
        if isinstance(channel, TabularChannel):
            self.kind = "tabular"
            source_update = "psi" if source_update is None else source_update
            if source_update not in ("psi", "ascent"):
                raise ValueError(f"source_update must be 'psi' or 'ascent', got {source_update!r}")
            self.kernel = channel.compose(self.horizon).to(self.device)  # [S, X, S]
            self.num_inputs = self.kernel.shape[1]
            observations = None if observe is None else _observe_all(observe, channel.num_states, self.device, encoder)
            if encoder == "conv" and observations is None:
                raise ValueError("encoder='conv' needs observe= (state indices → images [N, C, H, W]), "
                                 "e.g. observe=grid.render for a GridWorld")
            with seeded(self.seed):
                self.nets = _TabularNets(channel.num_states, self.num_inputs, int(hidden), observations,
                                         encoder).to(self.device)
            self.q_opt = torch.optim.Adam(self.nets.planner_parameters(), lr=self.lr)
            self.source_opt = torch.optim.Adam(self.nets.source_parameters(), lr=self.lr)
        elif isinstance(channel, LinearGaussianChannel):
            self.kind = "gaussian"
            source_update = "ascent" if source_update is None else source_update
            if source_update != "ascent":
                raise ValueError(f"a LinearGaussianChannel's Gaussian source supports source_update='ascent' only, "
                                 f"got {source_update!r}")
            if power is None or not power > 0:
                raise ValueError(f"a LinearGaussianChannel needs power > 0 (E‖a‖² ≤ power), got {power!r}")
            self.n, m = channel.A.shape[0], channel.B.shape[1]
            with seeded(self.seed):
                self.nets = _GaussianNets(self.n, m * self.horizon, power).to(self.device)
            self.q_opt = torch.optim.Adam([self.nets.W, self.nets.V, self.nets.c, self.nets.planner_tril], lr=self.lr)
            self.source_opt = torch.optim.Adam([self.nets.mu, self.nets.source_tril], lr=self.lr)
        elif is_continuous_channel(channel):
            self.kind = "continuous"
            source_update = "ascent" if source_update is None else source_update
            if source_update != "ascent":
                raise ValueError(f"a continuous channel's Gaussian source supports source_update='ascent' only, "
                                 f"got {source_update!r}")
            if states is None:
                raise ValueError("a continuous channel needs states=[N, obs_dim]: the states to amortise over "
                                 "(their mean and spread also standardise the networks' inputs)")
            self.n = channel.obs_dim
            pool = self._check_states(states)
            if len(pool) < 2:
                raise ValueError(f"states must hold at least 2 states, got {len(pool)}")
            self.states = pool
            with seeded(self.seed):
                self.nets = ContinuousNets(self.n, channel.act_dim * self.horizon, int(hidden), channel.action_low,
                                           channel.action_high, pool.mean(0), pool.std(0).clamp_min(1e-3),
                                           observe=observe, components=planner_components).to(self.device)
                # the displacement's spread under the initial source, from a pilot batch
                with torch.no_grad():
                    g = torch.Generator(device=self.device).manual_seed(self.seed)
                    pilot = pool[torch.randint(len(pool), (256,), generator=g, device=self.device)]
                    _, s_K, s0, _ = continuous_batch(self.nets, channel, pilot, 16, g)
                    self.nets.delta_std.copy_((s_K - s0).reshape(-1, self.n).std(0).clamp_min(1e-6))
            planner = [self.nets.planner, self.nets.planner_linear, getattr(self.nets, "planner_encoder", None)]
            source = [self.nets.source, getattr(self.nets, "source_encoder", None)]
            self.q_opt = torch.optim.Adam([p for m in planner if m is not None for p in m.parameters()], lr=self.lr)
            self.source_opt = torch.optim.Adam([p for m in source if m is not None for p in m.parameters()], lr=self.lr)
        else:
            raise TypeError(f"channel must be a TabularChannel, a LinearGaussianChannel or a continuous channel "
                            f"(rollout, action_low, action_high, noise_dim; see pprl.empowerment.continuous), "
                            f"got {type(channel).__name__}")
        if not 0 <= explore <= 1:
            raise ValueError(f"explore must be in [0, 1], got {explore}")
        self.source_update, self.explore = source_update, float(explore)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.trace = np.empty(0)

    # ------------------------------------------------------------------ sampling
    def _tabular_batch(self, s: torch.Tensor, M: int, g: torch.Generator):
        """a ~ ω(·|s) and s_K ~ p(·|s, a), M per state: ``[B]`` → ``[B, M]`` each, plus log ω ``[B, X]``."""
        logp = self.nets.source_logp(s)
        a = torch.multinomial(logp.detach().exp(), M, replacement=True, generator=g)
        rows = self.kernel[s.unsqueeze(1), a]  # [B, M, S]
        s_K = torch.multinomial(rows.reshape(-1, rows.shape[-1]), 1, generator=g).view(a.shape)
        return a, s_K, logp

    def _gaussian_batch(self, s: torch.Tensor, M: int, g: torch.Generator):
        """a = loc + L ε (reparameterised) and s_K by stepping the channel K times: ``[B, M, ·]``."""
        loc, L = self.nets.source()
        B = s.shape[0]
        eps = torch.randn(B, M, loc.shape[0], generator=g, device=self.device, dtype=loc.dtype)
        a = loc + eps @ L.T
        s0 = s.unsqueeze(1).expand(B, M, self.n).reshape(B * M, self.n)
        x, steps = s0, a.reshape(B * M, self.horizon, -1)
        for k in range(self.horizon):
            x = self.channel.sample(x, steps[:, k], generator=g)
        return a, x.view(B, M, self.n), s0.view(B, M, self.n), pdist.MultivariateNormal(loc, scale_tril=L)

    def _random_states(self, B: int, g: torch.Generator) -> torch.Tensor:
        if self.kind == "tabular":
            S = self.channel.num_states
            if B >= S:
                return torch.arange(S, device=self.device)
            return torch.randperm(S, generator=g, device=self.device)[:B]
        if self.kind == "continuous":  # a minibatch of the states to amortise over
            return self.states[torch.randint(len(self.states), (B,), generator=g, device=self.device)]
        return torch.randn(B, self.n, generator=g, device=self.device)

    def _check_states(self, states) -> torch.Tensor:
        s = torch.as_tensor(states, dtype=torch.float32, device=self.device)
        if s.dim() != 2 or s.shape[1] != self.n:
            raise ValueError(f"states must be [N, {self.n}], got {tuple(s.shape)}")
        if not torch.isfinite(s).all():
            raise ValueError("states has NaN or inf entries")
        return s

    # ------------------------------------------------------------------ training
    @uses_threads
    def fit(self, steps: int = 2000, *, batch_states: int | None = None, num_samples: int = 64,
            anneal: bool = True, progress: bool = True, states=None) -> "Empowerment":
        """Alternate one Adam step of maximum likelihood for q and one source step
        (``source_update``) on a fresh batch of ``batch_states`` states (all states of a tabular
        channel when None or larger; 64 standard-normal states for a Gaussian one when None) ×
        ``num_samples`` joint draws each. ``anneal``: the learning rate follows a cosine from
        ``lr`` to ``lr``/20 over the call (the last steps then average out the gradient noise).
        Appends the batch's bound to :attr:`trace`."""
        if int(steps) < 0 or int(num_samples) < 1:
            raise ValueError(f"steps must be >= 0 and num_samples >= 1, got {steps}, {num_samples}")
        if states is not None:
            if self.kind != "continuous":
                raise ValueError("fit(states=...) applies to continuous channels (the states to amortise over)")
            self.states = self._check_states(states)
        B = batch_states if batch_states is not None else (self.channel.num_states if self.kind == "tabular" else 64)
        trace = np.empty(int(steps))
        bar = _progress(int(steps), f"empowerment K={self.horizon}", progress)
        for step in range(int(steps)):
            if anneal:  # cosine from lr to lr/20 over this call's steps
                for opt in (self.q_opt, self.source_opt):
                    for group in opt.param_groups:
                        group["lr"] = self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
            s = self._random_states(int(B), self.generator)
            trace[step] = self._tabular_step(s, num_samples) if self.kind == "tabular" else self._gaussian_step(s, num_samples)
            if bar is not None:
                bar.update()
                if step % 50 == 0:
                    bar.set_postfix(bound=f"{trace[step]:.4f}")
        if bar is not None:
            bar.close()
        self.trace = np.concatenate([self.trace, trace])
        return self

    def _tabular_step(self, s, M) -> float:
        logp = self.nets.source_logp(s)  # [B, X]
        omega = logp.detach().exp()
        psi_mode = self.source_update == "psi"
        # the ψ regression draws from (1 − ε) ω + ε uniform so that rarely chosen sequences keep
        # getting data; q's likelihood and the bound are importance-weighted back to ω (w ≤ 1/(1 − ε))
        behaviour = (1 - self.explore) * omega + self.explore / self.num_inputs if psi_mode else omega
        a = torch.multinomial(behaviour, M, replacement=True, generator=self.generator)  # [B, M]
        rows = self.kernel[s.unsqueeze(1), a]  # [B, M, S]
        s_K = torch.multinomial(rows.reshape(-1, rows.shape[-1]), 1, generator=self.generator).view(a.shape)
        w = (omega.gather(-1, a) / behaviour.gather(-1, a)).to(logp.dtype)
        log_q = self.nets.planner_logp(s.unsqueeze(1).expand_as(a), s_K).gather(-1, a.unsqueeze(-1)).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)  # [B], differentiable (the ascent uses its gradient)
        bound = float((entropy + (w * log_q).mean(1)).mean().detach())
        self.q_opt.zero_grad(set_to_none=True)
        (-(w * log_q).mean()).backward()
        self.q_opt.step()
        target = log_q.detach()
        log_w = logp.gather(-1, a)  # [B, M]
        if psi_mode:  # (log q − log ω(a|s) − ψ(s))² over the source's logits and ψ
            psi = self.nets.psi(self.nets.onehot(s))  # [B, 1]
            loss = (target - log_w - psi).square().mean()
        else:  # −(H(ω) + E_ω[log q]) by the score function with a per-state baseline
            advantage = target - target.mean(1, keepdim=True)
            loss = -(entropy.mean() + (log_w * advantage).mean())
        self.source_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.source_opt.step()
        return bound

    def _gaussian_step(self, s, M) -> float:
        """Maximum likelihood for q on detached draws, then ascent of the reparameterised bound in ω."""
        if self.kind == "continuous":
            a, s_K, s0, omega = continuous_batch(self.nets, self.channel, s, M, self.generator)
            planner = self.nets.planner_log_prob
        else:
            a, s_K, s0, omega = self._gaussian_batch(s, M, self.generator)
            planner = lambda s, s_K, a: self.nets.planner(s, s_K).log_prob(a)  # noqa: E731
        log_q = planner(s0, s_K.detach(), a.detach())
        self.q_opt.zero_grad(set_to_none=True)
        (-log_q.mean()).backward()
        self.q_opt.step()
        bound = omega.entropy().mean() + planner(s0, s_K, a).mean()  # reparameterised in ω
        self.source_opt.zero_grad(set_to_none=True)
        (-bound).backward()
        self.source_opt.step()
        return float(bound.detach())

    # ------------------------------------------------------------------ evaluation
    @uses_threads
    def estimate(self, states, num_samples: int = 4096, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(bound, standard error) per state, nats → ``[N]`` each: the mean over ``num_samples``
        draws a ~ ω(·|s), s_K ~ p(·|s, a) of the pointwise bound log q(a|s, s_K) − log ω(a|s)
        (stderr = sd/√M). Unbiased for the bound. The entropy is sampled rather than closed form
        on purpose: at the optimum the pointwise term is log p(s_K|s,a)/p(s_K|s), constant on the
        source's support for a discrete channel, so the variance vanishes there, while an exact
        H(ω) plus sampled log q misses rarely drawn actions (their −ε log q) without the standard
        error showing it. Seeded by ``seed`` (default: derived from the estimator's seed), so the
        same call gives the same numbers."""
        g = torch.Generator(device=self.device).manual_seed(self.seed + _EVAL_STREAM if seed is None else int(seed))
        M = int(num_samples)
        if M < 2:
            raise ValueError(f"num_samples must be >= 2, got {num_samples}")
        with torch.no_grad():
            if self.kind == "tabular":
                s = torch.as_tensor(states, dtype=torch.long, device=self.device).reshape(-1)
                if s.numel() and (s.min() < 0 or s.max() >= self.channel.num_states):
                    raise ValueError(f"states must be indices in [0, {self.channel.num_states}), got {s.tolist()}")
                a, s_K, logp = self._tabular_batch(s, M, g)
                # q's log-probabilities over all |A|^K sequences, a chunk of draws at a time (≤ 2^24
                # numbers), reading one entry per draw: the same values, bounded memory
                chunk = max(1, 2 ** 24 // max(1, s.numel() * logp.shape[-1]))
                log_q = torch.cat([self.nets.planner_logp(s.unsqueeze(1).expand(-1, a[:, j:j + chunk].shape[1]),
                                                          s_K[:, j:j + chunk])
                                   .gather(-1, a[:, j:j + chunk].unsqueeze(-1)).squeeze(-1)
                                   for j in range(0, M, chunk)], 1)
                terms = log_q - logp.gather(-1, a)
            elif self.kind == "continuous":
                s = self._check_states(states)
                u, s_K, s0, omega = continuous_batch(self.nets, self.channel, s, M, g)
                terms = self.nets.planner_log_prob(s0, s_K, u) - omega.log_prob(u)
            else:
                s = torch.as_tensor(states, dtype=torch.float32, device=self.device)
                if s.dim() != 2 or s.shape[1] != self.n:
                    raise ValueError(f"states must be [N, {self.n}], got {tuple(s.shape)}")
                a, s_K, s0, omega = self._gaussian_batch(s, M, g)
                terms = self.nets.planner(s0, s_K).log_prob(a) - omega.log_prob(a)
        return terms.mean(1), terms.std(1) / math.sqrt(M)

    def __call__(self, states, num_samples: int = 4096, seed: int | None = None) -> torch.Tensor:
        """The lower bound on E(s) per state → ``[N]`` nats (:meth:`estimate` without the error)."""
        return self.estimate(states, num_samples, seed)[0]

    def source_probs(self, states) -> torch.Tensor:
        """ω(a_{1:K} | s) → ``[N, |A|^K]`` (tabular channels)."""
        s = torch.as_tensor(states, dtype=torch.long, device=self.device).reshape(-1)
        with torch.no_grad():
            return self.nets.source_logp(s).exp()

    def psi(self, states) -> torch.Tensor:
        """ψ(s) → ``[N]``: the ψ regression's own empowerment estimate (β = 1; tabular channels)."""
        s = torch.as_tensor(states, dtype=torch.long, device=self.device).reshape(-1)
        with torch.no_grad():
            return self.nets.psi(self.nets.onehot(s)).squeeze(-1)

    # ------------------------------------------------------------------ the Pyro view
    def model(self, states: torch.Tensor):
        """ω and the channel as a Pyro model over a plate of ``states``. Tabular channels: sites
        ``a`` (the action sequence's index) and ``s_K``. Continuous channels: ``u`` (the unbounded
        action sequence, a = box(tanh u)), ``noise`` (the rollout's standard-normal input) and
        ``s_K`` (deterministic given both)."""
        if self.kind == "continuous":
            return self._continuous_model(states)
        if self.kind != "tabular":
            raise NotImplementedError("the Pyro view covers tabular and continuous channels")
        with pyro.plate("states", states.shape[0], dim=-1):
            a = pyro.sample("a", pdist.Categorical(logits=self.nets.source_logp(states)))
            s_K = pyro.sample("s_K", pdist.Categorical(probs=self.kernel[states, a].to(torch.float32)))
        return a, s_K

    def guide(self, s_K: torch.Tensor, states: torch.Tensor):
        """q(a | s, s_K) as the model's amortised guide (Barber–Agakov calling convention); for a
        continuous channel q(u | s, s_K), the action-space planner (a Gaussian or a mixture) pulled back to u."""
        with pyro.plate("states", states.shape[0], dim=-1):
            if self.kind == "continuous":
                return pyro.sample("u", self._planner_u(states.expand(*s_K.shape[:-1], -1), s_K))
            return pyro.sample("a", pdist.Categorical(logits=self.nets.planner_logp(states.expand_as(s_K), s_K)))

    def _continuous_model(self, states: torch.Tensor):
        nets, n = self.nets, self.n
        with pyro.plate("states", states.shape[0], dim=-1):
            u = pyro.sample("u", nets.source_dist(states))
            shape = self.channel.noise_shape(self.horizon)
            noise = pyro.sample("noise", pdist.Normal(torch.zeros(shape, device=self.device), 1.0).to_event(2))
            lead = torch.broadcast_shapes(u.shape[:-1], noise.shape[:-2])
            s0 = states.expand(*lead, n).reshape(-1, n)
            a = nets.action(u.expand(*lead, u.shape[-1]).reshape(-1, nets.d))
            s_K = self.channel.rollout(s0, a, noise.expand(*lead, *shape).reshape(-1, *shape)).reshape(*lead, n)
            s_K = pyro.deterministic("s_K", s_K, event_dim=1)
        return u, s_K

    def _planner_u(self, s: torch.Tensor, s_K: torch.Tensor) -> pdist.TransformedDistribution:
        """q(u | s, s_K): the planner's density over a (a Gaussian or a mixture), through u = atanh((a − mid)/half) (the
        density :meth:`ContinuousNets.planner_log_prob` computes)."""
        from torch.distributions import transforms as T

        nets = self.nets
        half = ((nets.high - nets.low) / 2).repeat(nets.d // nets.low.shape[0])
        mid = ((nets.high + nets.low) / 2).repeat(nets.d // nets.low.shape[0])
        to_u = [T.AffineTransform(-mid / half, 1 / half, event_dim=1),
                T.IndependentTransform(T.TanhTransform().inv, 1)]
        return pdist.TransformedDistribution(nets.planner_dist(s, s_K), to_u)
