r"""Critic-based lower bounds on mutual information, as functions of a critic score matrix.

Every bound here reads one matrix of critic values for a paired batch ``(x_i, y_i) ~ p(x, y)``,
``i = 1..K``::

    scores[..., i, j] = f(x_i, y_j),

so the diagonal holds the K *positive* pairs (samples of the joint p) and the K(K−1)
off-diagonal entries ``i ≠ j`` stand in for samples of the product of marginals
q = p(x)p(y). Leading dimensions ``...`` are independent batches (one bound each). Every
function returns the bound in nats, differentiable in ``scores``, to be *maximised*; it keeps
the dtype and device of ``scores``. Write r(x, y) = p(x, y) / (p(x) p(y)), so I = E_p[log r].

Papers: Poole et al. 2019, "On Variational Bounds of Mutual Information" (TUBA, NWJ, InfoNCE,
JS, the interpolated I_α); Nguyen, Wainwright & Jordan 2010 (NWJ); Donsker & Varadhan /
Belghazi et al. 2018, "MINE"; Song & Ermon 2020, "Understanding the Limitations of
Variational Mutual Information Estimators" (SMILE).

| name         | estimate (reported)                      | objective (trained)      | optimal f   | bias / variance                               |
|--------------|------------------------------------------|--------------------------|-------------|-----------------------------------------------|
| infonce      | mean_i[f_ii − log Σ_j e^{f_ij}] + log K  | same                     | log r + c(x)| ≤ log K, so biased once I > log K; low var.   |
| nwj          | E_p[f] − e^{−1} E_q[e^f]                 | same                     | 1 + log r   | unbiased batch value; variance ~ e^I          |
| dv           | E_p[f] − log E_q[e^f]                    | same                     | log r + c   | ≥ NWJ; batch value biased (log of a mean)     |
| mine         | DV                                       | DV, moving-avg. gradient | log r + c   | as DV; less biased gradient; clamp at high I  |
| js           | NWJ at f + 1                             | JS f-GAN                 | log r       | as NWJ; stable training                       |
| smile        | E_p[f] − log E_q[e^{clip(f, −τ, τ)}]     | JS f-GAN                 | log r       | bounded variance; biased, not a bound (τ < ∞) |
| tuba         | 1 + E_p[f − a(y)] − E_q[e^{f − a(y)}]    | same                     | a(y) + log r| as NWJ (NWJ is a = 1)                         |
| interpolated | I_α, see :func:`interpolated`            | same                     |             | α = 0: TUBA (low bias) … α = 1: InfoNCE       |

E_p averages the diagonal, E_q the off-diagonal (i ≠ j) entries. The *objective* is what a
critic's gradient step maximises; the *estimate* is what is reported. They differ for three
bounds: MINE (same value, corrected gradient), JS and SMILE (trained on the Jensen–Shannon
f-GAN objective, reported as NWJ or clipped DV). :class:`Bound` pairs the two and
:func:`get_bound` builds one by name.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "infonce", "nwj", "dv", "mine", "MINE", "js", "js_objective", "smile", "tuba", "interpolated",
    "Bound", "BOUNDS", "BOUND_NAMES", "get_bound",
]


# ---------------------------------------------------------------------------------------------
# Shared pieces
def _check_scores(scores, fn: str, min_k: int = 2) -> int:
    """Validate a ``[..., K, K]`` floating-point score matrix; return K."""
    if not isinstance(scores, torch.Tensor):
        raise ValueError(f"{fn}: scores must be a torch.Tensor of critic values f(x_i, y_j), "
                         f"got {type(scores).__name__}")
    if scores.dim() < 2 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"{fn}: scores must be a square [..., K, K] matrix with "
                         f"scores[..., i, j] = f(x_i, y_j), got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise ValueError(f"{fn}: scores must be floating point (float32 or float64), got {scores.dtype}")
    K = scores.shape[-1]
    if K < min_k:
        raise ValueError(f"{fn}: needs a batch of K ≥ {min_k} pairs (the off-diagonal entries are the "
                         f"samples of p(x)p(y)), got K = {K}")
    return K


def _diag(scores: torch.Tensor) -> torch.Tensor:
    """The positive pairs f(x_i, y_i): ``[..., K]``."""
    return scores.diagonal(dim1=-2, dim2=-1)


def _offdiag_mask(K: int, device) -> torch.Tensor:
    return torch.eye(K, dtype=torch.bool, device=device)


def _offdiag_logmeanexp(scores: torch.Tensor) -> torch.Tensor:
    """log E_q[e^f] ≈ log( 1/(K(K−1)) Σ_{i≠j} e^{f_ij} ), computed stably: ``[...]``."""
    K = scores.shape[-1]
    off = scores.masked_fill(_offdiag_mask(K, scores.device), -math.inf)
    return torch.logsumexp(off, dim=(-2, -1)) - math.log(K * (K - 1))


def _offdiag_mean(values: torch.Tensor) -> torch.Tensor:
    """E_q[v] ≈ 1/(K(K−1)) Σ_{i≠j} v_ij: ``[...]``."""
    K = values.shape[-1]
    return values.masked_fill(_offdiag_mask(K, values.device), 0.0).sum((-2, -1)) / (K * (K - 1))


def _loo_logmeanexp(scores: torch.Tensor) -> torch.Tensor:
    """Leave-one-out column log-mean-exp: ``out[..., l, j] = log( 1/(K−1) Σ_{k≠l} e^{f_kj} )``.

    Exact and O(K²): the sum over k ≠ l is the log-sum-exp of the prefix k < l and the suffix
    k > l (``torch.logcumsumexp`` forwards and backwards), so nothing is subtracted and a
    dominant entry cannot cancel catastrophically.
    """
    K = scores.shape[-2]
    prefix = torch.logcumsumexp(scores, dim=-2)                     # log Σ_{k ≤ l}
    suffix = torch.logcumsumexp(scores.flip(-2), dim=-2).flip(-2)    # log Σ_{k ≥ l}
    pad = torch.full_like(scores[..., :1, :], -math.inf)
    before = torch.cat([pad, prefix[..., :-1, :]], dim=-2)           # log Σ_{k < l}
    after = torch.cat([suffix[..., 1:, :], pad], dim=-2)             # log Σ_{k > l}
    return torch.logaddexp(before, after) - math.log(K - 1)


def _log_baseline(log_baseline, scores: torch.Tensor, fn: str) -> torch.Tensor | None:
    """A per-y log-baseline a(y_j) as a tensor broadcastable to ``[..., K]`` (None stays None)."""
    if log_baseline is None:
        return None
    K = scores.shape[-1]
    a = torch.as_tensor(log_baseline, dtype=scores.dtype, device=scores.device)
    target = tuple(scores.shape[:-2]) + (K,)
    try:
        ok = torch.broadcast_shapes(a.shape, target) == torch.Size(target)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: log_baseline (a(y_j), one value per column of scores) must be a number or "
                         f"broadcast to shape {target}, got shape {tuple(a.shape)}")
    return a


def _by_column(a: torch.Tensor) -> torch.Tensor:
    """Per-column values ``[..., K]`` → ``[..., 1, K]`` so they broadcast over rows (scalars as is)."""
    return a if a.dim() == 0 else a.unsqueeze(-2)


def _check_unit_interval(value, name: str, fn: str, upper_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a number, got {value!r}") from None
    if not (0.0 <= v < 1.0 if upper_open else 0.0 <= v <= 1.0):
        raise ValueError(f"{fn}: {name} must lie in [0, 1{')' if upper_open else ']'}, got {value!r}")
    return v


# ---------------------------------------------------------------------------------------------
# The bounds
def infonce(scores: torch.Tensor) -> torch.Tensor:
    r"""InfoNCE / CPC (van den Oord et al. 2018; Poole et al. 2019).

        I_NCE = 1/K Σ_i [ f(x_i, y_i) − log 1/K Σ_j e^{f(x_i, y_j)} ]
              = mean_i [ f_ii − logsumexp_j f_ij ] + log K.

    A lower bound on I in expectation for any critic. Every batch value is ≤ log K (each term
    f_ii − logsumexp_j f_ij ≤ 0), so the bias is large once I exceeds log K; the variance is
    low (a softmax cross-entropy). Optimal critic: log r(x, y) + c(x).
    """
    K = _check_scores(scores, "infonce", min_k=1)
    return (_diag(scores) - torch.logsumexp(scores, dim=-1)).mean(-1) + math.log(K)


def nwj(scores: torch.Tensor) -> torch.Tensor:
    r"""NWJ / f-divergence bound (Nguyen, Wainwright & Jordan 2010; Poole et al. 2019).

        I_NWJ = E_p[f] − e^{−1} E_{p(x)p(y)}[e^f],

    with E_p the mean of the diagonal f_ii and E_{p(x)p(y)} the mean of the K(K−1)
    off-diagonal entries f_ij, i ≠ j (each x_i is independent of y_j for i ≠ j). Both means
    are unbiased, so the batch value is an unbiased estimate of the bound; its variance grows
    like e^I (the e^f term). Optimal critic: 1 + log r. NWJ is TUBA with a(y) = 1.
    """
    _check_scores(scores, "nwj")
    return _diag(scores).mean(-1) - torch.exp(_offdiag_logmeanexp(scores) - 1.0)


def dv(scores: torch.Tensor) -> torch.Tensor:
    r"""Donsker–Varadhan bound (the MINE objective, Belghazi et al. 2018; Poole et al. 2019).

        I_DV = E_p[f] − log E_{p(x)p(y)}[e^f]      (off-diagonal log-mean-exp).

    I_DV ≥ I_NWJ for the same critic (log z ≤ z/e). The batch value is biased (a log of a
    batch mean: E[−log mean] ≥ −log E, so it over-estimates the DV bound for small K) and its
    variance grows like e^I. Optimal critic: log r + c for any constant c. When I is large
    enough that a flexible critic separates the K positives from the batch's negatives (the
    negatives that would reveal the error have probability ~ e^{−I}), *training* on the batch
    value diverges upwards (f → α·f with α growing): on the 20-d staircase with a concat
    critic it passes 100 nats at I = 8. Train with :func:`mine` (clamped), NWJ or
    :func:`smile` there.
    """
    _check_scores(scores, "dv")
    return _diag(scores).mean(-1) - _offdiag_logmeanexp(scores)


def mine(scores: torch.Tensor, state: torch.Tensor | None = None,
         momentum: float = 0.99, log_mean_clamp: tuple[float, float] | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""MINE (Belghazi et al. 2018): the DV value with a bias-corrected gradient.

    The DV gradient ∇E_p[f] − ∇E_q[e^f] / E_q[e^f] divides by a *batch* mean, which biases it.
    MINE divides by a moving average instead,

        m_t = momentum · m_{t−1} + (1 − momentum) · Ê_q[e^f]    (m_1 = Ê_q[e^f]),

    through the surrogate s = E_p[f] − Ê_q[e^f] / stop_grad(m_t). The returned value is
    ``dv(scores).detach() + (s − s.detach())``: its value equals :func:`dv`, its gradient is ∇s.

    DV, and so MINE, is blind to a constant offset of the critic (f + c has the same value), so
    with a flexible critic the scale of e^f is free to drift. ``log_mean_clamp = (lo, hi)``
    clamps log Ê_q[e^f] to [lo, hi] before it enters the average (torch-mist clamps the batch
    mean to [1e−4, 1e4], i.e. lo, hi = ∓log 1e4): once Ê_q[e^f] > e^hi the negatives' gradient
    e^f / m_t is no longer normalised and pulls the offset back. This is a stabiliser, not
    part of Belghazi et al.'s rule; the default None leaves the average unclamped.

    Args:
        scores: ``[..., K, K]`` critic values.
        state: log m_{t−1}, shape ``[...]`` (detached), or None on the first step.
        momentum: in [0, 1); 0 recovers the plain DV gradient.
        log_mean_clamp: optional ``(lo, hi)``, lo < hi, limits for log Ê_q[e^f] in the average.

    Returns:
        ``(value, new_state)`` with ``new_state = log m_t`` (detached) to pass to the next call.
    """
    _check_scores(scores, "mine")
    m = _check_unit_interval(momentum, "momentum", "mine", upper_open=True)
    clamp = _check_log_mean_clamp(log_mean_clamp, "mine")
    log_batch = _offdiag_logmeanexp(scores)                 # log Ê_q[e^f]
    value = _diag(scores).mean(-1) - log_batch
    with torch.no_grad():
        current = log_batch.detach() if clamp is None else log_batch.detach().clamp(*clamp)
        if state is None:
            new_state = current
        else:
            state = torch.as_tensor(state).to(current)
            if state.shape != current.shape:
                raise ValueError(f"mine: state (the log running mean of E_q[e^f]) must have the batch shape "
                                 f"{tuple(current.shape)} of scores, got {tuple(state.shape)}")
            log_m = math.log(m) if m > 0 else -math.inf
            new_state = torch.logaddexp(state + log_m, current + math.log1p(-m))
    surrogate = _diag(scores).mean(-1) - torch.exp(log_batch - new_state)
    return value.detach() + (surrogate - surrogate.detach()), new_state


