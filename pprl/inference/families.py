"""Variational families over a dynamics model's flat weights θ ∈ R^D, picked by name.

| name        | q(θ)                                                   | built on                      |
|-------------|--------------------------------------------------------|-------------------------------|
| mean_field  | N(μ, diag σ²)                                          | pyro AutoNormal               |
| low_rank    | N(μ, WWᵀ + diag σ²), W ∈ R^{D×r}                        | pyro AutoLowRankMultivariateNormal |
| full_rank   | N(μ, LLᵀ)                                              | pyro AutoMultivariateNormal   |
| flow        | θ = μ + σ ⊙ g(z), z ~ N(0, I), g = affine couplings    | pyro AutoNormalizingFlow      |
| map         | δ(θ − θ̂)                                              | pyro AutoDelta                |
| laplace     | N(θ̂, (J ᵀΣ⁻¹J + diag σ_p⁻²)⁻¹) at the MAP θ̂ (GGN)     | AutoDelta → AutoMultivariateNormal |

The flow uses affine-coupling layers (RealNVP, Dinh et al. 2017) rather than IAF because an
autoregressive network needs hidden width ≥ D, which is too large at BNN sizes (D ≈ 5·10³);
a coupling layer's network maps D/2 → hidden → D, so its size is linear in D.
"""
from __future__ import annotations

import torch
from pyro.distributions.transforms import ComposeTransformModule, Permute, affine_coupling
from pyro.distributions.torch_transform import TransformModule
from pyro.infer.autoguide import (AutoDelta, AutoLowRankMultivariateNormal, AutoMultivariateNormal,
                                  AutoNormal, AutoNormalizingFlow)
from pyro.infer.autoguide.initialization import init_to_sample
from torch.distributions import constraints

from ..models.dynamics import DynamicsModel
from ..pyro_settings import local_params
from ..spec import InferenceSpec


class ElementwiseAffine(TransformModule):
    """y = μ + σ ⊙ x with learnable μ and σ = softplus(ρ); the last layer of the flow guide,
    so that at initialisation q(θ) ≈ N(μ₀, σ₀²) like the Gaussian families."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, loc: torch.Tensor, scale: float):
        super().__init__(cache_size=1)
        self.loc = torch.nn.Parameter(loc.clone())
        self.raw_scale = torch.nn.Parameter(torch.full_like(loc, float(torch.log(torch.expm1(torch.tensor(scale))))))

    @property
    def scale(self):
        return torch.nn.functional.softplus(self.raw_scale)

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        return self.scale.log().expand(x.shape).sum(-1)


def _flow_transform(model: DynamicsModel, spec: InferenceSpec):
    """Couplings with fixed permutations (seeded by layer index so a saved guide rebuilds
    identically), then the elementwise affine into θ-space."""

    def init_transform_fn(dim: int):
        parts = []
        for k in range(spec.options["num_flows"]):
            coupling = affine_coupling(dim, hidden_dims=[spec.options["hidden_dim"]])
            last = coupling.nn.layers[-1]  # start at the identity: shift 0, log-scale 0
            torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
            parts.append(coupling)
            perm = torch.randperm(dim, generator=torch.Generator().manual_seed(k))
            parts.append(Permute(perm.to(model.prior_loc.device)))
        loc = model.prior_loc + model.prior_scale * torch.randn_like(model.prior_scale)
        parts.append(ElementwiseAffine(loc, spec.init_scale))
        return ComposeTransformModule(parts).to(device=model.prior_loc.device, dtype=model.prior_loc.dtype)

    return init_transform_fn


@local_params
def make_guide(model: DynamicsModel, spec: InferenceSpec):
    """The autoguide for ``spec.family`` (``laplace`` starts as its MAP guide; see
    :func:`pprl.inference.laplace.laplace_guide`). Guides are set up lazily on the first call."""
    family, init = spec.family, init_to_sample
    if family == "mean_field":
        return AutoNormal(model, init_loc_fn=init, init_scale=spec.init_scale)
    if family == "low_rank":
        rank = min(spec.options["rank"], model.param_dim)
        return AutoLowRankMultivariateNormal(model, init_loc_fn=init, init_scale=spec.init_scale, rank=rank)
    if family == "full_rank":
        return AutoMultivariateNormal(model, init_loc_fn=init, init_scale=spec.init_scale)
    if family == "flow":
        return AutoNormalizingFlow(model, _flow_transform(model, spec))
    if family in ("map", "laplace"):
        return AutoDelta(model, init_loc_fn=init)
    raise ValueError(f"unknown family {family!r}")


def guide_sample(guide, num_samples: int) -> torch.Tensor:
    """``num_samples`` draws of θ from any fitted guide → ``[num_samples, D]`` (reparameterised)."""
    if isinstance(guide, AutoNormal):
        loc, scale = guide.locs.theta, guide.scales.theta
        return loc + scale * torch.randn(num_samples, loc.shape[-1], device=loc.device, dtype=loc.dtype)
    if isinstance(guide, AutoDelta):
        return guide.theta.expand(num_samples, -1)
    return guide.get_posterior().rsample((num_samples,))


def guide_mean(guide) -> torch.Tensor:
    """The posterior mean of θ where it is closed-form, else a Monte-Carlo estimate."""
    if isinstance(guide, AutoNormal):
        return guide.locs.theta
    if isinstance(guide, AutoDelta):
        return guide.theta
    if isinstance(guide, (AutoMultivariateNormal, AutoLowRankMultivariateNormal)):
        return guide.loc
    return guide_sample(guide, 1000).mean(0)


@torch.no_grad()
def affine_transform_guide(guide, a: torch.Tensor, c: torch.Tensor) -> None:
    """Push q(θ) through θ' = a ⊙ θ + c (a > 0) in place: the guide then describes the same
    distribution in the new coordinates. Every family here is closed under a diagonal affine map:
    the location becomes a ⊙ loc + c and the per-coordinate scale a ⊙ scale (low_rank's factor and
    full_rank's unit triangle act after the diagonal scale and stay as they are; the flow's
    couplings act before its final elementwise affine)."""
    if isinstance(guide, AutoNormal):
        _assign(guide.locs, "theta", a * guide.locs.theta + c)
        _assign(guide.scales, "theta", a * guide.scales.theta)
    elif isinstance(guide, (AutoMultivariateNormal, AutoLowRankMultivariateNormal)):
        _assign(guide, "loc", a * guide.loc + c)  # Σ = diag(s) U Uᵀ diag(s) or diag(s)(FFᵀ + I)diag(s)
        _assign(guide, "scale", a * guide.scale)
    elif isinstance(guide, AutoDelta):
        _assign(guide, "theta", a * guide.theta + c)
    elif isinstance(guide, AutoNormalizingFlow):
        affine = guide.transform.parts[-1]
        if not isinstance(affine, ElementwiseAffine):
            raise TypeError("the flow guide must end in an ElementwiseAffine to be re-expressed")
        affine.loc.copy_(a * affine.loc + c)
        scale = a * affine.scale
        affine.raw_scale.copy_(scale + torch.log(-torch.expm1(-scale)))  # softplus⁻¹, stable for large scale
        affine._cached_x_y = None, None  # the transform caches its last call
    else:
        raise TypeError(f"cannot re-express a {type(guide).__name__} guide under an affine map")


def _assign(module, name: str, value: torch.Tensor) -> None:
    """Set a guide's parameter, constrained PyroParam or buffer to ``value`` (in place for a
    plain ``nn.Parameter``, so optimisers and references keep pointing at it)."""
    if name in module._parameters:
        module._parameters[name].copy_(value)
    else:
        setattr(module, name, value.detach())
