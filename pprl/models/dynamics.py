"""Bayesian dynamics models p(s' | s, a, θ) declared as Pyro models.

Both models have one latent site, ``theta`` ∈ R^D with a Gaussian prior N(0, diag σ_p²), and a
likelihood on a normalised target ``y`` (``s' − s`` or ``s'``) given normalised inputs
``x = [s, a]``, Gaussian or (BNN only) Student-t per coordinate:

    θ ~ N(0, diag σ_p²),        y_n | x_n, θ ~ N(f(x_n; θ), diag σ²)  or  t_ν(f(x_n; θ), σ),   n = 1..N.

Keeping θ flat makes every variational family a distribution over R^D and makes particles a
leading batch dimension (see :mod:`pprl.models.layers`).
"""
from __future__ import annotations

import math
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule, PyroParam
from torch.distributions import constraints

from ..data import Transitions
from ..pyro_settings import local_params
from ..spec import ModelSpec, as_model_spec
from .layers import ACTIVATIONS, batched_mlp, local_reparam_mlp, mlp_layout, mlp_prior_scale
from .normalizer import Normalizer


class DynamicsModel(PyroModule):
    """Base class: normalisation, prior, noise and the Pyro model; subclasses define f(x; θ)."""

    supports_local_reparam = False

    def __init__(self, spec: ModelSpec, obs_dim: int, act_dim: int, param_dim: int):
        super().__init__()
        self.spec, self.obs_dim, self.act_dim, self.param_dim = spec, obs_dim, act_dim, param_dim
        self.input_dim = obs_dim + act_dim
        self.input_norm = Normalizer(self.input_dim)
        self.target_norm = Normalizer(obs_dim)
        self.register_buffer("prior_loc", torch.zeros(param_dim))
        self.register_buffer("prior_scale", torch.ones(param_dim))
        noise = torch.full((obs_dim,), spec.likelihood.noise_scale)
        if spec.likelihood.learn_noise:
            self.noise_scale = PyroParam(noise, constraint=constraints.positive)
        else:
            self.register_buffer("noise_scale", noise)

    # ------------------------------------------------------------------ data ↔ (x, y)
    def fit_normalizer(self, data: Transitions) -> "DynamicsModel":
        """Fit input/target statistics from data (no-op when the spec says ``normalize: false``)."""
        if self.spec.normalize:
            self.input_norm.fit(torch.cat([data.obs, data.act], -1))
            self.target_norm.fit(self._raw_target(data.obs, data.next_obs))
        return self

    @torch.no_grad()
    def refit_normalizer(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the normalisation to ``data`` and return the map θ' = a ⊙ θ + c under which the
        model represents the same raw-unit function: f'(x; θ') in the new units equals f(x; θ) in
        the old ones for every raw input, and the raw likelihood noise is unchanged.

        The input centre is kept and only the input scale follows the data (RMS deviation about
        the centre): a moved input centre would add a weighted sum of first-layer weights to each
        bias, a map no diagonal family (mean-field, low-rank's diagonal) can represent, while a
        diagonal a and a shift c of the output biases are exact for every family. Targets get a
        new mean and scale (output weights scaled by a_out, output biases by a_out and shifted).
        The prior stays as declared, in the new normalised units. Identity when ``normalize: false``.
        """
        a = torch.ones_like(self.prior_loc)
        c = torch.zeros_like(self.prior_loc)
        if not self.spec.normalize:
            return a, c
        if self.layers is None:
            raise NotImplementedError(f"{type(self).__name__} cannot re-express its parameters "
                                      f"for a new normalisation")
        a_in, _ = self.input_norm.refit(torch.cat([data.obs, data.act], -1), keep_mean=True)
        a_out, b_out = self.target_norm.refit(self._raw_target(data.obs, data.next_obs))
        first, last = self.layers[0], self.layers[-1]
        a[first.weight] = (1.0 / a_in)[:, None].expand(first.fan_in, first.fan_out).reshape(-1)
        a[last.weight] *= a_out.repeat(last.fan_in)  # row-major [in, out]: column o scaled by a_out[o]
        a[last.bias] = a_out
        c[last.bias] = b_out
        self.noise_scale = a_out * self.noise_scale.detach()
        return a, c

    def _raw_target(self, obs, next_obs):
        return next_obs - obs if self.spec.target == "delta" else next_obs

    def inputs(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.input_norm(torch.cat([obs, act], -1))

    def targets(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return self.target_norm(self._raw_target(obs, next_obs))

    def to_next_obs(self, obs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Map normalised targets ``y [..., N, obs_dim]`` back to next observations."""
        raw = self.target_norm.inverse(y)
        return obs + raw if self.spec.target == "delta" else raw

    def dummy_batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """A one-row (x, y, num_data) on the model's device, to set up a guide's parameters."""
        like = dict(device=self.prior_loc.device, dtype=self.prior_loc.dtype)
        return torch.zeros(1, self.input_dim, **like), torch.zeros(1, self.obs_dim, **like), 1

    # ------------------------------------------------------------------ the likelihood
    def likelihood(self, f: torch.Tensor, noise_scale: torch.Tensor | None = None) -> torch.distributions.Distribution:
        """p(y | f) per output coordinate: N(f, σ²), or Student-t(ν, f, σ) when the spec says
        ``likelihood.type: student_t`` (arguments unchecked: this sits in inner loops). σ is the
        model's own unless ``noise_scale`` (broadcastable to ``f``) is given."""
        sigma = self.noise_scale if noise_scale is None else noise_scale
        if self.spec.likelihood.type == "student_t":
            return dist.StudentT(self.spec.likelihood.df, f, sigma, validate_args=False)
        return dist.Normal(f, sigma, validate_args=False)

    def log_likelihood(self, f: torch.Tensor, y: torch.Tensor, noise_scale: torch.Tensor | None = None) -> torch.Tensor:
        """log p(y | f) summed over the output coordinates → ``f.shape[:-1]``."""
        return self.likelihood(f, noise_scale).log_prob(y).sum(-1)

    def fisher_precision(self) -> torch.Tensor:
        """The Fisher information of the likelihood about its location, per output: 1/σ² for the
        Gaussian, (ν + 1)/((ν + 3) σ²) for Student-t (the generalised Gauss–Newton weight)."""
        prec = self.noise_scale.detach().pow(-2)
        if self.spec.likelihood.type == "student_t":
            nu = self.spec.likelihood.df
            prec = prec * (nu + 1) / (nu + 3)
        return prec

    # ------------------------------------------------------------------ the model
    layers: list | None = None  # MLP-shaped models set their LayerSlices (enables factored gradients)

    def mean(self, theta: torch.Tensor, x: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """f(x; θ) for ``theta [P, D]`` and ``x [N, in]`` (or per-particle ``x [P, N, in]``) → ``[P, N, obs_dim]``.
        MLP-shaped models fill ``trace`` with each layer's (input, pre-activation), see
        :func:`pprl.models.layers.batched_mlp`."""
        raise NotImplementedError

    def mean_local_reparam(self, loc, scale, x, num_particles, randn=None):
        """f(x; θ) sampled per data point under q = N(loc, diag scale²), ``[*B, P, N, obs_dim]``
        (:func:`pprl.models.layers.local_reparam_mlp`)."""
        raise NotImplementedError(f"{type(self).__name__} has no local reparameterisation")

    def prior(self) -> dist.Distribution:
        return dist.Normal(self.prior_loc, self.prior_scale).to_event(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, num_data: int | None = None):
        """The Pyro model. ``x, y`` are a minibatch of size M out of ``num_data``; the plate
        scales the likelihood by ``num_data / M``. Under a particle plate θ has shape
        ``[P, 1, D]`` (the 1 is the data plate) and the mean is ``[P, N, obs_dim]``."""
        theta = pyro.sample("theta", self.prior())
        if theta.dim() == 1:
            loc = self.mean(theta.unsqueeze(0), x).squeeze(0)
        else:
            if theta.shape[-2] != 1:
                raise ValueError(f"theta has batch shape {tuple(theta.shape[:-1])}; its last batch "
                                 f"dimension must be the data plate (size 1)")
            loc = self.mean(theta.reshape(-1, self.param_dim), x)
            loc = loc.reshape(*theta.shape[:-2], *loc.shape[-2:])
        subsample = torch.arange(x.shape[0], device=x.device)
        with pyro.plate("data", num_data or x.shape[0], subsample=subsample):
            return pyro.sample("obs", self.likelihood(loc).to_event(1), obs=y)


class BayesianDynamics(DynamicsModel):
    """A Bayesian MLP for p(s' − s | s, a, θ) (VIME's dynamics model, Houthooft et al. 2016).

    Weights and biases have independent zero-mean Gaussian priors; ``weight_scale: fan_in``
    sets σ_p = 1/√fan_in per layer.
    """

    supports_local_reparam = True

    def __init__(self, spec: ModelSpec, obs_dim: int, act_dim: int):
        sizes = [obs_dim + act_dim, *spec.hidden_sizes, obs_dim]
        layers, param_dim = mlp_layout(sizes)
        super().__init__(spec, obs_dim, act_dim, param_dim)
        self.layers = layers
        self.activation = ACTIVATIONS[spec.activation]
        self.prior_scale.copy_(mlp_prior_scale(layers, spec.prior.weight_scale, spec.prior.bias_scale))

    def mean(self, theta, x, trace=None):
        return batched_mlp(theta, x, self.layers, self.activation, trace)

    def mean_local_reparam(self, loc, scale, x, num_particles, randn=None):
        return local_reparam_mlp(loc, scale, x, self.layers, self.activation, num_particles, randn)


class LinearGaussianDynamics(DynamicsModel):
    """Bayesian linear regression y = Wᵀ[x, 1] + ε, W ~ N(0, σ_p² I), ε ~ N(0, diag σ²) (known σ).

    θ is W ∈ R^{(in+1) × out} flattened row-major, so its posterior is Gaussian in closed form
    (:meth:`exact_posterior`), the reference every variational family is checked against.
    """

    supports_local_reparam = True

    def __init__(self, spec: ModelSpec, obs_dim: int, act_dim: int):
        super().__init__(spec, obs_dim, act_dim, (obs_dim + act_dim + 1) * obs_dim)
        ws = spec.prior.weight_scale
        self.prior_scale.fill_(1.0 / math.sqrt(self.input_dim + 1) if ws == "fan_in" else ws)
        self.layers, _ = mlp_layout([self.input_dim, obs_dim])  # W rows then bias: same layout

    def mean(self, theta, x, trace=None):
        return batched_mlp(theta, x, self.layers, None, trace)

    def mean_local_reparam(self, loc, scale, x, num_particles, randn=None):
        return local_reparam_mlp(loc, scale, x, self.layers, None, num_particles, randn)

    @torch.no_grad()
    def exact_posterior(self, data: Transitions) -> dist.MultivariateNormal:
        """p(θ | data) = N(m, Λ⁻¹) over flat θ. Output column j is independent a posteriori:
        Λ_j = I/σ_p² + XᵀX/σ_j², m_j = Λ_j⁻¹ Xᵀy_j/σ_j² with X = [x, 1] (in the model's
        normalised units, which :meth:`fit_normalizer` fixes before this is called)."""
        x = self.inputs(data.obs, data.act)
        y = self.targets(data.obs, data.next_obs)
        X = torch.cat([x, torch.ones_like(x[:, :1])], -1).double()
        k, out = X.shape[1], self.obs_dim
        prior_prec = torch.diag(1.0 / self.prior_scale.double().view(k, out)[:, 0].square())
        precision = torch.zeros(self.param_dim, self.param_dim, dtype=torch.float64, device=X.device)
        mean = torch.zeros(self.param_dim, dtype=torch.float64, device=X.device)
        for j in range(out):  # out ≤ obs_dim small blocks; the data dimension stays batched
            noise_var = float(self.noise_scale[j]) ** 2
            lam = prior_prec + X.T @ X / noise_var
            idx = torch.arange(k, device=X.device) * out + j  # row-major position of W[:, j]
            precision[idx[:, None], idx[None, :]] = lam
            mean[idx] = torch.linalg.solve(lam, X.T @ y[:, j].double() / noise_var)
        return dist.MultivariateNormal(mean.to(x.dtype), precision_matrix=precision.to(x.dtype))


MODEL_CLASSES = {"bnn": BayesianDynamics, "linear_gaussian": LinearGaussianDynamics}


@local_params
def build_model(spec: ModelSpec | dict | str | Path, obs_dim: int, act_dim: int) -> DynamicsModel:
    """Build the Pyro dynamics model a spec (object, mapping or YAML path) declares."""
    spec = as_model_spec(spec)
    if spec.type == "latent":
        raise ValueError(f"{spec.source}: a 'latent' model is built by pprl.models.latent.build_latent_model "
                         f"and fitted by pprl.fit on sequences; build_model builds dynamics models "
                         f"(bnn, linear_gaussian)")
    if obs_dim < 1 or act_dim < 0:
        raise ValueError(f"obs_dim must be >= 1 and act_dim >= 0, got {obs_dim}, {act_dim}")
    return MODEL_CLASSES[spec.type](spec, obs_dim, act_dim)