def _check_log_mean_clamp(clamp, fn: str):
    if clamp is None:
        return None
    try:
        lo, hi = (float(v) for v in clamp)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: log_mean_clamp must be None or a pair (lo, hi), got {clamp!r}") from None
    if not lo < hi:
        raise ValueError(f"{fn}: log_mean_clamp needs lo < hi, got {clamp!r}")
    return lo, hi


class MINE(torch.nn.Module):
    r"""Stateful MINE objective: ``MINE(momentum)(scores)`` has the value of :func:`dv` and the
    moving-average-corrected gradient of :func:`mine` (Belghazi et al. 2018).

    The running log-mean ``log_running_mean`` (shape ``batch_shape``, the leading dims of the
    scores) and ``num_updates`` are buffers: they follow ``.to(device)`` and ``state_dict``.
    The first call initialises the average with its own batch, so its gradient equals DV's.
    ``update=False`` computes the value without moving the average (e.g. for evaluation).
    """

    def __init__(self, momentum: float = 0.99, batch_shape: tuple[int, ...] = (), *,
                 log_mean_clamp: tuple[float, float] | None = None, device=None, dtype=None):
        super().__init__()
        self.momentum = _check_unit_interval(momentum, "momentum", "MINE", upper_open=True)
        self.log_mean_clamp = _check_log_mean_clamp(log_mean_clamp, "MINE")
        self.register_buffer("log_running_mean", torch.zeros(tuple(batch_shape), device=device, dtype=dtype))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long, device=device))

    def forward(self, scores: torch.Tensor, update: bool = True) -> torch.Tensor:
        _check_scores(scores, "MINE")
        if scores.shape[:-2] != self.log_running_mean.shape:
            raise ValueError(f"MINE: scores have batch shape {tuple(scores.shape[:-2])} but this MINE keeps a "
                             f"running average of shape {tuple(self.log_running_mean.shape)}; "
                             f"build it with MINE(batch_shape={tuple(scores.shape[:-2])})")
        state = self.log_running_mean if int(self.num_updates) > 0 else None
        value, new_state = mine(scores, state, self.momentum, self.log_mean_clamp)
        if update:
            self.log_running_mean.copy_(new_state)
            self.num_updates += 1
        return value

    def extra_repr(self) -> str:
        clamp = "" if self.log_mean_clamp is None else f", log_mean_clamp={self.log_mean_clamp}"
        return f"momentum={self.momentum}, batch_shape={tuple(self.log_running_mean.shape)}{clamp}"


