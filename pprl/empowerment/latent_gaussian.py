"""The latent linear-Gaussian channel (Zhao, Lu, Abbeel & Tiomkin 2021, "Efficient Empowerment
Estimation for Unsupervised Stabilization", ICLR): empowerment in closed form from a learned channel
that is linear in the action sequence.

Model. An embedding z = e(s) (the identity by default, or an MLP) and, for an action sequence
a = a_{1:K} flattened to ``[m·K]`` (a_1 first),

    z_K = b(z) + A(z) a + ε,   ε ~ N(0, Σ),

with b and A small MLPs (each a linear map plus an MLP correction; A(z) reshaped to ``[n_z, m·K]``)
and Σ = L Lᵀ a full, state-independent covariance through its Cholesky factor L (positive
diagonal). Σ must be full: over K > 1 steps the noise accumulates through the dynamics and is not
white (for s' = A s + B a + N(0, σ² I), Σ_K = σ² Σ_{k<K} A^k A^kᵀ and the gain is
G_K = [A^{K−1}B, …, AB, B]).

Fit. Maximum likelihood on K-step windows (s, a_{1:K}, s_K) (:func:`pprl.data.k_step_windows`):
minibatch Adam on the Gaussian negative log-likelihood per window,

    −log p(z_K | z, a) = ½ ‖L⁻¹ (z_K − b(z) − A(z) a)‖² + Σ_i log L_ii + (n_z/2) log 2π,

then one exact coordinate step in Σ: Σ ← the residual covariance over all windows, its
maximum-likelihood value given b and A.

Internally the networks read and predict z standardised per coordinate (mean and scale of the
training data); the reported A(z), b(z), Σ and likelihoods are in z's own units. With the MLP
embedding the likelihood alone is degenerate (shrinking e shrinks Σ and raises the likelihood
without bound; a constant e predicts itself perfectly), so there the target e(s_K) is held fixed
(stop-gradient) in the likelihood and e is trained through the channel's input and a reconstruction
term ``recon_weight`` · ‖d(e(s)) − ŝ‖² with a decoder d (ŝ the standardised observation): an
autoencoder-regularised latent, a design choice of this module rather than a fixed recipe of the paper.

Empowerment. Given the channel at z, whitening by L⁻¹ (any square root of Σ gives the same singular
values) turns it into L⁻¹ z_K = L⁻¹(b + A a) + N(0, I), so under E‖a_{1:K}‖² ≤ P

    E(s) = max_{p(a)} I(a; z_K | z) = Σ_i ½ log(1 + p_i λ_i²),   λ = svd(L⁻¹ A(z)),

with the powers p_i from water-filling (Cover & Thomas §9.4), batched over states
(:func:`pprl.empowerment.exact.water_filling_batched`). The estimate is the capacity of the fitted
channel: exact for it, and as good as its fit of the true channel.

Randomness: networks are initialised under :func:`pprl.rng.seeded`; minibatches are drawn from a
``torch.Generator`` owned by the channel; the global RNG is never touched.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..data.transitions import Transitions
from ..data.windows import k_step_windows
from ..rng import seeded
from ..threads import uses_threads
from .exact import water_filling_batched

EMBEDDINGS = ("identity", "mlp")


def _mlp(n_in: int, hidden: int, n_out: int, zero_last: bool = False) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                        nn.Linear(hidden, n_out))
    if zero_last:  # start as the linear part alone; the correction grows from zero
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
    return net


class _Nets(nn.Module):
    """e (and its decoder d), b(u) = W u + c + mlp(u), A(u) = A₀ + mlp(u), and L, on standardised u."""

    def __init__(self, obs_dim: int, act_dim: int, horizon: int, latent_dim: int, embedding: str, hidden: int):
        super().__init__()
        nz, d = latent_dim, act_dim * horizon
        self.nz, self.d = nz, d
        if embedding == "mlp":
            self.encoder = _mlp(obs_dim, hidden, nz)
            self.decoder = _mlp(nz, hidden, obs_dim)
        else:
            self.encoder = self.decoder = None
        self.b_lin = nn.Linear(nz, nz)
        with torch.no_grad():
            self.b_lin.weight.copy_(torch.eye(nz))  # z_K ≈ z until the data say otherwise
            self.b_lin.bias.zero_()
        self.b_mlp = _mlp(nz, hidden, nz, zero_last=True)
        self.A0 = nn.Parameter(torch.zeros(nz, d))
        self.A_mlp = _mlp(nz, hidden, nz * d, zero_last=True)
        self.L_raw = nn.Parameter(torch.zeros(nz, nz))  # strict lower triangle as is, diagonal as log
        # standardisation of observations (encoder input) and of z (channel input and output)
        self.register_buffer("obs_loc", torch.zeros(obs_dim))
        self.register_buffer("obs_scale", torch.ones(obs_dim))
        self.register_buffer("z_loc", torch.zeros(nz))
        self.register_buffer("z_scale", torch.ones(nz))

    def embed(self, s: torch.Tensor) -> torch.Tensor:
        if self.encoder is None:
            return s
        return self.encoder((s - self.obs_loc) / self.obs_scale)

    def standardise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.z_loc) / self.z_scale

    def tril(self) -> torch.Tensor:
        return torch.tril(self.L_raw, -1) + torch.diag(self.L_raw.diagonal().exp())

    def drift(self, u: torch.Tensor) -> torch.Tensor:  # b̃(u) → [N, nz]
        return self.b_lin(u) + self.b_mlp(u)

    def gain(self, u: torch.Tensor) -> torch.Tensor:  # Ã(u) → [N, nz, d]
        return self.A0 + self.A_mlp(u).view(-1, self.nz, self.d)

    def nll(self, u: torch.Tensor, a: torch.Tensor, u_K: torch.Tensor) -> torch.Tensor:
        """−log N(u_K; b̃(u) + Ã(u) a, L Lᵀ) per window, in standardised coordinates → [N]."""
        L = self.tril()
        r = u_K - self.drift(u) - (self.gain(u) @ a.unsqueeze(-1)).squeeze(-1)
        white = torch.linalg.solve_triangular(L, r.unsqueeze(-1), upper=False).squeeze(-1)
        return 0.5 * white.square().sum(-1) + self.L_raw.diagonal().sum() + 0.5 * self.nz * math.log(2 * math.pi)


class LatentGaussianChannel:
    """A learned channel z_K = b(z) + A(z) a_{1:K} + N(0, Σ) on z = e(s) and its closed-form
    empowerment (module docstring; Zhao et al. 2021). ``fit`` takes transitions (cut into K-step
    windows) or windows ``(s, a, s_K)``; ``empowerment(states, power)`` returns nats per state.

    ``embedding``: ``"identity"`` (z = s) or ``"mlp"`` (z = e(s), ``latent_dim`` wide, default
    ``obs_dim``; trained with a decoder's reconstruction term of weight ``recon_weight``).
    ``hidden``: width of the two-layer tanh MLPs. :attr:`trace` holds the training loss per Adam
    step (mean over the minibatch: the negative log-likelihood of z_K in nats per window, plus the
    reconstruction term with an MLP embedding).
    """

    def __init__(self, obs_dim: int, act_dim: int, horizon: int = 1, *, embedding: str = "identity",
                 latent_dim: int | None = None, hidden: int = 64, lr: float = 5e-3, recon_weight: float = 1.0,
                 seed: int = 0, device="cpu"):
        for name, value in (("obs_dim", obs_dim), ("act_dim", act_dim), ("horizon", horizon), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {embedding!r}")
        if embedding == "identity" and latent_dim not in (None, obs_dim):
            raise ValueError(f"the identity embedding has latent_dim = obs_dim = {obs_dim}, got latent_dim={latent_dim!r}")
        latent_dim = obs_dim if latent_dim is None else latent_dim
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
        if not lr > 0 or not recon_weight >= 0:
            raise ValueError(f"lr must be > 0 and recon_weight >= 0, got {lr!r}, {recon_weight!r}")
        self.obs_dim, self.act_dim, self.horizon, self.latent_dim = obs_dim, act_dim, horizon, latent_dim
        self.embedding, self.lr, self.recon_weight = embedding, float(lr), float(recon_weight)
        self.seed, self.device = int(seed), torch.device(device)
        with seeded(self.seed):
            self.nets = _Nets(obs_dim, act_dim, horizon, latent_dim, embedding, int(hidden)).to(self.device)
        self.optimizer = torch.optim.Adam(self.nets.parameters(), lr=self.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.trace = np.empty(0)
        self._standardised = False

    # ------------------------------------------------------------------ input checks
    def _states(self, states, what: str = "states") -> torch.Tensor:
        s = torch.as_tensor(states, dtype=torch.float32, device=self.device)
        if s.dim() != 2 or s.shape[1] != self.obs_dim:
            raise ValueError(f"{what} must be [N, {self.obs_dim}] (obs_dim), got shape {tuple(s.shape)}")
        if not bool(s.isfinite().all()):
            raise ValueError(f"{what} contain NaN or infinite values")
        return s

    def _windows(self, data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(data, Transitions):
            if data.obs_dim != self.obs_dim or data.act_dim != self.act_dim:
                raise ValueError(f"transitions have obs_dim {data.obs_dim} and act_dim {data.act_dim}; this channel "
                                 f"was built for {self.obs_dim} and {self.act_dim}")
            data = k_step_windows(data, self.horizon)
        if not (isinstance(data, (tuple, list)) and len(data) == 3):
            raise ValueError("fit needs Transitions or windows (s [N, n], a [N, K, m], s_K [N, n]) "
                             f"(see pprl.data.k_step_windows), got {type(data).__name__}")
        s, a, s_K = (torch.as_tensor(x, dtype=torch.float32, device=self.device) for x in data)
        K, m = self.horizon, self.act_dim
        if a.dim() == 2 and K == 1:
            a = a.unsqueeze(1)
        if a.dim() != 3 or a.shape[1:] != (K, m):
            raise ValueError(f"window actions must be [N, K={K}, m={m}], got shape {tuple(a.shape)}")
        s, s_K = self._states(s, "window start states s"), self._states(s_K, "window end states s_K")
        if not s.shape[0] == a.shape[0] == s_K.shape[0]:
            raise ValueError(f"s, a and s_K must share their length N, got {s.shape[0]}, {a.shape[0]}, {s_K.shape[0]}")
        if not bool(a.isfinite().all()):
            raise ValueError("window actions contain NaN or infinite values")
        if s.shape[0] < 2:
            raise ValueError(f"fit needs at least 2 windows of {K} steps, got {s.shape[0]} (are the episodes shorter "
                             f"than the horizon?)")
        return s, a.reshape(a.shape[0], K * m), s_K

    # ------------------------------------------------------------------ training
    @uses_threads
    def fit(self, data, steps: int = 2000, *, batch_size: int = 256, anneal: bool = True,
            noise_step: bool = True, progress: bool = True) -> "LatentGaussianChannel":
        """``steps`` Adam steps on minibatches of ``batch_size`` windows (reshuffled every pass over
        the data) of the loss above. ``data``: :class:`~pprl.data.Transitions` (cut with
        :func:`~pprl.data.k_step_windows` at this channel's horizon) or windows ``(s, a, s_K)``.
        The standardisation of z is set from the first call's data. ``anneal``: the learning rate
        follows a cosine from ``lr`` to ``lr``/20 over the call. ``noise_step``: afterwards Σ is set to
        the residual covariance of all windows, its maximum-likelihood value given b and A (exact
        coordinate ascent; the likelihood is flat in Σ near its optimum, where Adam settles slowly).
        Appends to :attr:`trace`."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        s, a, s_K = self._windows(data)
        nets, N = self.nets, s.shape[0]
        if not self._standardised:
            with torch.no_grad():
                both = torch.cat([s, s_K])
                nets.obs_loc.copy_(both.mean(0))
                nets.obs_scale.copy_(both.std(0).clamp_min(1e-6))
                if nets.encoder is None:
                    nets.z_loc.copy_(nets.obs_loc)
                    nets.z_scale.copy_(nets.obs_scale)
            self._standardised = True
        B = min(batch_size, N)
        trace = np.empty(steps)
        perm, pos = None, N
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc=f"latent Gaussian channel K={self.horizon}", leave=False)
        try:
            for step in range(steps):
                if anneal:
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
                if pos + B > N:
                    perm, pos = torch.randperm(N, generator=self.generator, device=self.device), 0
                idx = perm[pos:pos + B]
                pos += B
                loss = self._loss(s[idx], a[idx], s_K[idx])
                if not bool(torch.isfinite(loss)):
                    raise RuntimeError(f"the latent Gaussian channel's loss became {float(loss)} at step {step}; "
                                       f"try a smaller lr (now {self.lr:g}) or standardised inputs")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                trace[step] = float(loss.detach())
                if bar is not None:
                    bar.update()
                    if step % 50 == 0:
                        bar.set_postfix(loss=f"{trace[step]:.4f}")
        finally:
            if bar is not None:
                bar.close()
        self.trace = np.concatenate([self.trace, trace])
        if noise_step and steps > 0:
            self._set_noise_to_residuals(s, a, s_K)
        return self

    def _set_noise_to_residuals(self, s, a, s_K) -> None:
        """Σ ← the residual covariance over all windows, its maximum-likelihood value given b and A
        (the likelihood is flat in Σ near its optimum, so Adam leaves it slow to settle)."""
        nets, chunk, parts = self.nets, 65536, []
        with torch.no_grad():
            for i in range(0, s.shape[0], chunk):
                u, u_K = nets.standardise(nets.embed(s[i:i + chunk])), nets.standardise(nets.embed(s_K[i:i + chunk]))
                parts.append(u_K - nets.drift(u) - (nets.gain(u) @ a[i:i + chunk].unsqueeze(-1)).squeeze(-1))
            r = torch.cat(parts).double()
            cov = r.T @ r / r.shape[0] + 1e-10 * torch.eye(nets.nz, dtype=r.dtype, device=r.device)
            L, info = torch.linalg.cholesky_ex(cov)
            if int(info) == 0:
                nets.L_raw.copy_((torch.tril(L, -1) + torch.diag(L.diagonal().log())).to(nets.L_raw))

    def _loss(self, s, a, s_K) -> torch.Tensor:
        nets = self.nets
        z = nets.embed(s)
        z_K = nets.embed(s_K)
        if nets.encoder is not None:
            z_K = z_K.detach()
        nll = nets.nll(nets.standardise(z), a, nets.standardise(z_K)) + nets.z_scale.log().sum()
        loss = nll.mean()
        if nets.decoder is not None and self.recon_weight > 0:
            target = (s - nets.obs_loc) / nets.obs_scale
            loss = loss + self.recon_weight * (nets.decoder(z) - target).square().sum(-1).mean()
        return loss

    # ------------------------------------------------------------------ the fitted channel
    def embed(self, states) -> torch.Tensor:
        """z = e(s) → ``[N, n_z]``."""
        with torch.no_grad():
            return self.nets.embed(self._states(states))

    def gain(self, states) -> torch.Tensor:
        """A(z) → ``[N, n_z, m·K]`` in z's units (columns: a_1's coordinates first)."""
        with torch.no_grad():
            u = self.nets.standardise(self.nets.embed(self._states(states)))
            return self.nets.z_scale.unsqueeze(-1) * self.nets.gain(u)

    def drift(self, states) -> torch.Tensor:
        """b(z) → ``[N, n_z]``: the mean of z_K under a zero action sequence."""
        with torch.no_grad():
            u = self.nets.standardise(self.nets.embed(self._states(states)))
            return self.nets.z_loc + self.nets.z_scale * self.nets.drift(u)

    def noise_cov(self) -> torch.Tensor:
        """Σ → ``[n_z, n_z]`` in z's units."""
        with torch.no_grad():
            L = self.nets.z_scale.unsqueeze(-1) * self.nets.tril()
            return L @ L.T

    def log_prob(self, data) -> torch.Tensor:
        """log p(z_K | z, a_{1:K}) per window → ``[N]`` nats (``data`` as in :meth:`fit`)."""
        s, a, s_K = self._windows(data)
        with torch.no_grad():
            nets = self.nets
            u, u_K = nets.standardise(nets.embed(s)), nets.standardise(nets.embed(s_K))
            return -(nets.nll(u, a, u_K) + nets.z_scale.log().sum())

    @uses_threads
    def empowerment(self, states, power: float) -> torch.Tensor:
        """Capacity of the fitted channel at each state under E‖a_{1:K}‖² ≤ ``power`` → ``[N]``
        nats: λ = svdvals(L⁻¹ A(z)) for all states at once, then batched water-filling."""
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power) or power < 0:
            raise ValueError(f"power must be a finite number >= 0 (E‖a_1:K‖² ≤ power), got {power!r}")
        s = self._states(states)
        with torch.no_grad():
            u = self.nets.standardise(self.nets.embed(s))
            # Σ = D L̃ L̃ᵀ D and A = D Ã (D = diag(z_scale)), so L⁻¹A = L̃⁻¹Ã
            white = torch.linalg.solve_triangular(self.nets.tril(), self.nets.gain(u), upper=False)
            lam = torch.linalg.svdvals(white.double())
            return water_filling_batched(lam, 1.0, float(power))[0].to(torch.float32)
