"""``nuts``: the reference posterior — draws of θ from NUTS (NumPyro) on the same declared model.

q is the empirical distribution of the chains' draws, (1/CS) Σ_{c,s} δ(θ − θ_cs). It is not fitted
by SVI: :func:`pprl.nuts` (or ``pprl.fit(model, "nuts", data)``) runs the sampler
(:mod:`pprl.inference.mcmc`), and the draws and the sampler's statistics (divergences, leapfrog
steps, energy) are stored as buffers, so the posterior predicts, scores, saves and loads like any
other. The spec's options are the sampler's settings.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from .base import Family, Option, register_family


class Draws(torch.nn.Module):
    """MCMC draws ``theta [chains, draws, D]`` and per-draw sampler statistics ``[chains, draws]``."""

    def __init__(self, theta: torch.Tensor, stats: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.register_buffer("theta", theta)
        self.stat_names = sorted(stats or {})
        for name in self.stat_names:
            self.register_buffer(f"stat_{name}", stats[name])

    def stats(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"stat_{name}") for name in self.stat_names}


@register_family
class NUTS(Family):
    name = "nuts"
    elbos = ("plain",)  # not fitted by SVI; kept so that the spec validates like every family's
    fitted_by_svi: ClassVar[bool] = False
    has_density: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {
        "num_samples": Option(int, 1000), "num_warmup": Option(int, 1000), "num_chains": Option(int, 4),
        "max_tree_depth": Option(int, 10), "target_accept": Option(float, 0.8)}

    @classmethod
    def fit_directly(cls, model, spec, data, *, seed: int, progress: bool, device):
        """Run NUTS (what ``pprl.fit`` calls for this family)."""
        from ..mcmc.nuts import run_nuts

        return run_nuts(model, spec, data, seed=seed, progress=progress, device=device)

    def _build_guide(self, model):
        raise ValueError("the 'nuts' family holds MCMC draws; run pprl.nuts(model, data) to make them")

    def load_guide(self, model, guide_state=None):
        if guide_state is None:
            raise ValueError("a 'nuts' posterior needs its draws (a saved state)")
        device = model.prior_loc.device
        stats = {k[len("stat_"):]: v.to(device) for k, v in guide_state.items() if k.startswith("stat_")}
        self.model, self.guide = model, Draws(guide_state["theta"].to(device), stats)
        return self.guide

    @property
    def draws(self) -> torch.Tensor:
        """All draws, chains concatenated → ``[chains·draws, D]``."""
        return self.guide.theta.reshape(-1, self.guide.theta.shape[-1])

    def sample(self, num_samples, generator=None):
        """Draws picked uniformly with replacement (the empirical distribution)."""
        draws = self.draws
        idx = torch.randint(draws.shape[0], (num_samples,), generator=generator, device=draws.device)
        return draws[idx]

    def chains(self, num_samples=None, generator=None):
        """The sampler's own chains ``[chain, draw, D]`` (``num_samples`` is ignored)."""
        return self.guide.theta

    def sampler_stats(self):
        return self.guide.stats()

    def mean(self):
        return self.draws.mean(0)

    def log_q(self, theta):
        raise ValueError("log q(θ) is undefined for the 'nuts' family: an empirical distribution has no density")

    def regularizer(self, theta):
        raise ValueError("the 'nuts' family has no ELBO (no density); compare it by its predictive")

    def num_params(self):
        return 0  # nothing is fitted: the draws are samples, not parameters

    @torch.no_grad()
    def affine_transform(self, a, c):
        self.guide.theta = a * self.guide.theta + c