def js_objective(scores: torch.Tensor) -> torch.Tensor:
    r"""Jensen–Shannon f-GAN objective (Nowozin et al. 2016; Poole et al. 2019):

        L_JS = E_p[−softplus(−f)] − E_{p(x)p(y)}[softplus(f)],

    a lower bound on 2·JS(p ‖ p(x)p(y)) − log 4, i.e. the log-likelihood of a logistic
    classifier σ(f) telling joint pairs from shuffled ones — *not* an MI bound itself. Its
    optimum is f* = log r exactly, so a critic trained on it is a density-ratio estimate; train
    on this, report :func:`js` or :func:`smile`. Low-variance gradients (bounded in f).
    """
    _check_scores(scores, "js_objective")
    return -F.softplus(-_diag(scores)).mean(-1) - _offdiag_mean(F.softplus(scores))


def js(scores: torch.Tensor) -> torch.Tensor:
    r"""The MI estimate of a critic trained with :func:`js_objective` (Poole et al. 2019):
    "trained on JS, reported as NWJ with the critic shifted by +1":

        I_JS = I_NWJ(f + 1) = 1 + E_p[f] − E_{p(x)p(y)}[e^f].

    The optimal JS critic is log r while NWJ's is 1 + log r, hence the shift. A valid lower
    bound for any f; unbiased batch value; variance ~ e^I as for NWJ.
    """
    _check_scores(scores, "js")
    return 1.0 + _diag(scores).mean(-1) - torch.exp(_offdiag_logmeanexp(scores))


