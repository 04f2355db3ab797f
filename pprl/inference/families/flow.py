"""``flow``: θ = μ + σ ⊙ g(z), z ~ N(0, I), g a stack of affine couplings (RealNVP, Dinh et al.
2017; Pyro's ``AutoNormalizingFlow``). Couplings rather than IAF because an autoregressive
network needs hidden width ≥ D, too large at BNN sizes (D ≈ 5·10³); a coupling layer's network
maps D/2 → hidden → D, so its size is linear in D. KL(q ‖ p) is a Monte-Carlo estimate."""
from __future__ import annotations

from typing import ClassVar

import pyro
import torch
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import ComposeTransformModule, Permute, affine_coupling
from pyro.infer.autoguide import AutoNormalizingFlow
from torch.distributions import constraints

from .base import Option, register_family, Family


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


@register_family
class Flow(Family):
    name = "flow"
    options: ClassVar[dict[str, Option]] = {"num_flows": Option(int, 4), "hidden_dim": Option(int, 64)}
    info_gain: ClassVar[dict[str, tuple[str, ...]]] = {"update": ("gradient",)}
    structure_params: ClassVar[tuple[str, ...]] = (".nn.",)
    local_latents: ClassVar[bool] = True

    @classmethod
    def local_guide_options(cls, spec) -> dict:
        """Latent models: the Gaussian of each step through ``num_flows`` amortised planar maps
        whose networks have ``hidden_dim`` units (:mod:`pprl.inference.amortised`)."""
        return {"num_flows": spec.options["num_flows"], "flow_hidden": spec.options["hidden_dim"]}

    def _build_guide(self, model):
        spec = self.spec

        def init_transform_fn(dim: int):
            """Couplings with fixed permutations (seeded by layer index so a saved guide rebuilds
            identically), then the elementwise affine into θ-space."""
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

        return AutoNormalizingFlow(model, init_transform_fn)

    @property
    def affine(self) -> ElementwiseAffine:
        return self.guide.transform.parts[-1]

    def sample(self, num_samples, generator=None):
        """z ~ N(0, I), then the couplings and the affine (Pyro's ``get_posterior().rsample``)."""
        if generator is None:
            return self.guide.get_posterior().rsample((num_samples,))
        loc = self.affine.loc
        z = torch.randn(num_samples, loc.shape[-1], device=loc.device, dtype=loc.dtype, generator=generator)
        return self.guide.transform(z)

    @torch.no_grad()
    def affine_transform(self, a, c):
        """The couplings act before the final elementwise affine, so only the affine changes."""
        affine = self.affine
        affine.loc.copy_(a * affine.loc + c)
        scale = a * affine.scale
        affine.raw_scale.copy_(scale + torch.log(-torch.expm1(-scale)))  # softplus⁻¹, stable for large scale
        affine._cached_x_y = None, None  # the transform caches its last call

    def info_gain_view(self):
        *couplings, affine = self.guide.transform.parts
        return FlowAffineView(torch.distributions.ComposeTransform(couplings), affine,
                              self.guide.get_posterior().log_prob)


class FlowAffineView:
    """q = (A ∘ g)#N(0, I): coupling layers g, then the elementwise affine A(u) = μ + σ ⊙ u.

    A per-transition update moves only A (2D numbers; the couplings, 10⁵–10⁶ weights, are
    shared): q'_n = (A'_n ∘ g)#N(0, I). Both push the same u_s = g(ε_s) forward, θ_s = A(u_s)
    ~ q and θ'_ns = A'_n(u_s) ~ q'_n, so log q'(θ'_ns) = log q(θ_s) − Σ_d log(1 + b_d) with
    b = σ'/σ − 1, and KL[q'‖q] = E[log q(θ_s) − log q(θ'_ns)] − Σ log(1 + b). The first-order
    part of the integrand, −∇log q(θ_s)·(θ'_ns − θ_s), has the known mean Σ b (Stein's
    identity E[u ∂_u log p(u)] = −1), so it is used as a control variate:

        KL ≈ (1/S) Σ_s [log q(θ_s) − log q(θ'_ns) + ∇log q(θ_s)·(θ'_ns − θ_s)] + Σ_d (b_d − log(1 + b_d)).

    The Monte-Carlo error is then second order in the update (an optimiser cannot push a
    plain estimate below zero by exploiting the noise of the fixed ε), it is 0 at q' = q, and
    exact for Gaussian q with whitened ε. log q(θ') inverts the couplings: N·S inverse flow
    passes per evaluation, far slower than the Gaussian families' closed forms.

    Preconditioner (the KL Hessian at q' = q is not closed form): the mean by the inverse
    diagonal Fisher information F_d = E[(∂_d log q)²] (σ_d² for a mean-field Gaussian; the
    marginal variance would overshoot along correlated directions), the log-scales by
    1/(2 V_d F_d) with V the marginal variance of θ — the Gaussian value, ½ for a mean field
    and smaller where the flow stretches the affine's input. The line search does the rest."""

    def __init__(self, couplings, affine: ElementwiseAffine, log_q):
        self.couplings, self.log_q = couplings, log_q
        self.params = {"loc": affine.loc.detach(), "log_scale": affine.scale.detach().log()}
        self.noise_dim = self.params["loc"].shape[0]
        self._eps = None

    def _base(self, eps):
        """u_s = g(ε_s), θ_s, log q(θ_s) and ∇log q(θ_s), cached for the call's common noise."""
        if self._eps is not eps:
            with torch.no_grad():
                self._u = self.couplings(eps)
            with torch.enable_grad():
                theta = (self.params["loc"] + self.params["log_scale"].exp() * self._u).requires_grad_()
                log_q = self.log_q(theta)
                score, = torch.autograd.grad(log_q.sum(), theta)
            self._theta, self._log_q_old, self._score = theta.detach(), log_q.detach(), score
            fisher = score.square().mean(0)
            self._inv_fisher = fisher.reciprocal()
            self._log_scale_gain = 0.5 / (theta.detach().var(0, unbiased=False) * fisher)
            self._eps = eps
        return self._u

    def precondition(self, name, g):
        return self._inv_fisher * g if name == "loc" else self._log_scale_gain * g

    def log_scale_var(self):
        return (self._theta - self.params["loc"]).square().mean(0)  # E[(σ u)²], u = g(ε)

    def sample(self, p, eps):
        return p["loc"][:, None] + p["log_scale"].exp()[:, None] * self._base(eps)

    def kl(self, p, eps):
        theta = self.sample(p, eps)  # [n, S, D]
        with pyro.validation_enabled(False):  # a rejected line-search trial may be non-finite
            log_q_new = self.log_q(theta.reshape(-1, theta.shape[-1])).reshape(theta.shape[:2])
        linear = (self._score * (theta - self._theta)).sum(-1)
        log_ratio = p["log_scale"] - self.params["log_scale"]  # log(1 + b)
        return (self._log_q_old - log_q_new + linear).mean(1) + (log_ratio.exp() - 1 - log_ratio).sum(-1)
