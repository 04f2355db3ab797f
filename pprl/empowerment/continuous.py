"""Continuous channels with box-bounded actions: p(s_K | s, a_{1:K}) by rolling a differentiable
simulator forward K steps, and the amortised Gaussian source and planner that
:class:`pprl.Empowerment` fits on them.

A continuous channel is any object with ``obs_dim``, ``act_dim``, ``action_low`` and
``action_high`` (``[act_dim]`` tensors), ``noise_shape(K)`` and

    rollout(s [N, n], a [N, K, m], noise [N, *noise_shape(K)]) -> s_K [N, n]

differentiable in ``a``: the noise is an explicit standard-normal input, so a rollout is
reparameterised and the bound's gradient flows through the channel. Two are built here:

* :class:`PendulumChannel`: gymnasium's ``Pendulum-v1`` dynamics in torch (the known simulator),
  with Gaussian noise on (θ, θ̇) so that the capacity is finite.
* :class:`PosteriorChannel`: any fitted dynamics :class:`~pprl.inference.posterior.Posterior`
  (a learned channel): s' = to_next_obs(s, f(x; θ) + σ_noise ⊙ ε) with θ = E_q[θ] (``theta="mean"``:
  the predictive mean and the learned noise) or θ ~ q drawn per rollout (``theta="sample"``: the
  model's uncertainty adds to the channel's noise, so empowerment falls where the model is unsure).

Source and planner for these channels (:class:`ContinuousNets`): the source draws an unbounded
u ~ ω(u | s) = N(μ(s), L(s)L(s)ᵀ) and acts a = low + (high − low)(tanh u + 1)/2; the planner is
q(a | s, s_K) = N(m(s, s_K), C(s, s_K)C(s, s_K)ᵀ) over the action (or a mixture of J such
Gaussians with weights π_j(s, s_K): ``planner_components``), read in u by the change of
variables (:meth:`ContinuousNets.planner_log_prob`); μ, L, m, C are MLPs (m plus a linear term), on states standardised by
the amortisation set's mean and spread and, for the planner, on the displacement s_K − s
standardised by its spread in a pilot batch (what q must read is the displacement, often small
beside the spread of s itself).
Because u ↦ a is invertible, I(a; s_K | s) = I(u; s_K | s), so the Barber–Agakov bound in u,
H(ω(·|s)) + E[log q(u | s, s_K)], is a lower bound on the box-constrained capacity.
"""
from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
from torch import nn

from ..models.encoders import ConvEncoder


def _box(low, high, act_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    low = torch.as_tensor(low, dtype=torch.float32).reshape(-1).expand(act_dim).clone()
    high = torch.as_tensor(high, dtype=torch.float32).reshape(-1).expand(act_dim).clone()
    if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (high > low).all()):
        raise ValueError(f"the action box must be finite with high > low, got low={low.tolist()}, high={high.tolist()}")
    return low, high


NOISE = ("final", "step")


def _check_common(noise: str, action_repeat: int) -> int:
    if noise not in NOISE:
        raise ValueError(f"noise must be one of {', '.join(NOISE)}, got {noise!r}")
    if int(action_repeat) < 1:
        raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
    return int(action_repeat)