def smile(scores: torch.Tensor, clip: float | None = 5.0) -> torch.Tensor:
    r"""SMILE (Song & Ermon 2020): DV with the partition term's critic clipped to [−τ, τ]:

        I_SMILE = E_p[f] − log E_{p(x)p(y)}[ e^{clip(f, −τ, τ)} ]     (τ = ``clip``),

    the joint term unclipped. Clipping keeps every e^{clip(f)} in [e^{−τ}, e^{τ}], which bounds
    the variance of the partition estimate (Song & Ermon, Thm. 3) at the price of bias: it is
    not a lower bound for finite τ, and τ → ∞ (or ``clip=None``) gives :func:`dv` exactly. As
    in Song & Ermon's experiments, the registry trains SMILE's critic with :func:`js_objective`
    (optimum f = log r) and reports this value.
    """
    _check_scores(scores, "smile")
    if clip is not None:
        if not float(clip) > 0:
            raise ValueError(f"smile: clip (τ) must be a positive number or None, got {clip!r}")
        clipped = scores.clamp(-float(clip), float(clip))
    else:
        clipped = scores
    return _diag(scores).mean(-1) - _offdiag_logmeanexp(clipped)


def tuba(scores: torch.Tensor, log_baseline=None) -> torch.Tensor:
    r"""Tractable unnormalised Barber–Agakov bound (Poole et al. 2019), in log-baseline form:

        I_TUBA = 1 + E_p[f(x, y) − a(y)] − E_{p(x)p(y)}[ e^{f(x, y) − a(y)} ],   a(y) = log baseline.

    ``log_baseline`` gives a(y_j) for each column j: a number or a tensor broadcastable to
    ``[..., K]`` (e.g. a learned network of y); None means a = 0. The joint term uses
    f_jj − a_j, the marginal term f_ij − a_j for i ≠ j. a(y) = 1 gives :func:`nwj` exactly.
    A lower bound for every a; optimal critic a(y) + log r. Unbiased batch value, variance
    ~ e^I unless a(y) tracks log E_{p(x)}[e^{f(x, y)}].
    """
    _check_scores(scores, "tuba")
    a = _log_baseline(log_baseline, scores, "tuba")
    shifted = scores if a is None else scores - _by_column(a)
    return 1.0 + _diag(shifted).mean(-1) - torch.exp(_offdiag_logmeanexp(shifted))


