"""A family report: every variational family (and optionally NUTS) on one model, with the checks a
Bayesian would run — one table, a handful of figures, ``report.md`` and one NetCDF per family.

Columns of the table (one row per family): ``elbo`` and the log predictives of :func:`compare`;
``elpd_loo`` ± ``elpd_loo_se`` (PSIS-LOO on the training data, ``az.loo``); ``pareto_k`` (PSIS k̂
of q against p(θ | D), :func:`~pprl.diagnostics.inference_data.pareto_k`; empty where q has no
density); ``coverage_50`` / ``coverage_90`` of the held-out central predictive intervals;
``w2_to_nuts`` (where NUTS ran): the mean over held-out transitions and coordinates of the
2-Wasserstein distance between Gaussian fits of the family's and NUTS' samples of the predictive
mean f(x; θ) (the observation noise, shared by all, left out), √((m − m_nuts)² + (s − s_nuts)²),
in the units of s'; ``wall_time_s``. LOO is left empty for point estimates (map): leaving one
transition out cannot move a point mass, so its "LOO" would be the in-sample fit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data import Transitions
from ..threads import uses_threads
from .compare import compare, plot_comparison
from .inference_data import has_spread, interval_coverage, pareto_k

LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)


def _w2_gaussian(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over points and coordinates of W2 between Gaussian fits of samples ``[S, N, k]``."""
    return float(((a.mean(0) - b.mean(0)).square() + (a.std(0) - b.std(0)).square()).sqrt().mean())


@uses_threads
def family_report(model, families, data: Transitions, test_data: Transitions, *, nuts=None, steps: int | None = None,
                  seed: int = 0, device="cpu", num_samples: int = 500, out_dir: str | Path | None = None,
                  progress: bool = True) -> pd.DataFrame:
    """Fit ``families`` (and ``nuts``: an inference spec or name of an MCMC family, e.g. ``"nuts"``)
    on ``data``, score them on ``test_data`` and return the table (module docstring). With
    ``out_dir``: ``report.md``, ``report.csv``, ``comparison.png`` (objectives and held-out log
    predictive), ``loo_compare.png`` (``az.plot_compare``), ``calibration.png`` (coverage of the
    central predictive intervals at 10–90% against the nominal level), ``intervals.png`` (90%
    predictive intervals and the truth on held-out transitions) and ``<family>.nc``."""
    import arviz as az

    specs = list(families) + ([nuts] if nuts is not None else [])
    table, posteriors = compare(model, specs, data, test_data, steps=steps, seed=seed, device=device,
                                num_samples=num_samples, progress=progress, return_posteriors=True)
    idatas, rows = {}, {}
    nuts_name = next((name for name, post in posteriors.items() if not post.q.fitted_by_svi), None)
    preds = {name: post.predict(test_data.obs, test_data.act, num_samples=num_samples, seed=seed + 1)
             for name, post in posteriors.items()}
    means = {name: post.predict(test_data.obs, test_data.act, num_samples=num_samples, noise=False, seed=seed + 1)
             for name, post in posteriors.items()}  # f(x; θ): the part the families differ in
    for name, post in posteriors.items():
        idata = post.to_inference_data(data, num_samples=num_samples, seed=seed)
        idatas[name] = idata
        if has_spread(idata):
            loo = az.loo(idata, pointwise=False)
            row = {"elpd_loo": float(loo["elpd_loo"]), "elpd_loo_se": float(loo["se"])}
        else:  # a point estimate: "leaving one out" cannot move it, LOO would be the in-sample fit
            row = {"elpd_loo": float("nan"), "elpd_loo_se": float("nan")}
        row["pareto_k"] = pareto_k(post, data, num_samples=num_samples, seed=seed) if post.q.has_density else float("nan")
        cov = interval_coverage(preds[name], test_data.next_obs.to(preds[name].device), LEVELS)
        row.update({"coverage_50": cov[0.5], "coverage_90": cov[0.9], "_coverage": cov})
        if nuts_name is not None:
            row["w2_to_nuts"] = _w2_gaussian(means[name], means[nuts_name])
        rows[name] = row
    extra = pd.DataFrame({n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in rows.items()}).T
    table = table.join(extra)
    if out_dir is not None:
        _write_report(Path(out_dir), table, posteriors, idatas, rows, preds, test_data, nuts_name)
    return table


