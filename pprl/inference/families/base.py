"""The :class:`Family` interface and the registry that maps family names to classes.

A family is q(θ) over a dynamics model's flat weights θ ∈ R^D. Each family owns everything that
depends on its form — the Pyro guide it builds, how it samples, its mean, log q(θ), KL(q ‖ p) where
that is closed form, the diagonal-affine re-expression used when the model's normalisation moves,
the view VIME's information gain updates per transition, and its spec options — so the rest of
pprl asks the family and never looks inside a guide. A new family is one module with one
``@register_family`` class; nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

from ...models.dynamics import DynamicsModel
from ...pyro_settings import local_params
from ...rng import seeded
from ...spec import InferenceSpec

FAMILIES: dict[str, type["Family"]] = {}


def register_family(cls: type["Family"]) -> type["Family"]:
    """Class decorator: make ``cls`` available as ``family: <cls.name>`` in inference specs."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    if cls.name in FAMILIES and FAMILIES[cls.name] is not cls:
        raise ValueError(f"a family named {cls.name!r} is already registered ({FAMILIES[cls.name].__name__})")
    FAMILIES[cls.name] = cls
    return cls


def unregister_family(name: str) -> None:
    """Remove a registered family (for tests and interactive sessions)."""
    FAMILIES.pop(name, None)


def family_class(name: str) -> type["Family"]:
    """The registered class for ``name``, or a ValueError listing the known names."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; registered: {', '.join(FAMILIES)}")
    return FAMILIES[name]


@dataclass(frozen=True)
class Option:
    """One entry of a family's ``options:`` block in its inference spec. ``default`` may be a
    function of the spec's ``elbo`` (an option that is on only where it applies)."""

    type: type
    default: Any | Callable[[str], Any]
    bound: str | None = "positive"  # numbers: "positive" (> 0), "nonnegative" (>= 0) or None
    needs_elbo: str | None = None   # the option, when true, works only with this objective


