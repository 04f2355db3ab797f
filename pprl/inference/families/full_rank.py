"""``full_rank``: q(θ) = N(μ, LLᵀ) with a dense Cholesky factor (Pyro's
``AutoMultivariateNormal``, stored as L = diag(s) U with U unit lower-triangular). O(D²)
parameters: exact for linear-Gaussian dynamics, costly for BNNs on a CPU."""
from __future__ import annotations

from typing import ClassVar

import torch
from pyro.infer.autoguide import AutoMultivariateNormal

from .base import assign, register_family
from .gaussian import INIT, GaussianFamily


@register_family
class FullRank(GaussianFamily):
    name = "full_rank"
    structure_params: ClassVar[tuple[str, ...]] = ("scale_tril",)
    roles: ClassVar[dict[str, str]] = {"loc": "loc", "scale": "scale", "unit_tril": "scale_tril"}

    def _build_guide(self, model):
        return AutoMultivariateNormal(model, init_loc_fn=INIT, init_scale=self.spec.init_scale)

    def num_params(self):
        D = self.model.param_dim
        return D + D * (D + 1) // 2  # μ and the Cholesky factor's lower triangle

    @staticmethod
    def moments_of(p):
        """diag Σ = s² Σ_j U_ij²; log det Σ = 2Σ log s (U has a unit diagonal)."""
        s, U = p["scale"], p["unit_tril"]
        return p["loc"], s.square() * U.square().sum(-1), 2 * s.log().sum(-1)

    def scale_tril(self) -> torch.Tensor:
        """The Cholesky factor L = diag(s) U of Σ."""
        return self.guide.scale[:, None] * self.guide.scale_tril

    @staticmethod
    def sample_of(p, num_samples, randn):
        """θ = μ + s ⊙ (U ε), ε ~ N(0, I_D)."""
        loc, s, U = p["loc"], p["scale"], p["unit_tril"]
        eps = randn((num_samples, loc.shape[-1]))
        return loc.unsqueeze(-2) + s.unsqueeze(-2) * (eps @ U.transpose(-1, -2))

    def affine_transform(self, a, c):
        """U acts before the diagonal scale, so only μ and s change."""
        with torch.no_grad():
            assign(self.guide, "loc", a * self.guide.loc + c)
            assign(self.guide, "scale", a * self.guide.scale)

    def info_gain_view(self):
        return FullRankView(self.guide.loc.detach(), self.scale_tril().detach())


class FullRankView:
    """q = N(μ, LLᵀ). Updates are parametrised relative to q, q' = N(μ', L M Mᵀ Lᵀ) with
    M = tril(A, −1) + diag(exp a), so KL[q' ‖ q] = ½(‖M‖²_F − D + ‖L⁻¹(μ' − μ)‖²) − Σ a and
    its Hessian at q' = q is Σ⁻¹ for μ', 1 for A, 2 for a."""

    def __init__(self, loc: torch.Tensor, L: torch.Tensor):
        self.L = L
        D = L.shape[0]
        self.params = {"loc": loc, "strict_lower": L.new_zeros(D, D), "log_diag": L.new_zeros(D)}
        self.noise_dim = D

    def precondition(self, name, g):
        if name == "loc":
            return self.cov_times(g.T).T
        return g.tril(-1) if name == "strict_lower" else 0.5 * g

    def _M(self, p):
        return p["strict_lower"].tril(-1) + torch.diag_embed(p["log_diag"].exp())

    def sample(self, p, eps):
        return p["loc"][:, None] + torch.einsum("ij,njk,sk->nsi", self.L, self._M(p), eps)

    def kl(self, p, eps=None):
        delta = (p["loc"] - self.params["loc"]).T  # [D, n]
        white = torch.linalg.solve_triangular(self.L, delta, upper=False)
        M = self._M(p)
        return 0.5 * (M.square().sum((-1, -2)) - M.shape[-1] + white.square().sum(0)) - p["log_diag"].sum(-1)

    def cov_times(self, v):
        return self.L @ (self.L.T @ v)
