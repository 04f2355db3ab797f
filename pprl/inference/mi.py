"""Estimating I(X; Y) from paired samples with a trained critic and a bound of
:mod:`pprl.inference.bounds`, and the result type every MI estimate in pprl shares.

``estimate_mi(x, y, bound="infonce", critic="separable")`` splits the N pairs into a training
part and a held-out part, trains the critic f by Adam on ``bound.objective`` over random
minibatches of K = ``batch_size`` pairs (the K × K score matrix of a minibatch holds its K
positives on the diagonal, its K(K − 1) mismatched pairs off it), then reports
``bound.estimate`` averaged over disjoint held-out minibatches:

    Î = (1/B) Σ_b estimate(f(x_b, y_b)),    stderr = sd_b / √B.

Held-out data keep the critic's over-fitting (a critic that memorises its training pairs
inflates every bound) out of the number.

**Preprocessing.** I(X; Y) is invariant under invertible maps of each margin, so the critic may
read transformed columns for free: ``preprocess="standardize"`` (the default) centres and scales
each column, x ↦ (x − mean)/sd; ``"copula"`` maps each column through its empirical CDF to normal
scores, x ↦ Φ⁻¹(rank(x)/(N + 1)) (ties share their average rank), which turns heavy tails and
monotone warps into Gaussian margins; ``None`` leaves the data as given. Both maps are fitted on
all N rows: a per-column statistic says nothing about which x goes with which y.

**What the error bar covers.** ``stderr`` is the sampling error only (the spread over held-out
batches). The bound's own bias is a property of the bound, reported beside it as ``bias``: a
lower bound (NWJ, JS, TUBA, Barber–Agakov), a lower bound that cannot exceed a ceiling
(InfoNCE ≤ log K; ``ceiling``), a bound only for large batches (DV, MINE: the log of a batch
mean biases the value up), or no bound at all (SMILE's clip). :func:`check_convergence` reads
the training trace: a bound still rising when training stopped is short of its optimum.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.critics import make_critic
from ..rng import seeded
from .bounds import get_bound
from ..threads import uses_threads


#: What each estimator's value is, beside its sampling error (module docstring).
BIAS_CLASSES: dict[str, str] = {
    "infonce": "lower bound, at most log K",
    "interpolated": "lower bound, at most 1 + log((K - 1)/alpha)",
    "nwj": "lower bound",
    "js": "lower bound",
    "tuba": "lower bound",
    "barber_agakov": "lower bound",
    "dv": "lower bound for large batches only (the log of a batch mean biases it up)",
    "mine": "lower bound for large batches only (the log of a batch mean biases it up)",
    "smile": "not a bound (the clip biases it either way)",
}


@dataclass(frozen=True)
class MIEstimate:
    """An MI estimate in nats: ``value`` ± ``stderr`` (the sampling error of the held-out
    estimate, nothing else), the training ``trace`` (one estimate per step, np.ndarray) and what
    produced it. ``bias``: what kind of estimate the value is (:data:`BIAS_CLASSES`);
    ``ceiling``: the most the bound can report (InfoNCE: log K), or None; ``preprocess``: the
    marginal map the critic read the data through; ``notes``: warnings a careful reader would
    want (the trace still rising, the value at its ceiling)."""

    value: float
    stderr: float
    trace: np.ndarray = field(repr=False)
    bound: str
    method: str  # the critic's name, or "barber_agakov"
    num_samples: int  # held-out pairs (critic bounds) or Monte-Carlo samples (Barber–Agakov)
    preprocess: str | None = None
    ceiling: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def bias(self) -> str:
        return BIAS_CLASSES.get(self.bound, "unknown")

    def __str__(self) -> str:
        head = f"{self.value:.4f} ± {self.stderr:.4f} nats ({self.bound}, {self.method}, n={self.num_samples})"
        ceiling = f" = {self.ceiling:.3f}" if self.ceiling is not None else ""
        lines = [head, f"  {self.bias}{ceiling}; ± is sampling error only"]
        if self.preprocess:
            lines.append(f"  inputs: {self.preprocess}")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "bound": self.bound, "method": self.method,
                "num_samples": self.num_samples, "bias": self.bias, "ceiling": self.ceiling,
                "preprocess": self.preprocess, "notes": list(self.notes), "trace": [float(v) for v in self.trace]}


def check_convergence(trace, fraction: float = 0.2, tolerance: float = 0.01) -> str | None:
    """A hint when a training trace has not flattened, else None.

    The last ``fraction`` of the trace is split into halves, earlier (a) and later (b). The trace
    has not flattened when b's mean exceeds a's by more than three standard errors of the
    difference (per-step spread) *and* by more than ``tolerance`` (nats, an absolute floor so a
    long, flat trace is not flagged for a drift nobody would care about). A falling trace is
    reported too (an unstable bound or too large a step size). Standard errors treat steps as
    independent, so this is a hint, not a test.
    """
    trace = np.asarray(trace, dtype=float)
    trace = trace[np.isfinite(trace)]
    n = int(len(trace) * fraction) // 2
    if n < 10:
        return None
    a, b = trace[-2 * n:-n], trace[-n:]
    diff = b.mean() - a.mean()
    se = np.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
    if abs(diff) <= max(3 * se, tolerance):
        return None
    where = f"over the last {2 * n} of {len(trace)} training steps"
    size = f" ({abs(diff) / se:.1f} s.e.)" if se > 0 else ""
    if diff > 0:
        return f"the training estimate still rose by {diff:.3f} nats {where}{size}: train longer"
    return (f"the training estimate fell by {-diff:.3f} nats {where}{size}: the bound's training is unstable; "
            f"try a smaller lr")


PREPROCESS = ("standardize", "copula")


def _normal_scores(t: torch.Tensor) -> torch.Tensor:
    """Each column of ``t [N, d]`` → Φ⁻¹(rank/(N + 1)), tied values sharing their average rank."""
    N = t.shape[0]
    out = torch.empty_like(t)
    for j in range(t.shape[1]):  # columns, not samples
        values, order = torch.sort(t[:, j])
        _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
        first = torch.cumsum(counts, 0) - counts  # 0-based rank of each group's first member
        average = first.to(t.dtype) + (counts.to(t.dtype) + 1) / 2  # 1-based average rank
        out[order, j] = average[inverse]
    return torch.special.ndtri(out / (N + 1))


def preprocess_columns(t: torch.Tensor, how: str | None) -> torch.Tensor:
    """The marginal map ``how`` (``"standardize"``, ``"copula"`` or None) applied to each column of
    ``t [N, d]`` (module docstring). A constant column is centred and left unscaled."""
    if how is None:
        return t
    if how == "standardize":
        sd = t.std(0, keepdim=True)
        return (t - t.mean(0, keepdim=True)) / torch.where(sd > 0, sd, torch.ones_like(sd))
    if how == "copula":
        return _normal_scores(t)
    raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)} or None, got {how!r}")


def _ceiling(bound: str, batch_size: int, options: dict) -> float | None:
    if bound == "infonce":
        return float(np.log(batch_size))
    if bound == "interpolated" and options["alpha"] > 0:  # α = 0 is TUBA: no ceiling
        return float(1 + np.log((batch_size - 1) / options["alpha"]))
    return None


def _as_matrix(values, name: str, device, dtype) -> torch.Tensor:
    """[N] or [N, d] array-like → float tensor [N, d]."""
    t = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
        raise ValueError(f"{name} must hold numbers, got dtype {t.dtype}")
    if t.dim() == 1:
        t = t[:, None]
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape [N] or [N, d], got {tuple(t.shape)}")
    t = t.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


#: estimate_mi's settings per critic when none are given: (critic_options, lr). The concat critic
#: is the Beyond-Normal paper's (16, 8) MLP: on that benchmark's 40 tasks it beat a (256, 256)
#: separable critic, which lost over a nat on the 25- and 50-d tasks by over-fitting
#: (benchmarks/RESULTS.md). A wider critic pays where I is large in many dimensions.
CRITIC_DEFAULTS: dict[str, tuple[dict, float]] = {
    "concat": ({"hidden": (16, 8)}, 5e-3),
    "separable": ({}, 5e-4),
    "bilinear": ({}, 5e-4),
}


@uses_threads
def estimate_mi(x, y, bound: str = "infonce", critic: str = "concat", *, steps: int = 3000,
                batch_size: int = 128, lr: float | None = None, heldout: float = 0.2, seed: int = 0,
                device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                bound_options: dict | None = None, critic_options: dict | None = None,
                preprocess: str | None = "standardize", progress: bool = True) -> MIEstimate:
    """Train a critic on ``bound`` and estimate I(X; Y) in nats on held-out pairs (module docstring).

    ``x [N, dx]`` and ``y [N, dy]`` (or ``[N]``; numpy or torch) are paired samples of p(x, y).
    ``batch_size`` is K, the number of pairs per score matrix (InfoNCE cannot exceed log K).
    ``critic_options`` and ``lr`` default per critic (:data:`CRITIC_DEFAULTS`: the concat
    critic is a small (16, 8) MLP trained with lr 5e-3; the separable one has its class defaults
    and lr 5e-4). ``dtype`` defaults to float64 for float64 inputs, float32 otherwise. ``preprocess``:
    ``"standardize"``, ``"copula"`` or None, the marginal map applied to x and y first (free:
    I is invariant under it). The result's ``notes`` say when the training trace had not
    flattened (:func:`check_convergence`) or the value sits at the bound's ceiling.
    """
    if preprocess is not None and preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {', '.join(PREPROCESS)} or None, got {preprocess!r}")
    if not 0 < heldout < 1:
        raise ValueError(f"heldout must be in (0, 1), got {heldout}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (a score matrix needs off-diagonal pairs), got {batch_size}")
    default_options, default_lr = CRITIC_DEFAULTS.get(critic, ({}, 5e-4))
    critic_options = dict(default_options) if critic_options is None else critic_options
    lr = default_lr if lr is None else lr
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if dtype is None:
        is64 = any(getattr(v, "dtype", None) in (np.float64, torch.float64) for v in (x, y))
        dtype = torch.float64 if is64 else torch.float32
    x, y = _as_matrix(x, "x", device, dtype), _as_matrix(y, "y", device, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of pairs, got {x.shape[0]} and {y.shape[0]}")
    x, y = preprocess_columns(x, preprocess), preprocess_columns(y, preprocess)
    n_test = int(round(heldout * x.shape[0]))
    if n_test < batch_size or x.shape[0] - n_test < batch_size:
        raise ValueError(f"{x.shape[0]} pairs with heldout={heldout} leave fewer than batch_size={batch_size} "
                         f"pairs for training or for the held-out estimate")

    gen = torch.Generator(device="cpu").manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=gen).to(x.device)
    test, train = order[:n_test], order[n_test:]
    options = dict(bound_options or {})
    if bound == "mine":  # its running average lives with the scores
        options = {"device": x.device, "dtype": dtype, **options}
    the_bound = get_bound(bound, **options)
    with seeded(seed):  # seeded initial weights, global RNG untouched
        f = make_critic(critic, x.shape[1], y.shape[1], device=device, dtype=dtype, **(critic_options or {}))
    optimizer = torch.optim.Adam(f.parameters(), lr=lr)

    trace = torch.empty(steps, dtype=torch.float64, device=x.device)  # read back once: no per-step sync
    bar = _progress(steps, f"MI ({bound}, {critic})", progress)
    for step in range(steps):
        idx = train[torch.randint(len(train), (batch_size,), generator=gen).to(x.device)]
        scores = f(x[idx], y[idx])
        loss = -the_bound.objective(scores)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            trace[step] = the_bound.estimate(scores.detach())
        if bar is not None:
            bar.update()
            if step % 50 == 0 or step == steps - 1:
                bar.set_postfix(estimate=f"{float(trace[max(0, step - 49):step + 1].mean()):.3f}")
    if bar is not None:
        bar.close()

    # Disjoint held-out minibatches of K pairs, scored one K × K matrix at a time as in training:
    # a concat critic's pair features take K²·hidden numbers per batch, never B·K²·hidden at once.
    with torch.no_grad():
        batches = test[: len(test) // batch_size * batch_size].view(-1, batch_size)
        values = torch.stack([the_bound.estimate(f(x[b], y[b])) for b in batches]).double().cpu().numpy()
    stderr = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    value, trace = float(values.mean()), trace.cpu().numpy()
    ceiling = _ceiling(bound, batch_size, options)
    notes = [n for n in (check_convergence(trace),) if n]
    tail = trace[-max(1, len(trace) // 10):]
    gap = float(tail.mean()) - value
    # one held-out batch has no spread of its own: take a training batch's as its error
    heldout_se = stderr if np.isfinite(stderr) else float(tail.std(ddof=1)) if len(tail) > 1 else np.inf
    if len(tail) > 1 and gap > max(3 * np.hypot(heldout_se, tail.std(ddof=1) / np.sqrt(len(tail))),
                                   0.1 * abs(value), 0.05):
        # a training estimate still "rising" above the held-out one is over-fitting, not too few steps
        notes = [f"the critic scores its training pairs {gap:.3f} nats higher than held-out pairs: it over-fits; "
                 f"use a smaller critic (critic_options hidden=...), fewer steps or more data"]
    if np.isfinite(heldout_se) and (value + 2 * heldout_se < 0 or (heldout_se > abs(value) and heldout_se > 0.1)):
        notes.append(f"the held-out estimate {value:.3f} ± {stderr:.3f} is negative or swamped by its error: the "
                     f"critic does not generalise to new pairs (outliers? try preprocess='copula')")
    if ceiling is not None and value > 0.8 * ceiling:
        notes.append(f"the estimate is within 20% of the bound's ceiling {ceiling:.3f}: the true MI may be much "
                     f"higher; raise batch_size (K) or use a bound without a ceiling (nwj)")
    return MIEstimate(value, stderr, trace, bound, critic, int(batches.numel()), preprocess, ceiling, tuple(notes))


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
