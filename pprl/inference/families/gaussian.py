"""What the three Gaussian families share: the closed-form KL to the model's diagonal prior.

For q = N(μ, Σ) and p = N(μ_p, diag σ_p²),

    KL(q ‖ p) = ½[Σ_i Σ_ii/σ_p,i² + Σ_i (μ_i − μ_p,i)²/σ_p,i² − D + Σ_i log σ_p,i² − log det Σ],

so a Gaussian family supplies μ, diag Σ and log det Σ (:meth:`GaussianFamily.moments`).

Each family also states its math as functions of its parameter values (:meth:`moments_of`,
:meth:`sample_of`, over a dict of the guide's constrained values named by ``roles``), so the
same formulas serve one q and R stacked ones (:func:`pprl.inference.fit_many.fit_many`): every
value may carry leading run dimensions.
"""
from __future__ import annotations

from operator import attrgetter
from typing import Callable, ClassVar

import torch
from pyro.infer.autoguide.initialization import init_to_sample

from .base import Family

INIT = init_to_sample  # every family starts its location at a prior draw


class GaussianFamily(Family):
    """A Gaussian q(θ): closed-form mean and KL; fitted by the analytic-KL ELBO by default."""

    elbos: ClassVar[tuple[str, ...]] = ("analytic_kl", "plain", "renyi")
    closed_form_kl: ClassVar[bool] = True
    info_gain: ClassVar[dict[str, tuple[str, ...]]] = {"update": ("gradient", "linearized")}
    roles: ClassVar[dict[str, str]] = {}  # name in moments_of/sample_of → the guide's attribute

    def values(self) -> dict[str, torch.Tensor]:
        """The guide's constrained parameter values by role (differentiable)."""
        return {role: attrgetter(path)(self.guide) for role, path in self.roles.items()}

    @staticmethod
    def moments_of(p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(μ ``[..., D]``, diag Σ ``[..., D]``, log det Σ ``[...]``) of the q with values ``p``."""
        raise NotImplementedError

    @staticmethod
    def sample_of(p: dict[str, torch.Tensor], num_samples: int,
                  randn: Callable[[tuple[int, ...]], torch.Tensor]) -> torch.Tensor:
        """Reparameterised draws ``[..., num_samples, D]`` of the q with values ``p``; ``randn(shape)``
        gives standard normal noise ``[..., *shape]`` (per run, from its own generator)."""
        raise NotImplementedError

    def moments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(μ ``[D]``, diag Σ ``[D]``, log det Σ) — differentiable in the guide's parameters."""
        return self.moments_of(self.values())

    def sample(self, num_samples, generator=None):
        p = self.values()
        like = p["loc"]
        return self.sample_of(p, num_samples, lambda shape: torch.randn(
            shape, device=like.device, dtype=like.dtype, generator=generator))

    def kl_to_prior(self) -> torch.Tensor:
        return gaussian_kl_to_prior(*self.moments(), self.model.prior_loc, self.model.prior_scale)

    def mean(self) -> torch.Tensor:
        return self.moments()[0]


def gaussian_kl_to_prior(loc: torch.Tensor, var: torch.Tensor, logdet: torch.Tensor, prior_loc: torch.Tensor,
                         prior_scale: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, Σ) ‖ N(μ_p, diag σ_p²)) from (μ, diag Σ, log det Σ) → ``[...]`` (leading dims kept)."""
    p_var = prior_scale.square()
    return 0.5 * ((var + (loc - prior_loc).square()) / p_var + p_var.log() - 1).sum(-1) - 0.5 * logdet