def interpolated(scores: torch.Tensor, alpha: float, log_baseline=None) -> torch.Tensor:
    r"""Poole et al. 2019's interpolated bound I_α (Sec. 2.4), between TUBA (α = 0) and
    InfoNCE (α = 1).

    TUBA with a multi-sample baseline: for y and a set X of x's with x_1 ∈ X,

        B(y; X) = α · m(y; X) + (1 − α) · e^{a(y)},   m(y; X) = mean_{x ∈ X} e^{f(x, y)},
        I_α = 1 + E_{p(x_1, y)}[ f(x_1, y) − log B(y; X) ] − E_{p(x_1) p(y)}[ e^{f(x_1, y)} / B(y; X) ],

    where the other members of X are independent of y. In a batch only the K−1 x's other than
    x_j are independent of y_j, so every set here has K−1 members (leave-one-out, exact):

        joint     = mean over j and l ≠ j of  f_jj − log( α·mean_{k≠l} e^{f_kj} + (1−α) e^{a_j} ),
        marginal  = mean over i ≠ j of        e^{f_ij} / ( α·mean_{k≠j} e^{f_kj} + (1−α) e^{a_j} ),
        I_α       = 1 + joint − marginal,

    all in log-space (log-sum-exp / logaddexp). What holds, for every batch:

    * α = 0: exactly :func:`tuba` with the same ``log_baseline`` (so NWJ when a = 1).
    * α = 1 (``log_baseline`` unused): the marginal term is exactly 1 and I_α is InfoNCE with
      the roles of x and y exchanged (normalised over the x's of each column) on K−1 samples,
      averaged over the left-out sample: ``mean_l infonce(S₋ₗ.mT)`` with S₋ₗ the scores
      without row and column l. Hence I_1 ≤ log(K − 1).
    * 0 < α ≤ 1: the joint term is ≤ log((K−1)/α) (B ≥ α e^{f_jj}/(K−1)), so
      I_α ≤ 1 + log((K−1)/α): α caps the estimate like InfoNCE's log K (Poole et al. quote the
      joint-term ceiling log(K/α) for K-sample sets), trading bias (small α) for variance.

    Args:
        scores: ``[..., K, K]`` critic values, K ≥ 2.
        alpha: mixing weight α ∈ [0, 1].
        log_baseline: a(y_j) per column, a number or broadcastable to ``[..., K]``; None is 0.
    """
    _check_scores(scores, "interpolated")
    alpha = _check_unit_interval(alpha, "alpha", "interpolated")
    a = _log_baseline(log_baseline, scores, "interpolated")
    if a is None:
        a = torch.zeros((), dtype=scores.dtype, device=scores.device)
    a = _by_column(a)                                               # [..., 1, K]: a(y_j) by column
    if alpha == 0.0:
        log_b = a.expand_as(scores)
    else:
        loo = _loo_logmeanexp(scores)                               # [..., l, j]: log mean_{k≠l} e^{f_kj}
        if alpha == 1.0:
            log_b = loo
        else:
            log_b = torch.logaddexp(loo + math.log(alpha), a + math.log1p(-alpha))
    joint = _offdiag_mean(_diag(scores).unsqueeze(-2) - log_b)     # mean_{l≠j} f_jj − log B_{l, j}
    log_b_self = _diag(log_b).unsqueeze(-2)                         # B for column j with set {k ≠ j}
    marginal = torch.exp(_offdiag_logmeanexp(scores - log_b_self))
    return 1.0 + joint - marginal


