"""``low_rank``: q(θ) = N(μ, Σ), Σ = diag(s)(FFᵀ + I)diag(s) with F ∈ R^{D×r} (Pyro's
``AutoLowRankMultivariateNormal``): a mean field plus r shared directions of correlation, at
O(D·r) cost per step."""
from __future__ import annotations

from typing import ClassVar

import torch
from pyro.infer.autoguide import AutoLowRankMultivariateNormal

from .base import Option, assign, register_family
from .gaussian import INIT, GaussianFamily


@register_family
class LowRank(GaussianFamily):
    name = "low_rank"
    options: ClassVar[dict[str, Option]] = {"rank": Option(int, 10)}
    structure_params: ClassVar[tuple[str, ...]] = ("cov_factor",)
    roles: ClassVar[dict[str, str]] = {"loc": "loc", "scale": "scale", "factor": "cov_factor"}

    def _build_guide(self, model):
        rank = min(self.spec.options["rank"], model.param_dim)
        return AutoLowRankMultivariateNormal(model, init_loc_fn=INIT, init_scale=self.spec.init_scale, rank=rank)

    def num_params(self):
        return self.model.param_dim * (self.guide.cov_factor.shape[-1] + 2)  # μ, s, F

    @staticmethod
    def moments_of(p):
        """diag Σ = s²(Σ_j F_ij² + 1); log det Σ = 2Σ log s + log det(I_r + FᵀF)."""
        s, F = p["scale"], p["factor"]
        var = s.square() * (F.square().sum(-1) + 1)
        eye = torch.eye(F.shape[-1], device=F.device, dtype=F.dtype)
        return p["loc"], var, 2 * s.log().sum(-1) + torch.logdet(eye + F.transpose(-1, -2) @ F)

    @staticmethod
    def sample_of(p, num_samples, randn):
        """θ = μ + s ⊙ (F ε_r + ε), ε_r ~ N(0, I_r), ε ~ N(0, I_D)."""
        loc, s, F = p["loc"], p["scale"], p["factor"]
        eps_r = randn((num_samples, F.shape[-1]))
        noise = eps_r @ F.transpose(-1, -2) + randn((num_samples, loc.shape[-1]))
        return loc.unsqueeze(-2) + s.unsqueeze(-2) * noise

    def affine_transform(self, a, c):
        """The factor acts before the diagonal scale, so only μ and s change."""
        with torch.no_grad():
            assign(self.guide, "loc", a * self.guide.loc + c)
            assign(self.guide, "scale", a * self.guide.scale)

    def info_gain_view(self):
        scale = self.guide.scale.detach()
        return LowRankView(self.guide.loc.detach(), self.guide.cov_factor.detach() * scale[:, None], scale)


class LowRankView:
    """q = N(μ, WWᵀ + diag d), parameters (loc, factor W, log_sd = ½ log d)."""

    def __init__(self, loc: torch.Tensor, factor: torch.Tensor, sd: torch.Tensor):
        self.params = {"loc": loc, "factor": factor, "log_sd": sd.log()}
        self.rank = factor.shape[1]
        self.noise_dim = self.rank + sd.shape[0]
        W, d = factor.double(), sd.double().square()
        self.d_inv_W = W / d[:, None]  # D⁻¹W, [D, r] (float64, see kl)
        C = torch.eye(self.rank, dtype=W.dtype, device=W.device) + W.T @ self.d_inv_W  # capacitance
        self.C_tril = torch.linalg.cholesky(C)
        self.logdet = d.log().sum() + 2 * self.C_tril.diagonal().log().sum()
        white = torch.linalg.solve_triangular(self.C_tril, self.d_inv_W.T, upper=False)  # L_C⁻¹ WᵀD⁻¹
        self.prec_diag = 1 / d - white.square().sum(0)  # diag Σ⁻¹

    def _prec_quad(self, v):
        """vᵀΣ⁻¹v per column for ``v [n, D, m]`` → ``[n, m]`` (Woodbury through the capacitance)."""
        d_inv = self.params["log_sd"].double().mul(-2).exp()
        u = torch.linalg.solve_triangular(self.C_tril, self.d_inv_W.T @ v, upper=False)  # [n, r, m]
        return (v.square() * d_inv[:, None]).sum(1) - u.square().sum(1)

    def precondition(self, name, g):
        """Natural gradient Σ g for the mean, ½Σ g per column of the factor (the KL's curvature in W
        is ≈ 2Σ⁻¹ ⊗ I at W' = W), a fixed ½ (the log-scale curvature) for log_sd."""
        if name == "loc":
            return self.cov_times(g.T).T
        if name == "factor":  # g [n, D, r]
            n, D, r = g.shape
            return 0.5 * self.cov_times(g.transpose(0, 1).reshape(D, n * r)).reshape(D, n, r).transpose(0, 1)
        return 0.5 * g

    def log_scale_var(self):
        return self.params["log_sd"].mul(2).exp()

    def sample(self, p, eps):
        z, e = eps[:, :self.rank], eps[:, self.rank:]
        return p["loc"][:, None] + torch.einsum("ndr,sr->nsd", p["factor"], z) + p["log_sd"].exp()[:, None] * e

    def kl(self, p, eps=None):
        """½[tr Σ⁻¹Σ' + δᵀΣ⁻¹δ − D + log det Σ − log det Σ'], Σ' = W'W'ᵀ + D'; +inf where Σ' is not
        numerically positive definite (a rejected line-search trial, never an exception)."""
        W, d = p["factor"].double(), p["log_sd"].double().mul(2).exp()  # [n, D, r], [n, D]; float64: the
        eye = torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)  # terms of size D cancel to ~0
        L, info = torch.linalg.cholesky_ex(eye + W.transpose(1, 2) @ (W / d[..., None]))
        logdet_new = d.log().sum(-1) + 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        delta = (p["loc"] - self.params["loc"]).double().unsqueeze(-1)
        trace = (self.prec_diag * d).sum(-1) + self._prec_quad(W).sum(-1)
        kl = 0.5 * (trace + self._prec_quad(delta)[:, 0] - d.shape[-1] + self.logdet - logdet_new)
        kl = torch.where(info == 0, kl, torch.full_like(kl, float("inf")))
        return kl.to(p["loc"].dtype)

    def cov_times(self, v):
        W = self.params["factor"]
        return W @ (W.T @ v) + self.params["log_sd"].mul(2).exp()[:, None] * v
