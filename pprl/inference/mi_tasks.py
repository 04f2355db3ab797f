"""Paired samples with a known mutual information, in the families of the "Beyond Normal"
benchmark (Czyż et al., NeurIPS 2023): correlated Gaussians, Student-t, additive uniform noise,
and invertible warps of any of them. Each sampler returns ``(x [N, dx], y [N, dy], I)`` with
I in nats; all draw from a ``numpy.random.Generator`` seeded by ``seed`` (no global RNG).

Closed forms:

- Gaussian, ``x = z[:dx]``, ``y = z[dx:]``, z ~ N(0, Σ):  I = ½ (log det Σ_xx + log det Σ_yy − log det Σ).
- Student-t with ν degrees of freedom and identity dispersion, (x, y) = z / √(u/ν), z ~ N(0, I),
  u ~ χ²_ν: x and y are uncorrelated but share the scale u, and
  I = f(ν) + f(ν + dx + dy) − f(ν + dx) − f(ν + dy), f(k) = log Γ(k/2) − (k/2) ψ(k/2)
  (Arellano-Valle, Contreras-Reyes & Genton 2013).
- Additive uniform noise, x ~ U(0, 1), y = x + ε, ε ~ U(−a, a):  I = a − log 2a for 2a ≤ 1,
  I = 1/(4a) otherwise (h(y) − h(ε) for y's trapezoidal density).
- An invertible map of each margin leaves I unchanged: :func:`warp` applies ``half_cube``
  (t ↦ t·|t|^½), ``asinh`` or ``normal_cdf`` (Φ) column-wise. Φ is invertible in exact
  arithmetic only: in floating point it saturates at 0 and 1 beyond |t| ≈ 8 (float64) or 5.4
  (float32), so apply it to light-tailed data (Gaussians), as the benchmark does.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln, ndtr  # scipy: a declared dependency (setup.cfg)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def gaussian_mi(cov: np.ndarray, dx: int) -> float:
    """I(X; Y) of a jointly Gaussian (X, Y) with covariance ``cov`` ((dx + dy)²), X the first dx."""
    cov = np.asarray(cov, dtype=float)
    logdet = lambda a: np.linalg.slogdet(a)[1]  # noqa: E731
    return 0.5 * (logdet(cov[:dx, :dx]) + logdet(cov[dx:, dx:]) - logdet(cov))


def gaussian(n: int, cov: np.ndarray, dx: int, seed: int = 0):
    """(x, y, I) from N(0, ``cov``), x the first ``dx`` coordinates."""
    cov = np.asarray(cov, dtype=float)
    z = _rng(seed).multivariate_normal(np.zeros(len(cov)), cov, size=n)
    return z[:, :dx], z[:, dx:], gaussian_mi(cov, dx)


def dense_cov(dx: int, dy: int, rho: float) -> np.ndarray:
    """Unit variances, every off-diagonal covariance ``rho`` (the benchmark's "dense" task)."""
    d = dx + dy
    return np.full((d, d), rho) + (1 - rho) * np.eye(d)


def student_t_mi(dx: int, dy: int, dof: float) -> float:
    """I(X; Y) of a Student-t with identity dispersion (module docstring)."""
    f = lambda k: gammaln(k / 2) - k / 2 * digamma(k / 2)  # noqa: E731
    return float(f(dof) + f(dof + dx + dy) - f(dof + dx) - f(dof + dy))


def student_t(n: int, dx: int, dy: int, dof: float, seed: int = 0):
    """(x, y, I): a multivariate Student-t with identity dispersion, heavy-tailed for small ``dof``."""
    g = _rng(seed)
    z = g.standard_normal((n, dx + dy)) / np.sqrt(g.chisquare(dof, size=(n, 1)) / dof)
    return z[:, :dx], z[:, dx:], student_t_mi(dx, dy, dof)


def additive_uniform(n: int, a: float, seed: int = 0):
    """(x, y, I): x ~ U(0, 1), y = x + U(−a, a)."""
    if not a > 0:
        raise ValueError(f"a must be > 0, got {a}")
    g = _rng(seed)
    x = g.uniform(0, 1, (n, 1))
    y = x + g.uniform(-a, a, (n, 1))
    mi = a - math.log(2 * a) if 2 * a <= 1 else 1 / (4 * a)
    return x, y, mi


WARPS = {
    "half_cube": lambda t: t * np.sqrt(np.abs(t)),
    "asinh": np.arcsinh,
    "normal_cdf": ndtr,
}


def warp(x: np.ndarray, y: np.ndarray, name: str):
    """Both margins through the invertible map ``name`` (one of :data:`WARPS`): I unchanged."""
    if name not in WARPS:
        raise ValueError(f"unknown warp {name!r}; allowed: {', '.join(WARPS)}")
    return WARPS[name](x), WARPS[name](y)