class PendulumChannel:
    """gymnasium ``Pendulum-v1`` as a channel: observation s = (cos θ, sin θ, θ̇), θ = 0 upright,
    torque u ∈ [−2, 2], each of the K actions held for ``action_repeat`` simulator steps
    (gymnasium's equations, g = 10, m = l = 1, dt = 0.05):

        θ̇' = clip(θ̇ + (3g/(2l) sin θ + 3/(m l²) u) dt, −8, 8),   θ' = θ + θ̇' dt,

    plus Gaussian noise σ = ``noise_std`` > 0 on (θ, θ̇): with ``noise="final"`` once, on the state
    reached (sensor noise); with ``noise="step"`` after every simulator step (process noise). A
    deterministic channel with continuous inputs has unbounded capacity, so σ sets the scale.
    Which noise matters: process noise is stretched by the same dynamics that stretch the
    actions' effect, so near a linearisation the unstable upright position gains little over the
    bottom; sensor noise is not, and the upright position, where the instability spreads the
    reachable states furthest, is the most empowered (Jung, Polani & Stone 2011)."""

    obs_dim, act_dim = 3, 1

    def __init__(self, noise_std: float = 0.05, noise: str = "final", action_repeat: int = 1, g: float = 10.0,
                 dt: float = 0.05, max_speed: float = 8.0, max_torque: float = 2.0):
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0 (a deterministic continuous channel has infinite capacity), "
                             f"got {noise_std}")
        self.repeat = _check_common(noise, action_repeat)
        self.noise_std, self.noise, self.g, self.dt, self.max_speed = float(noise_std), noise, float(g), float(dt), \
            float(max_speed)
        self.action_low, self.action_high = _box(-max_torque, max_torque, 1)

    def noise_shape(self, horizon: int) -> tuple[int, int]:
        """(draws, size) of the standard-normal noise one rollout of ``horizon`` actions takes."""
        return (1 if self.noise == "final" else horizon * self.repeat), 2

    def rollout(self, s: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """s_K for ``s [N, 3]``, ``a [N, K, 1]``, ``noise [N, *noise_shape(K)]``."""
        th, thdot = torch.atan2(s[:, 1], s[:, 0]), s[:, 2]
        u = torch.maximum(torch.minimum(a[..., 0], self.action_high.to(a)), self.action_low.to(a))
        j = 0
        for k in range(a.shape[1]):
            for _ in range(self.repeat):
                thdot = (thdot + (1.5 * self.g * torch.sin(th) + 3.0 * u[:, k]) * self.dt).clamp(-self.max_speed,
                                                                                                 self.max_speed)
                th = th + thdot * self.dt
                if self.noise == "step":
                    th, thdot, j = th + self.noise_std * noise[:, j, 0], thdot + self.noise_std * noise[:, j, 1], j + 1
        if self.noise == "final":
            th, thdot = th + self.noise_std * noise[:, 0, 0], thdot + self.noise_std * noise[:, 0, 1]
        return torch.stack([torch.cos(th), torch.sin(th), thdot], -1)


class PosteriorChannel:
    """A learned channel: K actions, each held ``action_repeat`` steps, through a fitted dynamics
    :class:`~pprl.inference.posterior.Posterior`.

    One step: x = inputs(s, a), y = f(x; θ), s' = to_next_obs(s, y + σ ⊙ ε) with σ the model's
    Gaussian noise scale (in its normalised target units) times ``noise_scale``; with
    ``noise="final"`` (default) ε enters at the last step only and the earlier steps follow the
    mean, with ``noise="step"`` at every step (see :class:`PendulumChannel` for why it matters).
    With ``noise_std`` the noise is declared instead: s' = to_next_obs(s, y) + ``noise_std``·ε,
    isotropic in the observation's own units, as a known channel declares its sensor noise. The
    model's σ is its fit residual, small and uneven across dimensions where the system is nearly
    deterministic, and the channel's noise sets the resolution at which empowerment counts
    distinguishable outcomes; a declared σ makes that resolution the user's choice rather than the
    fit's.
    ``theta="mean"`` uses θ = E_q[θ] for every rollout; ``theta="sample"`` draws ``num_thetas``
    θ ~ q per call (seeded by ``seed`` plus a call counter, so runs repeat) and gives rollout i the
    draw i mod ``num_thetas`` for all steps: the model's uncertainty then adds to the channel's
    noise, and empowerment falls where the model is unsure. ``action_low``/``action_high`` bound
    the actions (the environment's action box). Assign :attr:`posterior` to follow a refitted
    posterior."""

    def __init__(self, posterior, action_low, action_high, *, theta: str = "mean", num_thetas: int = 8,
                 noise: str = "final", noise_scale: float = 1.0, noise_std: float | None = None,
                 action_repeat: int = 1, seed: int = 0):
        if theta not in ("mean", "sample"):
            raise ValueError(f"theta must be 'mean' or 'sample', got {theta!r}")
        model = posterior.model
        if model.spec.likelihood.type != "normal":
            raise ValueError(f"a PosteriorChannel needs a Gaussian likelihood, the model has "
                             f"{model.spec.likelihood.type!r}")
        if int(num_thetas) < 1 or not noise_scale > 0:
            raise ValueError(f"num_thetas must be >= 1 and noise_scale > 0, got {num_thetas}, {noise_scale}")
        if noise_std is not None and not (noise_std > 0 and noise_scale == 1.0):
            raise ValueError(f"noise_std must be > 0 and replaces the model's noise (noise_scale must stay 1), got "
                             f"noise_std={noise_std}, noise_scale={noise_scale}")
        self.repeat = _check_common(noise, action_repeat)
        self.theta, self.num_thetas, self.seed = theta, int(num_thetas), int(seed)
        self.posterior = posterior
        self.noise, self.noise_scale = noise, float(noise_scale)
        self.noise_std = None if noise_std is None else float(noise_std)
        self.obs_dim, self.act_dim = model.obs_dim, model.act_dim
        self.action_low, self.action_high = _box(action_low, action_high, self.act_dim)
        self.calls = 0

    @property
    def posterior(self):
        return self._posterior

    @posterior.setter
    def posterior(self, posterior) -> None:
        self._posterior, self._mean = posterior, None  # E_q[θ] is recomputed for a new posterior

    def noise_shape(self, horizon: int) -> tuple[int, int]:
        return (1 if self.noise == "final" else horizon * self.repeat), self.obs_dim

    def _thetas(self) -> torch.Tensor:
        if self.theta == "mean":
            if self._mean is None:
                self._mean = self.posterior.mean_theta().unsqueeze(0)
            return self._mean
        self.calls += 1
        return self.posterior.sample_theta(self.num_thetas, seed=self.seed + self.calls).detach()

    def rollout(self, s: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """s_K for ``s [N, n]``, ``a [N, K, m]``, ``noise [N, *noise_shape(K)]``."""
        model = self.posterior.model
        theta = self._thetas().to(s)  # [T, D]
        T, N = theta.shape[0], s.shape[0]
        rows = torch.arange(N, device=s.device)
        declared = self.noise_std is not None
        scale = self.noise_scale * model.noise_scale.detach().to(s)
        steps = a.shape[1] * self.repeat
        for j in range(steps):
            f = self.posterior.predictive_mean(theta, model.inputs(s, a[:, j // self.repeat]))  # [T, N, n]
            f = f[0] if T == 1 else f[rows % T, rows]  # rollout i uses θ_{i mod T}
            eps = noise[:, j] if self.noise == "step" else noise[:, 0] if j == steps - 1 else None
            if eps is None:
                s = model.to_next_obs(s, f)
            elif declared:  # in observation units, on the state reached
                s = model.to_next_obs(s, f) + self.noise_std * eps
            else:  # the model's own noise, in its target units
                s = model.to_next_obs(s, f + scale * eps)
        return s


class AmplitudeLimitedChannel:
    """s' = s + Σ_k a_k + σ ε with every a_k ∈ [−A, A]: the amplitude-limited Gaussian channel
    (Smith 1971), whose capacity-achieving input is discrete; for K = 1 its capacity is
    :func:`~pprl.empowerment.exact.amplitude_limited_capacity`. ``obs_dim`` = ``act_dim`` = 1."""

    obs_dim, act_dim = 1, 1

    def __init__(self, noise_std: float, amplitude: float = 1.0):
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std}")
        self.noise_std = float(noise_std)
        self.action_low, self.action_high = _box(-amplitude, amplitude, 1)

    def noise_shape(self, horizon: int) -> tuple[int, int]:
        return 1, 1

    def rollout(self, s: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return s + a.sum(1) + self.noise_std * noise[:, 0]


class PendulumImage:
    """A differentiable picture of a pendulum state for estimators that see pixels: s = (cos θ,
    sin θ, θ̇) → ``[2, size, size]``. Channel 0 draws the rod at θ, channel 1 at θ − θ̇·dt (where it
    was one simulator step earlier, ignoring the torque): two frames, because one frame hides the
    velocity. A pixel at distance d from the rod (a segment from the centre to radius 0.8, θ = 0
    up) has intensity sigmoid((w − d)/τ), w = 1.5 pixels, τ = 0.5 pixels: smooth in θ, so gradients
    flow from the image back to the state (and through a channel's rollout to the actions)."""

    def __init__(self, size: int = 32, dt: float = 0.05):
        if int(size) < 8:
            raise ValueError(f"size must be >= 8, got {size}")
        self.size, self.dt = int(size), float(dt)
        self.shape = (2, self.size, self.size)
        centre = (self.size - 1) / 2
        coords = (torch.arange(self.size, dtype=torch.float32) - centre) / centre  # [-1, 1]
        self._y, self._x = torch.meshgrid(-coords, coords, indexing="ij")  # y up
        self._px = 1.0 / centre  # one pixel in these units

    def _rod(self, theta: torch.Tensor) -> torch.Tensor:
        tip_x, tip_y = (0.8 * torch.sin(theta))[..., None, None], (0.8 * torch.cos(theta))[..., None, None]
        x, y = self._x.to(theta), self._y.to(theta)
        t = ((x * tip_x + y * tip_y) / (0.64)).clamp(0, 1)  # projection onto the segment, |tip|² = 0.64
        d = torch.sqrt((x - t * tip_x) ** 2 + (y - t * tip_y) ** 2 + 1e-12) / self._px
        return torch.sigmoid((1.5 - d) / 0.5)

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        theta = torch.atan2(s[..., 1], s[..., 0])
        return torch.stack([self._rod(theta), self._rod(theta - s[..., 2] * self.dt)], -3)


def is_continuous_channel(channel) -> bool:
    return all(hasattr(channel, name) for name in ("rollout", "action_low", "action_high", "noise_shape"))


def _tril(raw: torch.Tensor, d: int) -> torch.Tensor:
    """[..., d(d+1)/2] → lower-triangular [..., d, d] with a positive diagonal (softplus + 1e-4)."""
    rows, cols = torch.tril_indices(d, d, device=raw.device)
    L = raw.new_zeros(*raw.shape[:-1], d, d)
    L[..., rows, cols] = raw
    diag = nn.functional.softplus(L.diagonal(dim1=-2, dim2=-1)) + 1e-4
    return L.tril(-1) + torch.diag_embed(diag)


class ContinuousNets(nn.Module):
    """Source ω(u | s) = N(μ(s), LLᵀ) over u ∈ R^d, d = K·m, and planner q(a | s, s_K), as MLPs on
    states standardised by (``state_mean``, ``state_std``) and displacements s_K − s by
    ``delta_std``; actions a = box(tanh u).

    The planner is one Gaussian N(m, CCᵀ) (``components=1``) or a mixture
    Σ_j π_j(s, s_K) N(m_j, C_j C_jᵀ) of J = ``components`` full-covariance Gaussians: when the
    optimal source is (nearly) discrete, as on an amplitude-limited channel, the posterior over a
    given s_K is multimodal and one Gaussian loses the Barber–Agakov bound's gap
    E[KL(p(a|s_K) ‖ q(a|s_K))]. The J means start spread over the middle 80% of the box, a
    Latin hypercube (a symmetric start would never separate); build under a seeded RNG."""

    def __init__(self, obs_dim: int, d: int, hidden: int, low: torch.Tensor, high: torch.Tensor,
                 state_mean: torch.Tensor, state_std: torch.Tensor, delta_std: torch.Tensor | None = None,
                 observe=None, features: int = 64, components: int = 1):
        super().__init__()
        if int(components) < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        self.d, self.t, self.components = d, d * (d + 1) // 2, int(components)
        self.observe = observe
        if observe is not None:  # ω and q see images of the states, through one conv encoder each
            shape = tuple(observe.shape)
            self.source_encoder, self.planner_encoder = ConvEncoder(shape, features), ConvEncoder(shape, features)
            n_in = features
        else:
            n_in = obs_dim
        self.source = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                    nn.Linear(hidden, d + self.t))
        J = self.components
        self.planner = nn.Sequential(nn.Linear(2 * n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                                     nn.Tanh(), nn.Linear(hidden, J * (d + self.t) + (J if J > 1 else 0)))
        self.planner_linear = nn.Linear(2 * n_in, d, bias=False)  # a linear path for q's mean(s)
        for layer in (self.source[-1], self.planner[-1], self.planner_linear):  # start broad and uninformed
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        if J > 1:  # component j's mean starts at mid + half · c_j: a Latin hypercube over [−0.8, 0.8]^d
            reps = d // low.shape[0]
            # on the CPU, where the layers are built (the module moves to its device afterwards)
            lo, hi = low.detach().float().cpu(), high.detach().float().cpu()
            mid, half = ((hi + lo) / 2).repeat(reps), ((hi - lo) / 2).repeat(reps)
            levels = torch.linspace(-0.8, 0.8, J)
            # coordinate 0 takes the J levels in order, every other coordinate a permutation of them
            # (drawn from torch's RNG, which the caller seeds), so the means do not start collinear
            c = torch.stack([levels] + [levels[torch.randperm(J)] for _ in range(d - 1)], -1)  # [J, d]
            with torch.no_grad():
                bias = self.planner[-1].bias[:J * (d + self.t)].view(J, d + self.t)
                bias[:, :d] = mid + half * c
        self.register_buffer("low", low.float().clone())
        self.register_buffer("high", high.float().clone())
        self.register_buffer("state_mean", state_mean.float().clone())
        self.register_buffer("state_std", state_std.float().clone())
        self.register_buffer("delta_std", (state_std if delta_std is None else delta_std).float().clone())

    def _std(self, s):
        return (s - self.state_mean) / self.state_std

    def _gaussian(self, out) -> pdist.MultivariateNormal:
        return pdist.MultivariateNormal(out[..., :self.d], scale_tril=_tril(out[..., self.d:], self.d))

    def _planner_from(self, out, linear) -> pdist.Distribution:
        """The planner's distribution over a from the MLP's output and the linear path's mean shift."""
        J, d, t = self.components, self.d, self.t
        if J == 1:
            return self._gaussian(torch.cat([out[..., :d] + linear, out[..., d:]], -1))
        params = out[..., :J * (d + t)].unflatten(-1, (J, d + t))
        loc = params[..., :d] + linear.unsqueeze(-2)
        gaussians = pdist.MultivariateNormal(loc, scale_tril=_tril(params[..., d:], d))  # batch [..., J]
        return pdist.MixtureSameFamily(pdist.Categorical(logits=out[..., J * (d + t):]), gaussians)

    def _see(self, encoder, s):
        """What a network reads of states ``[..., n]``: the standardised state, or the conv features
        of its image."""
        if self.observe is None:
            return self._std(s)
        lead = s.shape[:-1]
        return encoder(self.observe(s.reshape(-1, s.shape[-1]))).reshape(*lead, -1)

    def source_params(self, s) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(s), L(s)) of ω(u | s): ``[..., d]`` and ``[..., d, d]``."""
        out = self.source(self._see(getattr(self, "source_encoder", None), s))
        return out[..., :self.d], _tril(out[..., self.d:], self.d)

    def source_dist(self, s) -> pdist.MultivariateNormal:  # [B, n] → batch [B], event [d]
        loc, L = self.source_params(s)
        return pdist.MultivariateNormal(loc, scale_tril=L)

    def planner_dist(self, s, s_K) -> pdist.Distribution:  # q(a | s, s_K): [..., n] each → batch [...], event [d]
        if self.observe is None:
            z = torch.cat([self._std(s), (s_K - s) / self.delta_std], -1)
        else:
            z = torch.cat([self._see(self.planner_encoder, s), self._see(self.planner_encoder, s_K)], -1)
        return self._planner_from(self.planner(z), self.planner_linear(z))

    def planner_log_prob(self, s, s_K, u) -> torch.Tensor:
        """log q(u | s, s_K) = log q(a | s, s_K) + log|da/du|: the planner is a density over the
        action a = box(tanh u) (a Gaussian or a Gaussian mixture), whose posterior is sharp where the channel is precise, pulled back
        to u by the change of variables (log|da/du| = Σ log((high − low)/2 · (1 − tanh² u)))."""
        a = self.action(u).flatten(-2)
        half = ((self.high - self.low) / 2).repeat(self.d // self.low.shape[0])
        log_jac = (half.log() + 2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return self.planner_dist(s, s_K).log_prob(a) + log_jac

    def action(self, u: torch.Tensor) -> torch.Tensor:
        """u [..., d] → a [..., K, m] in the box."""
        m = self.low.shape[0]
        u = u.reshape(*u.shape[:-1], -1, m)
        return self.low + (self.high - self.low) * (torch.tanh(u) + 1) / 2


def continuous_batch(nets: ContinuousNets, channel, s: torch.Tensor, M: int, g: torch.Generator):
    """u ~ ω(·|s) (reparameterised) and s_K from the channel's rollout, M per state:
    ``[B, n]`` → u ``[B, M, d]``, s_K ``[B, M, n]``, s0 ``[B, M, n]``, ω (batch ``[B, 1]``)."""
    B, n = s.shape
    loc, L = nets.source_params(s.unsqueeze(1))  # [B, 1, d], [B, 1, d, d]
    omega = pdist.MultivariateNormal(loc, scale_tril=L)  # batch [B, 1]
    eps = torch.randn(B, M, nets.d, generator=g, device=s.device, dtype=s.dtype)
    u = loc + (L @ eps.unsqueeze(-1)).squeeze(-1)
    a = nets.action(u).reshape(B * M, -1, nets.low.shape[0])
    noise = torch.randn(B * M, *channel.noise_shape(a.shape[1]), generator=g, device=s.device, dtype=s.dtype)
    s0 = s.unsqueeze(1).expand(B, M, n)
    s_K = channel.rollout(s0.reshape(B * M, n), a, noise).reshape(B, M, n)
    return u, s_K, s0, omega



def nominal_sequences(channel, horizon: int, points: int) -> torch.Tensor:
    """The constant action sequences the tangent channel is taken at, ``[C, K, m]`` (float64):
    ``points = 1`` → the middle of the action box (a = 0 for an unbounded one); ``points = n > 1``
    → the middle, then every constant sequence on the n interior points of a uniform grid over the
    box, low + (high − low)·j/(n + 1), j = 1 … n, per action dimension (n^m sequences; for odd n the
    middle is one of them and is not repeated)."""
    low, high = getattr(channel, "action_low", None), getattr(channel, "action_high", None)
    m = channel.act_dim
    if int(points) < 1:
        raise ValueError(f"nominal_points must be >= 1, got {points}")
    if low is None:
        if points != 1:
            raise ValueError("nominal_points > 1 needs a channel with an action box (action_low/action_high)")
        return torch.zeros(1, horizon, m, dtype=torch.float64)
    mid = ((low + high) / 2).double()  # in the box's own dtype first, as before nominal_points existed
    if points == 1:
        return mid.expand(1, horizon, m).clone()
    if points ** m > 4096:
        raise ValueError(f"nominal_points ** act_dim = {points ** m} nominal sequences; at most 4096")
    low, high = low.double(), high.double()
    frac = torch.arange(1, points + 1, dtype=torch.float64) / (points + 1)
    grid = torch.cartesian_prod(*[low[i] + (high[i] - low[i]) * frac for i in range(m)]).reshape(-1, m)
    if points % 2 == 0:
        grid = torch.cat([mid[None], grid])
    return grid[:, None, :].expand(-1, horizon, m).clone()


def linearised_empowerment(channel, states: torch.Tensor, horizon: int, power: float,
                           chunk_size: int = 1024, nominal_points: int = 1) -> torch.Tensor:
    """The fast closed-form estimate: each state's K-step channel linearised at a nominal action
    sequence ā and the noise at 0,

        s_K ≈ F(s, ā, 0) + J_a (a − ā) + J_ε ε,   J_a = ∂s_K/∂a_{1:K},  J_ε = ∂s_K/∂ε,

    a linear-Gaussian channel with noise covariance Σ = J_ε J_εᵀ, whose capacity under
    E‖a − ā‖² ≤ ``power`` is water-filling over the singular values of Σ^{-1/2} J_a (Salge et al.
    2013; Zhao et al. 2021 fit J_a directly). Exact for a linear-Gaussian channel; for a nonlinear
    one it is the capacity of the tangent channel, not a bound on the true capacity, and it ignores
    the action box beyond the power it is given (a uniform box has E‖a − ā‖² = Σ (high − low)²/12
    per step).

    ā: with ``nominal_points = 1`` the middle of the action box (a = 0 for an unbounded one), so
    E(s) is read off the passive (zero-torque) trajectory from s. With ``nominal_points = n > 1``
    the estimate is the largest tangent capacity over the constant sequences of
    :func:`nominal_sequences` (the middle always among them, so never below ``nominal_points = 1``):
    the source may centre its inputs anywhere in the box, and a state the actions can steer back
    onto a highly empowered path then counts as such, where the passive linearisation sees only
    where s drifts. Every ā gets the same ``power``, so near the box's edge part of that spread
    would lie outside the box, which the tangent channel does not see: the maximum leans high, the
    more so the closer the grid comes to the edges. Batched over ``states [N, n]`` with
    ``torch.func`` (``chunk_size`` states at a time) → ``[N]`` nats."""
    from torch.func import jacrev, vmap

    from .exact import water_filling_batched

    if getattr(channel, "theta", "mean") != "mean":
        raise ValueError("linearised_empowerment needs a channel with fixed dynamics (PosteriorChannel(theta='mean'))")

    s = torch.as_tensor(states, dtype=torch.float64)
    if s.dim() != 2 or s.shape[1] != channel.obs_dim:
        raise ValueError(f"states must be [N, {channel.obs_dim}], got {tuple(s.shape)}")
    if int(horizon) < 1 or not power > 0:
        raise ValueError(f"horizon must be >= 1 and power > 0, got {horizon}, {power}")
    K, m = int(horizon), channel.act_dim
    nominal = nominal_sequences(channel, K, int(nominal_points)).to(s.device)
    e0 = torch.zeros(channel.noise_shape(K), dtype=torch.float64, device=s.device)

    def one(x, a, e):
        return channel.rollout(x[None], a[None], e[None])[0]

    jac = vmap(jacrev(one, argnums=(1, 2)), in_dims=(0, None, None))
    best = torch.full((len(s),), -torch.inf, dtype=torch.float64, device=s.device)
    for a0 in nominal:  # a handful of nominal sequences; each pass is batched over the states
        out = []
        for start in range(0, len(s), chunk_size):
            Ja, Je = jac(s[start:start + chunk_size], a0, e0)
            n = Ja.shape[1]
            Ja, Je = Ja.reshape(-1, n, K * m), Je.reshape(-1, n, e0.numel())
            cov = Je @ Je.transpose(-1, -2) + 1e-12 * torch.eye(n, dtype=s.dtype, device=s.device)
            white = torch.linalg.solve_triangular(torch.linalg.cholesky(cov), Ja, upper=False)
            out.append(water_filling_batched(torch.linalg.svdvals(white), 1.0, power)[0])
        best = torch.maximum(best, torch.cat(out))
    return best.float()
