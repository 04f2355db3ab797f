"""Variational families over a dynamics model's flat weights θ ∈ R^D, one module per family,
found by name through a registry (:func:`register_family`).

| name        | q(θ)                                                   | module          |
|-------------|--------------------------------------------------------|-----------------|
| mean_field  | N(μ, diag σ²)                                          | ``mean_field``  |
| low_rank    | N(μ, diag(s)(FFᵀ + I)diag(s)), F ∈ R^{D×r}              | ``low_rank``    |
| full_rank   | N(μ, LLᵀ)                                              | ``full_rank``   |
| flow        | θ = μ + σ ⊙ g(z), z ~ N(0, I), g = affine couplings    | ``flow``        |
| map         | δ(θ − θ̂)                                              | ``map``         |
| laplace     | N(θ̂, (JᵀΣ⁻¹J + diag σ_p⁻²)⁻¹) at the MAP θ̂ (GGN)      | ``laplace``     |
| nuts        | draws of NUTS on the same model (the reference)        | ``nuts``        |

A new family is a module with a ``@register_family`` subclass of :class:`Family`; it is then
usable as ``family: <name>`` in an inference spec, by ``pprl.fit``, ``Posterior`` and ``compare``.
"""
from .base import FAMILIES, Family, Option, family_class, info_gain_support_error, register_family, unregister_family
from .gaussian import GaussianFamily
from .mean_field import MeanField
from .low_rank import LowRank
from .full_rank import FullRank
from .flow import ElementwiseAffine, Flow
from .map import MAP
from .laplace import Laplace, laplace_from_map, laplace_guide, linearized_mean
from .nuts import NUTS


def make_family(spec, model=None, guide=None) -> Family:
    """The :class:`Family` of an inference spec: unbound (then ``make_guide(model)`` builds its
    guide), or bound to an existing ``model`` and ``guide``."""
    return family_class(spec.family)(spec, model, guide)


def make_guide(model, spec):
    """The guide of ``spec``'s family for ``model`` (a shortcut for ``make_family(spec).make_guide(model)``)."""
    return make_family(spec).make_guide(model)


__all__ = ["FAMILIES", "Family", "Option", "GaussianFamily", "family_class", "make_family", "make_guide",
           "register_family", "unregister_family", "info_gain_support_error", "MeanField", "LowRank",
           "FullRank", "Flow", "ElementwiseAffine", "MAP", "Laplace", "NUTS", "laplace_guide", "laplace_from_map",
           "linearized_mean"]
