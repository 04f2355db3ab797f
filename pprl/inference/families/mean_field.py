"""``mean_field``: q(θ) = N(μ, diag σ²) (Pyro's ``AutoNormal``), the family of VIME and of
Blundell et al. 2015. Fitted with the local reparameterisation trick by default (Kingma et al.
2015): the likelihood term samples each layer's pre-activations instead of its weights."""
from __future__ import annotations

from typing import ClassVar

import torch
from pyro.infer.autoguide import AutoNormal

from .base import Option, assign, register_family
from .gaussian import INIT, GaussianFamily


@register_family
class MeanField(GaussianFamily):
    name = "mean_field"
    options: ClassVar[dict[str, Option]] = {
        "local_reparam": Option(bool, lambda elbo: elbo == "analytic_kl", needs_elbo="analytic_kl")}
    info_gain: ClassVar[dict[str, tuple[str, ...]]] = {"update": ("gradient", "linearized"), "second_order": ()}
    local_latents: ClassVar[bool] = True
    diagonal_gaussian: ClassVar[bool] = True
    roles: ClassVar[dict[str, str]] = {"loc": "locs.theta", "scale": "scales.theta"}

    def _build_guide(self, model):
        return AutoNormal(model, init_loc_fn=INIT, init_scale=self.spec.init_scale)

    @property
    def loc(self) -> torch.Tensor:
        return self.guide.locs.theta

    @property
    def scale(self) -> torch.Tensor:
        return self.guide.scales.theta

    def num_params(self):
        return 2 * self.model.param_dim  # μ, σ

    @staticmethod
    def moments_of(p):
        s = p["scale"]
        return p["loc"], s.square(), 2 * s.log().sum(-1)

    @staticmethod
    def sample_of(p, num_samples, randn):
        """θ = μ + σ ⊙ ε, ε ~ N(0, I_D)."""
        loc = p["loc"]
        eps = randn((num_samples, loc.shape[-1]))
        return loc.unsqueeze(-2) + p["scale"].unsqueeze(-2) * eps

    def log_q(self, theta):
        return torch.distributions.Normal(self.loc, self.scale).log_prob(theta).sum(-1)

    def affine_transform(self, a, c):
        with torch.no_grad():
            assign(self.guide.locs, "theta", a * self.loc + c)
            assign(self.guide.scales, "theta", a * self.scale)

    def set_diagonal_gaussian(self, loc, scale):
        with torch.no_grad():
            assign(self.guide.locs, "theta", loc.detach().clone())
            assign(self.guide.scales, "theta", scale.detach().clone())

    def info_gain_view(self):
        return MeanFieldView(self.loc, self.scale)


class MeanFieldView:
    """q = N(μ, diag σ²) as per-transition tensors, parameters (loc, log_scale)."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        self.params = {"loc": loc.detach(), "log_scale": scale.detach().log()}
        self.var = self.params["log_scale"].mul(2).exp()
        self.noise_dim = self.var.shape[0]

    def precondition(self, name, g):
        """H⁻¹ g with H the Hessian of KL[q_ψ ‖ q_φ] at ψ = φ: ∂²/∂μ² = 1/σ², ∂²/∂(log σ)² = 2."""
        return self.var * g if name == "loc" else 0.5 * g

    def log_scale_var(self):
        """E[(∂θ_d/∂ log-scale_d)²] = σ_d²: how far θ_d moves per unit of its log-scale."""
        return self.var

    def sample(self, p, eps):  # p: [n, D] each; eps: [S, D] → θ [n, S, D]
        return p["loc"][:, None] + p["log_scale"].exp()[:, None] * eps

    def kl(self, p, eps=None):  # KL[q_p ‖ q_φ] → [n], closed form (eps unused)
        q = self.params
        var_new = p["log_scale"].mul(2).exp()
        return 0.5 * ((var_new + (p["loc"] - q["loc"]).square()) / self.var - 1).sum(-1) \
            + (q["log_scale"] - p["log_scale"]).sum(-1)

    def cov_times(self, v):  # Σ v for v [D, m]
        return self.var[:, None] * v
