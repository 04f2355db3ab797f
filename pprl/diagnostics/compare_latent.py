"""Compare the amortised guides of one latent model: each guide structure (``per_step``,
``filtering``, ``smoothing``) fitted to the same data, scored on held-out episodes, and, given
``nuts`` (the sampler's settings), against a NUTS reference of its own states
(:mod:`pprl.inference.mcmc.latent_nuts`).

A guide is part of the latent spec (``guide:``), so the comparison is over copies of the spec that
differ only there; the inference spec (its family must take local latents: ``mean_field`` or ``flow``) is
shared. Held-out ELBO, reconstruction and K-step errors come from
:func:`~pprl.inference.latent_fit.latent_metrics`. A looser guide lowers the ELBO in two ways the
NUTS columns separate: by fitting φ worse, and by sitting further from p(z | o, a; φ) at its own φ.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..data import Transitions
from ..data.sequences import Sequences, to_sequences
from ..models.latent_spec import GUIDES, LatentSpec
from ..spec import as_model_spec

NUTS_COLUMNS = ("mean_error_sd", "mean_error_sd_max", "sd_ratio", "w2", "r_hat_max", "ess_bulk_min",
                "num_divergences", "nuts_s")


def compare_guides(model, guides, train: Transitions | Sequences, test: Transitions | Sequences, *,
                   inference="mean_field", steps: int | None = None, seed: int = 0, device="cpu",
                   nuts: dict | None = None, num_sequences: int = 8, progress: bool = True,
                   out_dir: str | Path | None = None, return_posteriors: bool = False):
    """Fit ``model`` (a latent spec) once per guide in ``guides`` and return one row per guide:
    ``elbo`` (mean of the last 10% of the training trace, nats per observed step),
    ``held_out_elbo``, ``reconstruction_mse``, ``prediction_mse_1`` and ``prediction_mse_K`` on
    ``test`` (K steps open loop: 10, or the length of given Sequences), ``wall_time_s``. ``nuts``:
    the sampler's settings (``num_samples``, ``num_warmup``, ``num_chains``, ``max_tree_depth``,
    ``target_accept``: a nuts inference spec's ``options``), which add the guide's gap to a NUTS
    reference on the first ``num_sequences`` held-out windows (``NUTS_COLUMNS``) and, with
    ``out_dir``, one ``local_posterior_<guide>.png`` per guide."""
    import pprl
    from ..inference.latent_fit import latent_metrics
    from ..inference.mcmc.latent_nuts import latent_nuts, local_posterior_gap, plot_local_posterior

    base = as_model_spec(model)
    if not isinstance(base, LatentSpec):
        raise ValueError(f"{base.source}: compare_guides needs a latent model (type: latent), got {base.type!r}")
    guides = list(guides)
    bad = [g for g in guides if g not in GUIDES]
    if not guides or bad or len(set(guides)) != len(guides):
        raise ValueError(f"guides must be distinct names from {', '.join(GUIDES)}, got {guides}")
    rows, posteriors = [], {}
    for guide in guides:
        spec = {**base.to_dict(), "guide": guide}
        post = pprl.fit(spec, inference, train, steps=steps, seed=seed, device=device, progress=progress)
        posteriors[guide] = post
        trace = post.elbo_trace
        metrics = latent_metrics(post, test, seed=seed)
        row = {"guide": guide, "elbo": float(trace[-max(1, len(trace) // 10):].mean()),
               "held_out_elbo": metrics["elbo_per_step"], "reconstruction_mse": metrics["reconstruction_mse"],
               "prediction_mse_1": metrics["prediction_mse"][0], "prediction_mse_K": metrics["prediction_mse"][-1],
               "wall_time_s": post.info["wall_time_s"]}
        if nuts is not None:
            seqs = (test if isinstance(test, Sequences)
                    else to_sequences(test, base.sequence_length, hop=base.sequence_length))[:num_sequences]
            if len(seqs) == 0:
                raise ValueError(f"no held-out window of {base.sequence_length} transitions for the NUTS reference")
            draws = latent_nuts(post, seqs, **nuts, seed=seed, progress=progress)
            row.update(draws.diagnostics(), **local_posterior_gap(post, seqs, draws, seed=seed),
                       nuts_s=draws.info["wall_time_s"])
            if out_dir is not None:
                Path(out_dir).mkdir(parents=True, exist_ok=True)
                plot_local_posterior(post, seqs, draws, Path(out_dir) / f"local_posterior_{guide}.png", seed=seed)
        rows.append(row)
    table = pd.DataFrame(rows).set_index("guide")
    return (table, posteriors) if return_posteriors else table


def plot_guides(table: pd.DataFrame, path: str | Path) -> Path:
    """Held-out ELBO per guide and, when the table has them, the guide's mean error against NUTS
    (posterior sds) and its sd ratio."""
    from matplotlib.figure import Figure

    nuts = "mean_error_sd" in table
    fig = Figure(figsize=(4.2 * (3 if nuts else 1), 3.4))
    axes = fig.subplots(1, 3 if nuts else 1, squeeze=False)[0]
    names = list(table.index)
    panels = [("held_out_elbo", "held-out ELBO (nats / step)")]
    if nuts:
        panels += [("mean_error_sd", "guide mean error vs NUTS (sd)"), ("sd_ratio", "guide sd / NUTS sd")]
    for ax, (col, label) in zip(axes, panels):
        ax.bar(names, table[col], color=[f"C{i}" for i in range(len(names))])
        ax.set(title=label)
        if col == "sd_ratio":
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)
