"""Latent (local-latent) dynamics models as Pyro models: one latent state z_t per time step.

For B sub-sequences of T observations out of N, inside one subsampled plate (scale N/B):

    z_0 ~ N(0, I),    z_t | z_{t−1}, a_{t−1} ~ N(f(z_{t−1}, a_{t−1}), diag s(z_{t−1}, a_{t−1})²),
    o_t | z_t ~ N(g(z_t), σ² I)   or   Bernoulli(sigmoid g(z_t)) per pixel,

a VAE with stochastic latent dynamics ("learn an embedding of the image and a dynamics model
jointly", Levine, CS 294-112, lecture on variational inference and generative models). With
``transition: none`` every z_t ~ N(0, I) independently (a VAE; with a linear decoder and Gaussian
noise, probabilistic PCA, Tipping & Bishop 1999). With linear f, g and Gaussian noise the model
is a linear-Gaussian state-space model, whose exact likelihood is the Kalman filter's
(:mod:`pprl.models.kalman`). The amortised guide is :class:`pprl.inference.amortised.AmortisedGuide`.

With ``transition.bayesian: true`` the transition's weights are a global latent θ ~ N(0, diag σ_p²)
outside the plate (site ``transition_weights``), z_t | z_{t−1}, a_{t−1}, θ ~ N(z_{t−1} + f(z_{t−1},
a_{t−1}; θ), diag s²), and the guide adds q(θ) = N(μ, diag σ²): the ELBO gains −KL(q(θ) ‖ p(θ)) once,
and VIME's information gain about θ applies to transitions between codes
(:meth:`pprl.inference.latent_posterior.LatentPosterior.transition_posterior`).
"""
from __future__ import annotations

import math
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

from ..spec import as_model_spec
from .encoders import ConvDecoder
from .latent_spec import LatentSpec
from .layers import ACTIVATIONS, batched_mlp, mlp_layout, mlp_prior_scale

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU, "softplus": nn.Softplus}


def make_mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATION_MODULES[activation]())
    return nn.Sequential(*layers)


