"""``laplace``: the Laplace approximation with the generalised Gauss–Newton (GGN) curvature.

Fitted as a MAP estimate θ̂ (the :class:`~.map.MAP` guide), then q = N(θ̂, H⁻¹) with

    H = Σ_n J_nᵀ diag(σ⁻²) J_n + diag(σ_p⁻²),     J_n = ∂f(x_n; θ)/∂θ |_θ̂,

the GGN of the Gaussian negative log joint (MacKay 1992; Immer et al. 2021); for a Student-t
likelihood σ⁻² is its Fisher information (ν + 1)/((ν + 3)σ²) (:meth:`DynamicsModel.fisher_precision`).
Unlike the exact Hessian it is positive definite for any network, and for a linear model it *is*
the Hessian, so the Laplace posterior of :class:`~pprl.models.dynamics.LinearGaussianDynamics` is
exact. Its predictive uses the network linearised at θ̂ (:func:`linearized_mean`), the model the
GGN posterior is exact for.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from pyro.infer.autoguide import AutoDelta, AutoMultivariateNormal
from torch.func import jacrev, jvp, vmap

from ...models.dynamics import DynamicsModel
from ...pyro_settings import local_params
from .base import Option, register_family
from .full_rank import FullRank
from .map import MAP


def ggn_precision(model: DynamicsModel, theta: torch.Tensor, x: torch.Tensor, chunk_size: int = 512) -> torch.Tensor:
    """H at ``theta [D]`` on inputs ``x [N, in]``, accumulated over chunks of the data
    (each chunk's Jacobian ``[n·out, D]`` comes from one vectorised ``jacrev``)."""
    theta = theta.detach()
    noise_prec = model.fisher_precision()
    H = torch.diag(model.prior_scale.double().pow(-2))  # float64: float32 sums lose definiteness
    for start in range(0, x.shape[0], chunk_size):
        xc = x[start:start + chunk_size]
        J = jacrev(lambda t: model.mean(t.unsqueeze(0), xc).squeeze(0))(theta)  # [n, out, D]
        Jw = J * noise_prec.sqrt()[None, :, None]
        Jw = Jw.reshape(-1, J.shape[-1]).double()
        H.addmm_(Jw.T, Jw)
    return H


@local_params
def laplace_guide(model: DynamicsModel, loc: torch.Tensor, scale_tril: torch.Tensor) -> AutoMultivariateNormal:
    """A fixed (non-trainable) Gaussian guide N(loc, LLᵀ), stored as Pyro stores it
    (``scale = diag L``, ``scale_tril = L / diag L``) so it samples and scores like any guide."""
    guide = AutoMultivariateNormal(model)
    guide._setup_prototype(*model.dummy_batch())
    scale = scale_tril.diagonal()
    for name in ("loc", "scale", "scale_tril"):
        delattr(guide, name)
    guide.register_buffer("loc", loc.detach().clone())
    guide.register_buffer("scale", scale.detach().clone())
    guide.register_buffer("scale_tril", (scale_tril / scale[:, None]).detach().clone())
    return guide


@local_params
def laplace_from_map(model: DynamicsModel, theta_map: torch.Tensor, x: torch.Tensor,
                     jitter: float = 1e-6) -> AutoMultivariateNormal:
    """Build the Laplace guide at the MAP estimate ``theta_map`` from all training inputs ``x``."""
    H = ggn_precision(model, theta_map, x)
    H.diagonal().add_(jitter)
    cov = torch.cholesky_inverse(torch.linalg.cholesky(H))
    scale_tril = torch.linalg.cholesky(cov).to(theta_map.dtype)
    return laplace_guide(model, theta_map, scale_tril)


def linearized_mean(model: DynamicsModel, theta_hat: torch.Tensor):
    """f_lin(x; θ) = f(x; θ̂) + J_x (θ − θ̂): the network linearised at θ̂, evaluated for a batch
    of θ with one vmapped forward-mode product (no Jacobian is formed) — the GLM predictive of
    Immer et al. 2021, which, unlike sampling weights through the nonlinear network, is the
    model the GGN posterior is exact for."""

    def mean_fn(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        f = lambda t: model.mean(t.unsqueeze(0), x).squeeze(0)
        f0, jv = vmap(lambda d: jvp(f, (theta_hat,), (d,)), out_dims=(None, 0))(theta - theta_hat)
        return f0 + jv

    return mean_fn


@register_family
class Laplace(FullRank):
    """A MAP fit (:class:`MAP`'s guide and behaviour) until :meth:`finish` replaces it by the
    Gaussian N(θ̂, H⁻¹), which then behaves as a fixed :class:`FullRank` guide."""

    name = "laplace"
    elbos = ("plain",)
    options: ClassVar[dict[str, Option]] = {"jitter": Option(float, 1e-6, bound="nonnegative")}
    point_estimate = True
    structure_params = ()

    @property
    def has_density(self) -> bool:  # a point mass until finish()
        return not self.at_map

    @property
    def at_map(self) -> bool:
        """True while the guide is still the MAP point estimate (before :meth:`finish`)."""
        return isinstance(self.guide, AutoDelta)

    def _build_guide(self, model):
        return MAP._build_guide(self, model)

    def warm_start(self, init):
        """Restart the MAP search at the previous posterior's mean."""
        loc = init.mean().detach()
        self.model, self.guide = init.model, AutoDelta(init.model, init_loc_fn=lambda site: loc.clone())
        return self.guide

    def finish(self, x):
        self.guide = laplace_from_map(self.model, self.guide.theta.detach(), x, self.spec.options["jitter"])

    @local_params
    def load_guide(self, model, guide_state=None):
        if guide_state is not None and "scale_tril" in guide_state:
            device = model.prior_loc.device
            self.model = model
            self.guide = laplace_guide(model, guide_state["loc"].to(device),
                                       (guide_state["scale"][:, None] * guide_state["scale_tril"]).to(device))
            return self.guide
        return super().load_guide(model, guide_state)

    def predictive_mean(self, theta, x):
        return linearized_mean(self.model, self.mean().detach())(theta, x)

    # Before finish(), the MAP phase: a point estimate (e.g. a checkpoint or a diverged fit).
    def sample(self, num_samples, generator=None):
        return MAP.sample(self, num_samples) if self.at_map else super().sample(num_samples, generator)

    def mean(self):
        return self.guide.theta if self.at_map else super().mean()

    def regularizer(self, theta):
        return MAP.regularizer(self, theta) if self.at_map else super().regularizer(theta)

    def affine_transform(self, a, c):
        return MAP.affine_transform(self, a, c) if self.at_map else super().affine_transform(a, c)

    def info_gain_view(self):
        if self.at_map:
            raise ValueError("this Laplace posterior is still at its MAP estimate (no curvature yet)")
        return super().info_gain_view()

    @property
    def theta(self):
        return self.guide.theta

    def num_params(self):
        return MAP.num_params(self) if self.at_map else super().num_params()

    def log_q(self, theta):
        return MAP.log_q(self, theta) if self.at_map else super().log_q(theta)
