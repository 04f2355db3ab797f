"""Shared, deterministic data for the Gaussian "staircase" MI benchmark of Poole et al. (2019).

"On Variational Bounds of Mutual Information" (ICML 2019), Sec. 5: X, Y are correlated
d = 20 dimensional Gaussians,

    y = rho * x + sqrt(1 - rho^2) * eps,      x, eps ~ N(0, I_d) independent,

so that each coordinate pair has correlation rho and

    I(X; Y) = -(d / 2) * log(1 - rho^2)  nats.

The true MI is raised in steps (2, 4, 6, 8, 10 nats) every ``steps_per_level`` training steps,
one fresh batch per step. Every batch of a run comes from ONE ``np.random.default_rng(seed)``,
in a fixed order (for each step: x first, then eps), so any consumer iterating
:func:`staircase_batches` with the same arguments sees the same arrays, whatever else it does
(e.g. pprl in the main environment and torch-mist in its own venv).

Only numpy is imported, so the module works in both environments. ``numpy.random.Generator``
streams are stable across the numpy versions in use (1.26 in the torch-mist venv, 2.x in the
main one); :func:`stream_fingerprint` gives a hash that two consumers can compare to be sure.
"""
from __future__ import annotations

import hashlib
import math
import platform
import time
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np

DIM = 20
BATCH_SIZE = 64
STEPS_PER_LEVEL = 4000
LEVELS: Tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0)


def mi_for_rho(rho: float, dim: int = DIM) -> float:
    """True I(X;Y) in nats for the correlated Gaussian pair with correlation ``rho``."""
    return -0.5 * dim * math.log1p(-rho * rho)


def rho_for_mi(mi: float, dim: int = DIM) -> float:
    """Correlation rho >= 0 such that -(dim/2) log(1 - rho^2) == mi (nats)."""
    if mi < 0:
        raise ValueError(f"mi must be >= 0, got {mi}")
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    # 1 - rho^2 = exp(-2 mi / dim)  ->  rho = sqrt(-expm1(-2 mi / dim))
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def staircase_batches(
    seed: int,
    steps_per_level: int = STEPS_PER_LEVEL,
    batch_size: int = BATCH_SIZE,
    levels: Sequence[float] = LEVELS,
    dim: int = DIM,
) -> Iterator[Tuple[int, float, np.ndarray, np.ndarray]]:
    """Yield ``(level_index, true_mi, x, y)`` for every training step, in order.

    ``len(levels) * steps_per_level`` items; ``x`` and ``y`` are float32 arrays of shape
    ``[batch_size, dim]``. The draws are made in float64 and cast, all from a single
    ``np.random.default_rng(seed)``: per step ``x = rng.standard_normal((batch_size, dim))``
    then ``eps = rng.standard_normal((batch_size, dim))``.
    """
    if steps_per_level <= 0 or batch_size <= 0:
        raise ValueError("steps_per_level and batch_size must be positive")
    rng = np.random.default_rng(seed)
    for level_index, mi in enumerate(levels):
        rho = rho_for_mi(float(mi), dim)
        noise_scale = math.sqrt(1.0 - rho * rho)
        for _ in range(steps_per_level):
            x = rng.standard_normal((batch_size, dim))
            eps = rng.standard_normal((batch_size, dim))
            y = rho * x + noise_scale * eps
            yield level_index, float(mi), x.astype(np.float32), y.astype(np.float32)


def stream_fingerprint(seed: int, n_batches: int = 3, **kwargs) -> str:
    """sha256 (hex, first 16 chars) of the first ``n_batches`` items of the stream.

    Two processes (possibly with different numpy versions) that get the same fingerprint
    see the same data.
    """
    h = hashlib.sha256()
    for i, (level, mi, x, y) in enumerate(staircase_batches(seed, **kwargs)):
        if i >= n_batches:
            break
        h.update(np.asarray([level, mi], dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(x).tobytes())
        h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()[:16]


def run_staircase(train_step: Callable[[np.ndarray, np.ndarray], Tuple[float, float]], seed: int,
                  steps_per_level: int = STEPS_PER_LEVEL) -> Dict[str, Any]:
    """One training run over the staircase, the same bookkeeping for every library.

    ``train_step(x, y) -> (estimate, timed_seconds)`` does one optimiser step on a batch and
    reports the batch estimate and the seconds it spent in the timed part (forward + backward +
    optimiser step; evaluating a separate estimate is left out). Returns the per-step record
    the runners write: ``estimates`` (non-finite values as None), ``true_mi``, mean and median
    ``sec_per_step``, ``n_nonfinite_estimates``, ``wall_sec`` (the whole loop, data included)
    and ``summary_last50_mean_by_level``.
    """
    estimates: List[Any] = []
    true_mi: List[float] = []
    levels: List[int] = []
    times: List[float] = []
    start = time.perf_counter()
    for level, mi, x, y in staircase_batches(seed, steps_per_level=steps_per_level):
        value, seconds = train_step(x, y)
        value = float(value)
        estimates.append(value if math.isfinite(value) else None)
        true_mi.append(mi)
        levels.append(level)
        times.append(seconds)
    wall = time.perf_counter() - start
    return {
        "estimates": estimates,
        "true_mi": true_mi,
        "sec_per_step": float(np.mean(times)),
        "sec_per_step_median": float(np.median(times)),
        "n_nonfinite_estimates": sum(v is None for v in estimates),
        "wall_sec": wall,
        "summary_last50_mean_by_level": last_k_means(estimates, levels, true_mi, 50),
    }


def last_k_means(estimates, levels, true_mi, k) -> List[Dict[str, Any]]:
    """Mean of the last ``k`` finite estimates of every level."""
    out = []
    for lv in sorted(set(levels)):
        idx = [i for i, l in enumerate(levels) if l == lv][-k:]
        vals = [estimates[i] for i in idx if estimates[i] is not None]
        out.append({"level": lv, "true_mi": true_mi[idx[0]],
                    "mean_estimate": float(np.mean(vals)) if vals else None, "n_finite": len(vals)})
    return out


if __name__ == "__main__":  # quick self-check: python benchmarks/staircase_data.py
    for mi in LEVELS:
        rho = rho_for_mi(mi)
        assert abs(mi_for_rho(rho) - mi) < 1e-9
        print(f"MI {mi:5.1f} nats -> rho {rho:.6f}")
    print("fingerprint(seed=0):", stream_fingerprint(0), "numpy", np.__version__)


def run_metadata(args, **library_fields) -> Dict[str, Any]:
    """The metadata both runners record (``args``: seed, steps_per_level, threads, lr), with
    each library's own fields (versions, options, timing note) merged in."""
    return {
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "threads": args.threads,
        "seed": args.seed,
        "steps_per_level": args.steps_per_level,
        "levels_nats": list(LEVELS),
        "batch_size": BATCH_SIZE,
        "dim": DIM,
        "lr": args.lr,
        "optimizer": "torch.optim.Adam",
        "data_fingerprint": stream_fingerprint(args.seed, steps_per_level=args.steps_per_level),
        **library_fields,
    }