def positive(raw: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """softplus(raw) + floor: the scale parameterisation of the model and the guide."""
    return F.softplus(raw) + floor


def inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class BayesianTransition(nn.Module):
    """The mean change f(z, a; θ) of a Bayesian transition (``transition.bayesian: true``): an MLP
    of widths [dz + da, *hidden_sizes, dz] (no hidden layer for ``linear``) whose weights are the
    flat vector θ ∈ R^D, laid out as :func:`pprl.models.layers.mlp_layout` lays out a ``bnn``
    dynamics model's, so q(θ) carries over to one (:meth:`LatentPosterior.transition_posterior`)."""

    def __init__(self, latent_size: int, act_dim: int, hidden_sizes: tuple[int, ...], activation: str):
        super().__init__()
        self.sizes = [latent_size + act_dim, *hidden_sizes, latent_size]
        self.layers, self.num_weights = mlp_layout(self.sizes)
        self.activation = ACTIVATIONS[activation]

    def forward(self, theta: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """f(h; θ) for ``h [..., dz + da]`` with one ``theta [D]`` for every row, or one per row
        (``theta [..., D]`` with h's leading shape) → ``[..., dz]``."""
        lead = h.shape[:-1]
        if theta.dim() == 1:
            out = batched_mlp(theta[None], h.reshape(1, -1, h.shape[-1]), self.layers, self.activation)
        else:
            out = batched_mlp(theta.reshape(-1, theta.shape[-1]), h.reshape(-1, 1, h.shape[-1]), self.layers,
                              self.activation)
        return out.reshape(*lead, self.sizes[-1])


class LatentModel(nn.Module):
    """p(o_{0:T−1}, z_{0:T−1} | a_{0:T−2}) of a ``type: latent`` spec (see the module docstring).

    Observations are flat, ``[..., obs_dim]`` with obs_dim = ∏ ``spec.obs_shape`` (images are
    reshaped for a conv decoder). Called as a Pyro model on ``obs [B, T, obs_dim]``,
    ``act [B, T − 1, act_dim]`` and the number N of sequences the minibatch stands for."""

    def __init__(self, spec: LatentSpec, act_dim: int):
        super().__init__()
        self.spec, self.act_dim = spec, int(act_dim)
        self.obs_shape = spec.obs_shape
        self.obs_dim = math.prod(self.obs_shape)
        self.latent_size = dz = spec.latent_size
        dec = spec.decoder
        if dec.type == "linear":
            self.decoder = nn.Linear(dz, self.obs_dim)
        elif dec.type == "mlp":
            self.decoder = make_mlp([dz, *dec.hidden_sizes, self.obs_dim], dec.activation)
        else:
            self.decoder = nn.Sequential(ConvDecoder(dz, self.obs_shape), nn.Flatten(-3))
        tr = spec.transition
        self.bayesian = tr.bayesian
        if tr.bayesian:
            hidden = tr.hidden_sizes if tr.type == "mlp" else ()
            self.transition = BayesianTransition(dz, self.act_dim, hidden, tr.activation)
            self.register_buffer("transition_prior_scale", mlp_prior_scale(
                self.transition.layers, tr.prior.weight_scale, tr.prior.bias_scale))
            self.transition_scale_raw = nn.Parameter(torch.full((dz,), inverse_softplus(0.5)))
        elif tr.type == "linear":
            self.transition = nn.Linear(dz + self.act_dim, dz)
            with torch.no_grad():  # start near the identity map z_{t+1} ≈ z_t
                self.transition.weight.mul_(0.1)
                self.transition.weight[:, :dz] += torch.eye(dz)
            self.transition_scale_raw = nn.Parameter(torch.full((dz,), inverse_softplus(0.5)))
        elif tr.type == "mlp":
            self.transition = make_mlp([dz + self.act_dim, *tr.hidden_sizes, 2 * dz], tr.activation)
        else:
            self.transition = None
        lik = spec.likelihood
        if lik.type == "normal":
            log_scale = torch.tensor(math.log(lik.scale))
            if lik.learn_scale:
                self.obs_log_scale = nn.Parameter(log_scale)
            else:
                self.register_buffer("obs_log_scale", log_scale)

    # ------------------------------------------------------------------ the pieces
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def initial(self, batch_shape: torch.Size | tuple) -> dist.Distribution:
        """p(z_0) = N(0, I) with batch shape ``batch_shape``."""
        zeros = torch.zeros(*batch_shape, self.latent_size, device=self.device)
        return dist.Normal(zeros, torch.ones_like(zeros)).to_event(1)

    def weights_prior(self) -> dist.Distribution:
        """p(θ) = N(0, diag σ_p²) of a Bayesian transition's weights, event shape ``[D]``."""
        scale = self.transition_prior_scale
        return dist.Normal(torch.zeros_like(scale), scale).to_event(1)

    def transition_loc_scale(self, z: torch.Tensor, a: torch.Tensor,
                             theta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of p(z_{t+1} | z_t, a_t). The MLP predicts the change z_{t+1} − z_t. A
        Bayesian transition needs its weights ``theta`` (``[D]``, or one row per state)."""
        h = torch.cat([z, a], -1)
        if self.bayesian:
            if theta is None:
                raise ValueError("a Bayesian transition (transition.bayesian: true) needs its weights theta: a draw "
                                 "of q(θ) or its mean (LatentPosterior.transition_weights())")
            scale = positive(self.transition_scale_raw, self.spec.transition.min_scale)
            return z + self.transition(theta, h), scale.expand_as(z)
        if self.spec.transition.type == "linear":
            loc = self.transition(h)
            return loc, positive(self.transition_scale_raw).expand_as(loc)
        out = self.transition(h)
        delta, raw = out.split(self.latent_size, -1)
        return z + delta, positive(raw, self.spec.transition.min_scale)

    def prior(self, z_prev: torch.Tensor | None, a_prev: torch.Tensor | None, batch_shape,
              theta: torch.Tensor | None = None) -> dist.Distribution:
        """p(z_t | z_{t−1}, a_{t−1}) (with weights ``theta`` for a Bayesian transition); N(0, I) at
        t = 0 and for ``transition: none``."""
        if z_prev is None or self.transition is None:
            return self.initial(batch_shape)
        loc, scale = self.transition_loc_scale(z_prev, a_prev, theta)
        return dist.Normal(loc, scale).to_event(1)

    @property
    def obs_scale(self) -> torch.Tensor:
        return self.obs_log_scale.exp()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """g(z): the Gaussian mean, or the Bernoulli logits → ``[..., obs_dim]``."""
        return self.decoder(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[o | z]: g(z), or sigmoid g(z) for the Bernoulli likelihood."""
        g = self.decode(z)
        return torch.sigmoid(g) if self.spec.likelihood.type == "bernoulli" else g

    def likelihood(self, z: torch.Tensor) -> dist.Distribution:
        """p(o_t | z_t), event shape ``[obs_dim]`` (Bernoulli accepts intensities in [0, 1])."""
        g = self.decode(z)
        if self.spec.likelihood.type == "bernoulli":
            return dist.Bernoulli(logits=g, validate_args=False).to_event(1)
        return dist.Normal(g, self.obs_scale.expand_as(g), validate_args=False).to_event(1)

    # ------------------------------------------------------------------ the Pyro model
    def forward(self, obs: torch.Tensor, act: torch.Tensor, num_sequences: int | None = None):
        """The Pyro model on ``obs [B, T, obs_dim]``, ``act [B, T − 1, act_dim]``: sites ``z_t``
        (latent) and ``o_t`` (observed) for t = 0 … T − 1 in the plate ``sequences`` of size N, and
        for a Bayesian transition the global site ``transition_weights`` (θ) outside it."""
        B, T = obs.shape[:2]
        theta = pyro.sample("transition_weights", self.weights_prior()) if self.bayesian else None
        subsample = torch.arange(B, device=obs.device)
        with pyro.plate("sequences", num_sequences or B, subsample=subsample):
            z = None
            for t in range(T):
                z = pyro.sample(f"z_{t}", self.prior(z, act[:, t - 1] if t else None, (B,), theta))
                pyro.sample(f"o_{t}", self.likelihood(z), obs=obs[:, t])

    # ------------------------------------------------------------------ open-loop prediction
    @torch.no_grad()
    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, sample: bool = False,
                theta: torch.Tensor | None = None) -> torch.Tensor:
        """z_0, z_1, … z_K from ``z0 [B, dz]`` and ``actions [B, K, act_dim]`` → ``[B, K + 1, dz]``:
        the transition's mean (``sample=False``) or draws from it (global torch RNG: call seeded);
        a Bayesian transition with weights ``theta`` (``[D]`` or ``[B, D]``)."""
        zs = [z0]
        for k in range(actions.shape[1]):
            if self.transition is None:
                loc, scale = torch.zeros_like(z0), torch.ones_like(z0)
            else:
                loc, scale = self.transition_loc_scale(zs[-1], actions[:, k], theta)
            zs.append(loc + scale * torch.randn_like(loc) if sample else loc)
        return torch.stack(zs, 1)

    def linear_gaussian_parameters(self) -> dict[str, torch.Tensor]:
        """The state-space matrices of a linear-Gaussian model (linear transition or none, linear
        decoder, normal likelihood): z_{t+1} = A z_t + B a_t + b + N(0, Q), o_t = C z_t + d + N(0, R),
        z_0 ~ N(m0, P0). The input of :func:`pprl.models.kalman.kalman_log_likelihood`."""
        s = self.spec
        if s.decoder.type != "linear" or s.likelihood.type != "normal" or s.transition.type == "mlp" or self.bayesian:
            raise ValueError("linear_gaussian_parameters needs decoder.type linear, likelihood.type normal "
                             "and transition.type linear (not Bayesian) or none")
        dz, like = self.latent_size, dict(device=self.device)
        if self.transition is None:
            A, Bm, b, Q = (torch.zeros(dz, dz, **like), torch.zeros(dz, self.act_dim, **like),
                           torch.zeros(dz, **like), torch.eye(dz, **like))
        else:
            W = self.transition.weight
            A, Bm, b = W[:, :dz], W[:, dz:], self.transition.bias
            Q = torch.diag(positive(self.transition_scale_raw) ** 2)
        out = {"A": A, "B": Bm, "b": b, "Q": Q, "C": self.decoder.weight, "d": self.decoder.bias,
               "R": self.obs_scale ** 2 * torch.eye(self.obs_dim, **like),
               "m0": torch.zeros(dz, **like), "P0": torch.eye(dz, **like)}
        return {k: v.detach().clone() for k, v in out.items()}


def build_latent_model(spec: LatentSpec | dict | str | Path, act_dim: int) -> LatentModel:
    """Build the latent model a ``type: latent`` spec (object, mapping, YAML path or bundled name)
    declares, for actions of ``act_dim`` numbers (0: no actions). Weights use torch's global RNG:
    build under :func:`pprl.rng.seeded` for reproducible initial values."""
    spec = as_model_spec(spec)
    if not isinstance(spec, LatentSpec):
        raise ValueError(f"{spec.source}: build_latent_model needs a 'latent' model spec, got type {spec.type!r}")
    if isinstance(act_dim, bool) or not isinstance(act_dim, int) or act_dim < 0:
        raise ValueError(f"act_dim must be an integer >= 0, got {act_dim!r}")
    return LatentModel(spec, act_dim)