def _markdown(table: pd.DataFrame) -> str:
    """A pipe table of ``table`` (numbers to 3 significant digits; empty where NaN)."""
    cell = lambda v: "" if isinstance(v, float) and np.isnan(v) else (f"{v:.3g}" if isinstance(v, float) else str(v))
    head = "| family | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    body = ["| " + " | ".join([str(name)] + [cell(v) for v in row]) + " |" for name, row in table.iterrows()]
    return "\n".join([head, rule, *body])


def _write_report(out: Path, table, posteriors, idatas, rows, preds, test_data, nuts_name) -> None:
    import arviz as az
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    for name, post in posteriors.items():
        post.to_inference_data(test_data, num_samples=200).to_netcdf(out / f"{name}.nc")
    table.to_csv(out / "report.csv")
    plot_comparison(table, posteriors, out / "comparison.png")

    fig = Figure(figsize=(7, 0.6 * len(idatas) + 1.5))  # LOO: the posteriors with spread
    ax = fig.subplots()
    spread = {n: d for n, d in idatas.items() if has_spread(d)}
    az.plot_compare(az.compare(spread), ax=ax, insample_dev=False)
    ax.set_title("PSIS-LOO on the training data (higher is better)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "loo_compare.png", dpi=110)

    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="calibrated")
    for i, (name, row) in enumerate(rows.items()):
        levels = sorted(row["_coverage"])
        ax.plot(levels, [row["_coverage"][l] for l in levels], marker="o", color=f"C{i}", label=name)
    ax.set(xlabel="nominal level of the central predictive interval", ylabel="held-out coverage",
           title="Calibration", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)

    n = min(40, len(test_data))
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    truth = test_data.next_obs[:n, 0].cpu().numpy()
    width = 0.8 / len(preds)
    for i, (name, pred) in enumerate(preds.items()):
        lo, hi = np.quantile(pred[:, :n, 0].cpu().numpy(), [0.05, 0.95], axis=0)
        xs = np.arange(n) - 0.4 + (i + 0.5) * width
        ax.vlines(xs, lo, hi, color=f"C{i}", linewidth=2, label=name)
    ax.scatter(np.arange(n), truth, color="black", s=10, zorder=3, label="observed s'")
    ax.set(xlabel="held-out transition", ylabel="s'[0]", title="90% predictive intervals and the truth")
    ax.legend(fontsize=8, ncol=len(preds) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    fig.tight_layout()
    fig.savefig(out / "intervals.png", dpi=110)

    cols = [c for c in ["elbo", "test_log_pred", "elpd_loo", "elpd_loo_se", "pareto_k", "coverage_50", "coverage_90",
                        "w2_to_nuts", "wall_time_s"] if c in table]
    lines = ["# Family report", "",
             f"Model `{next(iter(posteriors.values())).model.spec.name}`, {len(table)} posteriors"
             + (f", reference: `{nuts_name}`" if nuts_name else "") + ".", "",
             _markdown(table[cols]), "",
             "- `elbo`: training objective (a log joint for MAP fits); `test_log_pred`: held-out log predictive "
             "per transition (nats, higher is better).",
             "- `elpd_loo` ± se: PSIS-LOO expected log predictive density on the training data (`az.loo`).",
             "- `pareto_k`: PSIS k̂ of q as a proposal for the exact posterior (< 0.5 good, 0.5–0.7 usable, "
             "> 0.7 q misses posterior mass; Yao et al. 2018).",
             "- `coverage_50/90`: held-out share inside the central 50%/90% predictive intervals (calibrated: "
             "0.5/0.9).",
             "- `w2_to_nuts`: predictive distance to the NUTS reference (units of s').", "",
             "![objectives](comparison.png)", "![LOO](loo_compare.png)", "![calibration](calibration.png)",
             "![intervals](intervals.png)", "",
             "Each `<family>.nc` is ArviZ InferenceData on the held-out transitions (`az.from_netcdf`)."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