# ---------------------------------------------------------------------------------------------
# Registry: what is trained and what is reported, by name
@dataclass(frozen=True)
class Bound:
    """A named MI bound: ``objective(scores)`` is what training maximises (its gradient is the
    one used), ``estimate(scores)`` is the value reported, in nats. Both take ``[..., K, K]``
    scores and keyword overrides (e.g. ``log_baseline=`` for TUBA per batch)."""

    name: str
    objective: Callable[..., torch.Tensor]
    estimate: Callable[..., torch.Tensor]


def _build_infonce() -> Bound:
    return Bound("infonce", infonce, infonce)


def _build_nwj() -> Bound:
    return Bound("nwj", nwj, nwj)


def _build_dv() -> Bound:
    return Bound("dv", dv, dv)


def _build_mine(momentum: float = 0.99, batch_shape: tuple[int, ...] = (), log_mean_clamp=None,
                device=None, dtype=None) -> Bound:
    return Bound("mine", MINE(momentum, batch_shape, log_mean_clamp=log_mean_clamp, device=device, dtype=dtype),
                 dv)


def _build_js() -> Bound:
    return Bound("js", js_objective, js)


def _build_smile(clip: float | None = 5.0) -> Bound:
    if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
        raise ValueError(f"bound 'smile': clip (τ) must be a positive number or None, got {clip!r}")
    return Bound("smile", js_objective, partial(smile, clip=clip))


def _build_tuba(log_baseline=None) -> Bound:
    f = partial(tuba, log_baseline=log_baseline)
    return Bound("tuba", f, f)


def _build_interpolated(alpha: float, log_baseline=None) -> Bound:
    _check_unit_interval(alpha, "alpha", "bound 'interpolated'")
    f = partial(interpolated, alpha=alpha, log_baseline=log_baseline)
    return Bound("interpolated", f, f)


#: name → builder of a fresh :class:`Bound` (keyword options as in the builder's signature).
#: Builders rather than shared instances: MINE's objective carries a running average, which
#: must never be shared between two training runs.
BOUNDS: dict[str, Callable[..., Bound]] = {
    "infonce": _build_infonce,
    "nwj": _build_nwj,
    "dv": _build_dv,
    "mine": _build_mine,
    "js": _build_js,
    "smile": _build_smile,
    "tuba": _build_tuba,
    "interpolated": _build_interpolated,
}
BOUND_NAMES: tuple[str, ...] = tuple(BOUNDS)


def get_bound(name: str, **options) -> Bound:
    """A fresh :class:`Bound` by name, e.g. ``get_bound("smile", clip=5.0)``.

    Options per name: mine (momentum, batch_shape, log_mean_clamp, device, dtype), smile (clip), tuba
    (log_baseline), interpolated (alpha — required, log_baseline); the others take none.
    Unknown names or options raise ValueError naming what is allowed.
    """
    if name not in BOUNDS:
        raise ValueError(f"unknown MI bound {name!r}; allowed: {', '.join(BOUND_NAMES)}")
    builder = BOUNDS[name]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        allowed = ", ".join(params) or "none"
        raise ValueError(f"bound {name!r} got unknown option(s) {', '.join(unknown)}; allowed: {allowed}")
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in options]
    if missing:
        raise ValueError(f"bound {name!r} needs option(s): {', '.join(missing)}")
    return builder(**options)
