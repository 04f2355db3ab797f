"""Laplace approximation with the generalised Gauss–Newton (GGN) curvature.

At the MAP θ̂ the posterior is approximated by N(θ̂, H⁻¹) with

    H = Σ_n J_nᵀ diag(σ⁻²) J_n + diag(σ_p⁻²),     J_n = ∂f(x_n; θ)/∂θ |_θ̂,

the GGN of the Gaussian negative log joint (MacKay 1992; Immer et al. 2021); for a Student-t
likelihood σ⁻² is its Fisher information (ν + 1)/((ν + 3)σ²) (:meth:`DynamicsModel.fisher_precision`). Unlike the exact
Hessian it is positive definite for any network, and for a linear model it *is* the Hessian,
so the Laplace posterior of :class:`~pprl.models.dynamics.LinearGaussianDynamics` is exact.
"""
from __future__ import annotations

import torch
from pyro.infer.autoguide import AutoMultivariateNormal
from torch.func import jacrev

from ..models.dynamics import DynamicsModel
from ..pyro_settings import local_params


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
