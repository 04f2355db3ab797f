"""What the three Gaussian families share: the closed-form KL to the model's diagonal prior.

For q = N(μ, Σ) and p = N(μ_p, diag σ_p²),

    KL(q ‖ p) = ½[Σ_i Σ_ii/σ_p,i² + Σ_i (μ_i − μ_p,i)²/σ_p,i² − D + Σ_i log σ_p,i² − log det Σ],

so a Gaussian family supplies μ, diag Σ and log det Σ (:meth:`GaussianFamily.moments`).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from pyro.infer.autoguide.initialization import init_to_sample

from .base import Family

INIT = init_to_sample  # every family starts its location at a prior draw


class GaussianFamily(Family):
    """A Gaussian q(θ): closed-form mean and KL; fitted by the analytic-KL ELBO by default."""

    elbos: ClassVar[tuple[str, ...]] = ("analytic_kl", "plain", "renyi")
    closed_form_kl: ClassVar[bool] = True
    info_gain: ClassVar[dict[str, tuple[str, ...]]] = {"update": ("gradient", "linearized")}

    def moments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(μ ``[D]``, diag Σ ``[D]``, log det Σ) — differentiable in the guide's parameters."""
        raise NotImplementedError

    def kl_to_prior(self) -> torch.Tensor:
        loc, var, logdet = self.moments()
        p_var = self.model.prior_scale.square()
        return 0.5 * ((var + (loc - self.model.prior_loc).square()) / p_var + p_var.log() - 1).sum() - 0.5 * logdet

    def mean(self) -> torch.Tensor:
        return self.moments()[0]