class Family:
    """q(θ) of one variational family, bound to a model and a guide by :meth:`make_guide`.

    Class attributes declare what a spec may ask of the family:
    ``elbos`` (objectives that fit it; the first is the default), ``options``
    (name → :class:`Option`), ``fitted_by_svi`` (False: the family makes its own posterior in
    :meth:`fit_directly`, e.g. MCMC draws), ``has_density`` (:meth:`log_q` exists), ``point_estimate`` (fitted by MAP: one particle, its "ELBO" is the
    log joint), ``closed_form_kl`` (:meth:`kl_to_prior` exists), ``info_gain`` (VIME info-gain
    methods → solvers its :meth:`info_gain_view` supports), ``structure_params`` (guide
    parameter names that couple many coordinates of θ; the optimiser scales their step by 1/√D)
    and ``local_latents`` (a latent model's amortised guide q(z_t | ·) can take the family's form:
    a diagonal Gaussian per step, or one through planar flows; see :mod:`pprl.inference.amortised`)
    and ``diagonal_gaussian`` (q(θ) is N(μ, diag σ²) and :meth:`set_diagonal_gaussian` sets it).
    """

    name: ClassVar[str] = ""
    elbos: ClassVar[tuple[str, ...]] = ("plain", "renyi")
    options: ClassVar[dict[str, Option]] = {}
    point_estimate: ClassVar[bool] = False
    has_density: ClassVar[bool] = True
    fitted_by_svi: ClassVar[bool] = True
    closed_form_kl: ClassVar[bool] = False
    info_gain: ClassVar[dict[str, tuple[str, ...]]] = {}
    structure_params: ClassVar[tuple[str, ...]] = ()
    local_latents: ClassVar[bool] = False
    diagonal_gaussian: ClassVar[bool] = False

    @classmethod
    def local_guide_options(cls, spec: InferenceSpec) -> dict:
        """Keyword arguments of :class:`~pprl.inference.amortised.AmortisedGuide` for a latent model
        fitted with this family (``local_latents``): none, the plain Gaussian per step."""
        return {}

    def __init__(self, spec: InferenceSpec, model: DynamicsModel | None = None, guide=None):
        self.spec, self.model, self.guide = spec, model, guide

    def __repr__(self):
        return f"{type(self).__name__}(spec={self.spec.name!r}, bound={self.guide is not None})"

    # ------------------------------------------------------------------ building
    def _build_guide(self, model: DynamicsModel):
        """The (not yet set up) Pyro guide of this family for ``model``."""
        raise NotImplementedError

    @local_params
    def make_guide(self, model: DynamicsModel):
        """Build this family's guide for ``model`` and bind both; returns the guide. Its parameters
        are created lazily, on the guide's first call (as Pyro's autoguides do)."""
        self.model, self.guide = model, self._build_guide(model)
        return self.guide

    def warm_start(self, init: "Family"):
        """Continue from a fitted ``init`` of the same family and model: by default its own guide."""
        if type(init) is not type(self):
            raise ValueError(f"cannot warm-start family {self.name!r} from a {init.name!r} posterior; "
                             f"fit(init=...) continues the same family")
        self.model, self.guide = init.model, init.guide
        return self.guide

    def finish(self, x: torch.Tensor) -> None:
        """Called once after the SVI loop with all training inputs ``x`` (Laplace: the GGN step)."""

    def set_diagonal_gaussian(self, loc: torch.Tensor, scale: torch.Tensor) -> None:
        """Set q(θ) to N(loc, diag scale²) (families with ``diagonal_gaussian``; the guide set up first)."""
        raise NotImplementedError(f"family {self.name!r} is not a diagonal Gaussian N(μ, diag σ²)")

    @local_params
    def load_guide(self, model: DynamicsModel, guide_state: dict | None = None):
        """Rebuild the guide for ``model`` with its parameters set up, optionally from a state dict.
        Setting up draws initial values; that runs seeded, so loading leaves the global RNG alone."""
        with seeded(0):
            guide = self.make_guide(model)
            guide(*model.dummy_batch())
        if guide_state is not None:
            guide.load_state_dict({k: v.to(model.prior_loc.device) for k, v in guide_state.items()})
        return guide

    def state_dict(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.guide.state_dict().items()}

    def parameters(self):
        return self.guide.parameters()

    def num_params(self) -> int:
        """The number of free parameters of q (by default, of the guide's trainable tensors)."""
        return sum(p.numel() for p in self.guide.parameters())

    # ------------------------------------------------------------------ the distribution
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``num_samples`` reparameterised draws θ ~ q → ``[num_samples, D]`` (from ``generator``,
        or torch's global generator when None)."""
        raise NotImplementedError

    def chains(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws as ``[chain, draw, D]`` for diagnostics: one chain of ``num_samples`` independent
        draws (an MCMC family returns its own chains)."""
        return self.sample(num_samples, generator).unsqueeze(0)

    def sampler_stats(self) -> dict[str, torch.Tensor]:
        """Per-draw statistics of the sampler that made :meth:`chains` (``[chain, draw]`` each)."""
        return {}

    def mean(self) -> torch.Tensor:
        """E_q[θ] → ``[D]``; closed form where q has one, else a Monte-Carlo mean of 1000 draws."""
        return self.sample(1000).mean(0)

    def log_q(self, theta: torch.Tensor) -> torch.Tensor:
        """log q(θ) for ``theta [n, D]`` → ``[n]``."""
        return self.guide.get_posterior().log_prob(theta)

    def kl_to_prior(self) -> torch.Tensor:
        """KL(q ‖ p(θ)) in closed form (families with ``closed_form_kl``)."""
        raise NotImplementedError(f"family {self.name!r} has no closed-form KL to the prior")

    def regularizer(self, theta: torch.Tensor) -> torch.Tensor:
        """The ELBO's term beside the expected log-likelihood, for draws ``theta [P, D]`` of q:
        KL(q ‖ p) in closed form where it exists, else its Monte-Carlo estimate
        (1/P) Σ_p [log q(θ_p) − log p(θ_p)]."""
        if self.closed_form_kl:
            return self.kl_to_prior()
        return (self.log_q(theta) - self.model.prior().log_prob(theta)).mean()

    def predictive_mean(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The mean of p(y | x, θ) the predictive uses, ``theta [S, D]`` → ``[S, N, obs_dim]``."""
        return self.model.mean(theta, x)

    # ------------------------------------------------------------------ re-expression, info gain
    def affine_transform(self, a: torch.Tensor, c: torch.Tensor) -> None:
        """Push q through θ' = a ⊙ θ + c (a > 0) in place, so that it describes the same
        distribution in the new coordinates (:meth:`DynamicsModel.refit_normalizer`)."""
        raise NotImplementedError(f"family {self.name!r} cannot be re-expressed under an affine map")

    def info_gain_view(self):
        """q as plain tensors for VIME's per-transition updates (:mod:`pprl.inference.info_gain`)."""
        raise ValueError(info_gain_support_error(type(self), "update", "gradient"))


def info_gain_support_error(cls: type[Family], method: str, solver: str) -> str | None:
    """Why family ``cls`` cannot give VIME's information gain by ``method``/``solver``, or None."""
    supported = cls.info_gain
    able = [n for n, c in FAMILIES.items() if c.info_gain]
    if not supported:
        return (f"information gain is undefined for the {cls.name!r} family: "
                + ("a point estimate has no posterior spread to update" if cls.point_estimate else
                   "it has no per-transition update") + f" (use {', '.join(able)})")
    if method not in supported:
        which = [n for n, c in FAMILIES.items() if method in c.info_gain]
        return (f"method={method!r} is not available for the {cls.name!r} family (families with it: "
                f"{', '.join(which)}); its methods: {', '.join(supported)}")
    solvers = supported[method]
    if solvers and solver not in solvers:
        return (f"solver={solver!r} is not available for the {cls.name!r} family with method={method!r}; "
                f"allowed: {', '.join(solvers)}")
    return None


@torch.no_grad()
def assign(module: torch.nn.Module, name: str, value: torch.Tensor) -> None:
    """Set a guide's parameter, constrained PyroParam or buffer to ``value`` (in place for a
    plain ``nn.Parameter``, so optimisers and references keep pointing at it)."""
    if name in module._parameters:
        module._parameters[name].copy_(value)
    else:
        setattr(module, name, value.detach())
