"""Estimating I(X; Y) from paired samples with a trained critic and a bound of
:mod:`pprl.inference.bounds`, and the result type every MI estimate in pprl shares.

``estimate_mi(x, y, bound="infonce", critic="separable")`` splits the N pairs into a training
part and a held-out part, trains the critic f by Adam on ``bound.objective`` over random
minibatches of K = ``batch_size`` pairs (the K × K score matrix of a minibatch holds its K
positives on the diagonal, its K(K − 1) mismatched pairs off it), then reports
``bound.estimate`` averaged over disjoint held-out minibatches:

    Î = (1/B) Σ_b estimate(f(x_b, y_b)),    stderr = sd_b / √B.

Held-out data keep the critic's over-fitting (a critic that memorises its training pairs
inflates every bound) out of the number. The stderr is the batch-to-batch spread only; it
does not include the bound's bias (e.g. InfoNCE ≤ log K, see the bounds' docstrings).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..models.critics import make_critic
from ..rng import seeded
from .bounds import get_bound
from ..threads import uses_threads


@dataclass(frozen=True)
class MIEstimate:
    """An MI estimate in nats: ``value`` ± ``stderr`` (held-out), the training ``trace`` (one
    estimate per step, np.ndarray) and what produced it."""

    value: float
    stderr: float
    trace: np.ndarray = field(repr=False)
    bound: str
    method: str  # the critic's name, or "barber_agakov"
    num_samples: int  # held-out pairs (critic bounds) or Monte-Carlo samples (Barber–Agakov)

    def __str__(self) -> str:
        return f"{self.value:.4f} ± {self.stderr:.4f} nats ({self.bound}, {self.method}, n={self.num_samples})"

    def to_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "bound": self.bound, "method": self.method,
                "num_samples": self.num_samples, "trace": [float(v) for v in self.trace]}


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


@uses_threads
def estimate_mi(x, y, bound: str = "infonce", critic: str = "separable", *, steps: int = 2000,
                batch_size: int = 128, lr: float = 5e-4, heldout: float = 0.2, seed: int = 0,
                device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                bound_options: dict | None = None, critic_options: dict | None = None,
                progress: bool = True) -> MIEstimate:
    """Train a critic on ``bound`` and estimate I(X; Y) in nats on held-out pairs (module docstring).

    ``x [N, dx]`` and ``y [N, dy]`` (or ``[N]``; numpy or torch) are paired samples of p(x, y).
    ``batch_size`` is K, the number of pairs per score matrix (InfoNCE cannot exceed log K).
    ``dtype`` defaults to float64 for float64 inputs, float32 otherwise.
    """
    if not 0 < heldout < 1:
        raise ValueError(f"heldout must be in (0, 1), got {heldout}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (a score matrix needs off-diagonal pairs), got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if dtype is None:
        is64 = any(getattr(v, "dtype", None) in (np.float64, torch.float64) for v in (x, y))
        dtype = torch.float64 if is64 else torch.float32
    x, y = _as_matrix(x, "x", device, dtype), _as_matrix(y, "y", device, dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same number of pairs, got {x.shape[0]} and {y.shape[0]}")
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
    return MIEstimate(float(values.mean()), stderr, trace.cpu().numpy(), bound, critic, int(batches.numel()))


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
