"""Compare variational families on one model: ELBO, held-out log predictive, wall time.

One call, one table (a pandas DataFrame), one figure (ELBO curves and held-out log
predictive per family).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from ..data import Transitions
from ..inference.posterior import Posterior
from ..inference.svi import fit
from ..models.dynamics import DynamicsModel, build_model
from ..spec import ModelSpec, as_inference_spec, as_model_spec
from ..threads import uses_threads


def _tail_mean(trace: torch.Tensor, fraction: float = 0.1) -> float:
    k = max(1, int(len(trace) * fraction))
    return float(trace[-k:].mean()) if len(trace) else float("nan")


@uses_threads
def compare(model: ModelSpec | str | Path | DynamicsModel, families, data: Transitions,
            test_data: Transitions, *, steps: int | None = None, seed: int = 0, device="cpu",
            num_samples: int = 200, progress: bool = True, return_posteriors: bool = False):
    """Fit each family in ``families`` (names, YAML paths or specs) on ``data`` and score it on
    ``test_data``. Returns a DataFrame with one row per family:

    ``family, elbo`` (mean of the last 10% of the trace, nats, original units — for ``map`` and
    ``laplace`` the log joint at the MAP), ``train_log_pred`` and ``test_log_pred`` (mean log
    posterior predictive per transition, nats), ``prior_log_pred``, ``wall_time_s``, ``steps``,
    ``num_params`` (the free parameters of q, :meth:`Family.num_params`). With
    ``return_posteriors=True`` also the dict of fitted posteriors.
    """
    mspec = model.spec if isinstance(model, DynamicsModel) else as_model_spec(model)
    rows, posteriors = [], {}
    specs = [as_inference_spec(f) for f in families]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"family names must be unique, got {names}")
    for spec in specs:
        m = build_model(mspec, data.obs_dim, data.act_dim)
        post: Posterior = fit(m, spec, data, steps=steps, seed=seed, device=device, progress=progress)
        posteriors[spec.name] = post
        rows.append({"family": spec.name, "elbo": _tail_mean(post.elbo_trace),
                     "train_log_pred": post.log_predictive(data, num_samples),
                     "test_log_pred": post.log_predictive(test_data, num_samples),
                     "prior_log_pred": post.prior_log_predictive(test_data, num_samples),
                     "wall_time_s": post.info["wall_time_s"], "steps": post.info["steps"],
                     "num_params": post.q.num_params()})
    table = pd.DataFrame(rows).set_index("family")
    return (table, posteriors) if return_posteriors else table


def plot_comparison(table: pd.DataFrame, posteriors: dict[str, Posterior], path: str | Path) -> Path:
    """Two panels. Left: the training objective per family (rolling median, zoomed on the
    converged part): the ELBO for the variational families, dashed the log joint log p(y, θ̂) for
    the point-estimate fits (``map``, and ``laplace`` before its curvature step), which is not an
    ELBO and sits above one; families whose traces coincide (laplace's MAP phase is the map fit)
    share one labelled line. Right: held-out log predictive per family (dots) with the prior
    predictive (hollow), on a linear axis."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched

    fig = Figure(figsize=(11, 4))
    ax_elbo, ax_lp = fig.subplots(1, 2)
    lows, highs, drawn = [], [], []  # drawn: (trace, line) so identical traces share a line
    for i, (name, post) in enumerate(posteriors.items()):
        trace = post.elbo_trace
        same = next((line for other, line in drawn if torch.equal(other, trace)), None)
        if same is not None:
            same.set_label(f"{same.get_label()}, {name} (same fit)")
            continue
        k = max(1, len(trace) // 50) | 1
        # rolling median: single-sample outliers of a Monte-Carlo ELBO do not smear over the window
        smooth = trace.unfold(0, k, 1).median(-1).values if len(trace) >= k else trace
        point = post.q.point_estimate
        line, = ax_elbo.plot(range(k - 1, k - 1 + len(smooth)), smooth.numpy(), color=f"C{i}",
                             linestyle="--" if point else "-", label=name + (" (log joint)" if point else ""))
        drawn.append((trace, line))
        tail = smooth[len(smooth) // 5:]
        if len(tail):
            lows.append(float(tail.quantile(0.01))), highs.append(float(tail.max()))
    if lows:  # show the converged part; the first steps are orders of magnitude lower
        pad = 0.05 * (max(highs) - min(lows) + 1.0)
        ax_elbo.set_ylim(min(lows) - pad, max(highs) + pad)
    ax_elbo.set(xlabel="SVI step", ylabel="nats (rolling median)",
                title="Training objective: ELBO (solid), log joint of a MAP fit (dashed)")
    ax_elbo.title.set_fontsize(10)
    ax_elbo.legend(fontsize=8)
    names = list(table.index)
    ax_lp.scatter(names, table["test_log_pred"], color="tab:blue", zorder=3, label="posterior predictive")
    ax_lp.scatter(names, table["prior_log_pred"], facecolors="none", edgecolors="gray",
                  label="prior predictive (same noise)")
    for name, value in zip(names, table["test_log_pred"]):
        ax_lp.annotate(f"{value:.2f}", (name, value), textcoords="offset points", xytext=(0, 6),
                       ha="center", fontsize=8)
    ax_lp.set(ylabel="held-out log predictive (nats / transition)", title="Held-out log predictive (higher is better)")
    ax_lp.title.set_fontsize(10)
    ax_lp.grid(axis="y", alpha=0.3)
    ax_lp.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
