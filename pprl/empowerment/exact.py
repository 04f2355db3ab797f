"""Exact empowerment where it can be computed: Blahut–Arimoto for discrete channels, water-filling
for linear-Gaussian ones. The references every variational estimate is checked against.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from .channels import LinearGaussianChannel, TabularChannel


@dataclass(frozen=True)
class Capacity:
    """C (nats) per channel, the optimal input distribution and the final gap between the upper
    bound max_x D(p(·|x) ‖ q) and the lower bound I(r) (C lies between them)."""

    capacity: torch.Tensor   # [B]
    input_dist: torch.Tensor  # [B, X], the r that the capacity (the lower bound I(r)) was computed for
    gap: torch.Tensor        # [B]
    iterations: int
    converged: bool = True   # every gap below tol


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """D(p(·|x) ‖ q) for every row x: ``p [B, X, Y]``, ``q [B, Y]`` → ``[B, X]`` (0 log 0 = 0)."""
    ratio = torch.where(p > 0, p / q.unsqueeze(1).clamp_min(1e-300), torch.ones_like(p))
    return (p * ratio.log()).sum(-1)


def blahut_arimoto(channel: torch.Tensor, tol: float = 1e-7, max_iter: int = 100_000) -> Capacity:
    """Capacity C = max_r I(X; Y) of ``channel [X, Y]`` (rows p(y|x)) or a batch ``[B, X, Y]``, by
    the Blahut–Arimoto iteration (Blahut 1972; Arimoto 1972):

        q(y) = Σ_x r(x) p(y|x),   D_x = D(p(·|x) ‖ q),   r(x) ← r(x) e^{D_x} / Σ_x' r(x') e^{D_x'},

    stopped when the gap max_x D_x − Σ_x r(x) D_x (an upper minus a lower bound on C) is below
    ``tol`` nats for every channel of the batch. float64 throughout."""
    p = torch.as_tensor(channel, dtype=torch.float64)
    single = p.dim() == 2
    p = p.unsqueeze(0) if single else p
    if p.dim() != 3:
        raise ValueError(f"channel must be [X, Y] or [B, X, Y], got shape {tuple(p.shape)}")
    if (p < 0).any() or not torch.allclose(p.sum(-1), torch.ones_like(p[..., 0]), atol=1e-8):
        raise ValueError("every row of the channel must be a probability distribution p(y|x)")
    log_r = torch.full(p.shape[:2], -math.log(p.shape[1]), dtype=torch.float64, device=p.device)
    converged = False
    for it in range(1, max_iter + 1):
        r = log_r.exp()
        q = torch.einsum("bx,bxy->by", r, p)
        D = _kl_rows(p, q)
        lower = (r * D).sum(-1)
        gap = D.max(-1).values - lower
        if bool((gap < tol).all()):
            converged = True
            break
        log_r = torch.log_softmax(log_r + D, -1)
    if not converged:
        warnings.warn(f"Blahut–Arimoto stopped after {max_iter} iterations with a capacity gap of up to "
                      f"{float(gap.max()):.3g} nats (tol {tol:g}); the capacity lies within that gap", RuntimeWarning,
                      stacklevel=2)
    if single:
        return Capacity(lower[0], r[0], gap[0], it, converged)
    return Capacity(lower, r, gap, it, converged)


def exact(channel: TabularChannel, horizon: int = 1, tol: float = 1e-7) -> Capacity:
    """K-step empowerment of every state of a tabular channel: the capacity of
    p(s_K | s, a_{1:K}) over the |A|^K action sequences, one batched Blahut–Arimoto over states."""
    return blahut_arimoto(channel.compose(horizon), tol=tol)


def water_filling(gains: torch.Tensor, noise_var: float, power: float) -> tuple[float, torch.Tensor]:
    """Capacity of y = G x + N(0, σ² I) under E‖x‖² ≤ P (Cover & Thomas, §9.4): with λ_i the
    singular values of G, the power p_i = max(0, ν − σ²/λ_i²) fills to the level ν with Σ p_i = P,
    and C = Σ_i ½ log(1 + p_i λ_i² / σ²) nats. ``gains`` is G (a matrix) or its singular values.
    Returns (C, p), p aligned with ``gains`` (or with G's singular values, largest first)."""
    g = torch.as_tensor(gains, dtype=torch.float64)
    lam_all = torch.linalg.svdvals(g) if g.dim() == 2 else g.abs()
    if not (noise_var > 0 and power >= 0):
        raise ValueError(f"noise_var must be > 0 and power >= 0, got {noise_var}, {power}")
    used = lam_all > 0  # a zero gain carries nothing and gets no power
    p_all = torch.zeros_like(lam_all)
    if not used.any():
        return 0.0, p_all
    lam = lam_all[used]
    floors = noise_var / lam.square()  # the "ground" each channel's water sits on
    order = floors.argsort()
    f = floors[order]
    for k in range(len(f), 0, -1):  # the largest set of channels that all get positive power
        level = (power + f[:k].sum()) / k
        if level > f[k - 1]:
            break
    p_sorted = (level - f).clamp_min(0)
    p = torch.empty_like(p_sorted)
    p[order] = p_sorted
    p_all[used] = p  # aligned with the input's singular values
    return float(0.5 * torch.log1p(p * lam.square() / noise_var).sum()), p_all


def water_filling_batched(gains: torch.Tensor, noise_var=1.0, power=1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`water_filling` for a batch of channels at once, with no Python loop over the batch.
    ``gains [..., d]`` are the (singular-value) gains λ_i of each channel y = G x + N(0, σ² I);
    ``noise_var`` σ² and ``power`` P are floats or tensors broadcastable to the batch shape ``[...]``.
    Per channel, with floors f_i = σ²/λ_i² sorted ascending, the water level is
    ν = (P + Σ_{i≤k} f_i)/k for the largest k with ν > f_k; p_i = max(0, ν − f_i) (zero where λ_i = 0)
    and C = Σ_i ½ log(1 + p_i λ_i²/σ²) nats. Returns (C ``[...]``, p ``[..., d]`` aligned with
    ``gains``), float64."""
    lam = torch.as_tensor(gains, dtype=torch.float64).abs()
    if lam.dim() < 1:
        raise ValueError(f"gains must be [..., d] (singular values along the last axis), got shape {tuple(lam.shape)}")
    batch = lam.shape[:-1]
    var = torch.as_tensor(noise_var, dtype=torch.float64, device=lam.device)
    P = torch.as_tensor(power, dtype=torch.float64, device=lam.device)
    try:
        var, P = var.expand(batch), P.expand(batch)
    except RuntimeError:
        raise ValueError(f"noise_var {tuple(var.shape)} and power {tuple(P.shape)} must broadcast to the batch "
                         f"shape {tuple(batch)} of gains {tuple(lam.shape)}") from None
    if not bool((var > 0).all() and (P >= 0).all()):
        raise ValueError("noise_var must be > 0 and power >= 0 for every channel")
    if lam.shape[-1] == 0:
        return torch.zeros(batch, dtype=torch.float64, device=lam.device), lam.clone()
    used = lam > 0  # a zero gain carries nothing and gets no power
    floors = torch.where(used, var.unsqueeze(-1) / lam.square().clamp_min(1e-300), torch.inf)
    f, order = floors.sort(-1)
    k = torch.arange(1, lam.shape[-1] + 1, dtype=torch.float64, device=lam.device)
    levels = (P.unsqueeze(-1) + f.cumsum(-1)) / k           # ν_k if the k lowest floors are filled
    fills = levels > f                                       # false for every k past the last filled one
    last = torch.where(fills, k, 0.0).amax(-1).clamp_min(1).long() - 1  # the largest such k (1 if none)
    level = levels.gather(-1, last.unsqueeze(-1))
    p_sorted = torch.where(f.isfinite(), (level - f).clamp_min(0), 0.0)
    p = torch.empty_like(p_sorted).scatter_(-1, order, p_sorted)
    return 0.5 * torch.log1p(p * lam.square() / var.unsqueeze(-1)).sum(-1), p


def amplitude_limited_capacity(noise_std: float, amplitude: float = 1.0, inputs: int = 61, bins_per_std: int = 5,
                               tol: float = 1e-4) -> Capacity:
    """Capacity of y = x + N(0, σ²) under |x| ≤ A (Smith 1971), by Blahut–Arimoto on a
    discretisation: ``inputs`` points evenly over [−A, A], outputs binned at σ/``bins_per_std`` over
    ±(A + 6σ). The binned channel's capacity approaches the continuous one from below as the grids
    refine (the data-processing inequality for the output bins; the input grid restricts the
    source), so finer grids give larger values that settle. ``tol``: BA's gap in nats."""
    p = amplitude_limited_matrix(noise_std, amplitude, inputs, bins_per_std)
    return blahut_arimoto(p, tol=tol, max_iter=500_000)


def amplitude_limited_matrix(noise_std: float, amplitude: float = 1.0, inputs: int = 61,
                             bins_per_std: int = 5) -> torch.Tensor:
    """The discretised channel of :func:`amplitude_limited_capacity`: p(bin | x) ``[inputs, bins]``
    (float64, rows sum to 1) for ``inputs`` points evenly over [−A, A]."""
    if not (noise_std > 0 and amplitude > 0) or inputs < 2 or bins_per_std < 1:
        raise ValueError(f"need noise_std > 0, amplitude > 0, inputs >= 2 and bins_per_std >= 1, got "
                         f"{noise_std}, {amplitude}, {inputs}, {bins_per_std}")
    x = torch.linspace(-amplitude, amplitude, inputs, dtype=torch.float64)
    width = noise_std / bins_per_std
    edges = torch.arange(-amplitude - 6 * noise_std, amplitude + 6 * noise_std + width, width, dtype=torch.float64)
    cdf = torch.distributions.Normal(x[:, None], noise_std).cdf(edges[None])
    p = (cdf[:, 1:] - cdf[:, :-1]).clamp_min(0)
    return p / p.sum(1, keepdim=True)


def mutual_information(channel: torch.Tensor, input_probs: torch.Tensor) -> float:
    """I(X; Y) in nats of a channel matrix p(y | x) ``[X, Y]`` under the input distribution
    ``input_probs [X]``: Σ_x p(x) KL(p(y|x) ‖ p(y))."""
    p = torch.as_tensor(channel, dtype=torch.float64)
    r = torch.as_tensor(input_probs, dtype=torch.float64)
    return float((r * _kl_rows(p[None], (r @ p)[None])[0]).sum())


def linear_gaussian_empowerment(channel: LinearGaussianChannel, horizon: int, power: float) -> float:
    """Empowerment of a :class:`LinearGaussianChannel` over K steps under E‖a_{1:K}‖² ≤ P: the
    accumulated noise Σ is whitened, y' = Σ^{-1/2} G_K a + N(0, I), then water-filling."""
    G, cov = channel.gain(horizon), channel.noise_cov(horizon)
    L = torch.linalg.cholesky(cov)
    white = torch.linalg.solve_triangular(L, G, upper=False)
    return water_filling(white, 1.0, power)[0]
