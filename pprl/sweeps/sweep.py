"""``pprl.sweep``: one experiment over seeds × settings, each trial a ``pprl.train`` run directory, on a
local process pool (default) or Ray Tune (the ``ray`` extra), then one table aggregated over seeds.

Resuming is by directory: a trial whose ``summary.json`` exists is skipped, one with only a
checkpoint continues from it (``train(resume=True)``), any other starts afresh; so an interrupted
sweep run again does only what is left. Ray runs on a local instance unless ``RAY_ADDRESS`` names a
cluster (Ray's own convention); every trial writes into the sweep's directory, which must then be
on storage the cluster shares.

Aggregate (``sweep.csv``, ``sweep.md``, ``sweep.png``): per setting, the interquartile mean over seeds
(the mean of the middle 50%, rliable's aggregate; Agarwal et al. 2021) of each summary measure with a
percentile-bootstrap 95% interval from resampling seeds.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..rl.experiment import load_experiment
from .grid import Trial, make_trials

__all__ = ["sweep", "iqm", "iqm_ci", "MEASURES"]

MEASURES = ("final_return", "final_success_rate", "success_rate", "first_success_step", "env_steps_per_s")


def iqm(values) -> float:
    """The interquartile mean: the mean after cutting ⌊n/4⌋ values from each end (scipy's trim_mean(·, 0.25))."""
    v = np.sort(np.asarray(values, dtype=float))
    cut = int(0.25 * len(v))
    return float(v[cut:len(v) - cut].mean())


def iqm_ci(values, reps: int = 5000, seed: int = 0) -> tuple[float, float, float]:
    """IQM and a percentile-bootstrap 95% interval over resampled seeds (a private numpy generator)."""
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    samples = np.sort(v[rng.integers(0, len(v), (reps, len(v)))], axis=1)
    cut = int(0.25 * len(v))
    boot = samples[:, cut:len(v) - cut].mean(1)
    return iqm(v), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))


def _run_trial(spec: dict, seed: int, run_dir: str, total_steps: int | None, device: str) -> dict:
    import torch

    import pprl

    torch.set_num_threads(1)
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file():
        resume = (run_dir / "checkpoint.pt").is_file()
        pprl.train(None if resume else spec, seed=seed, out_dir=run_dir, resume=resume, total_steps=total_steps,
                   device=device, progress=False)
    return json.loads((run_dir / "summary.json").read_text())


def _ray_trial(config: dict, table: list[dict]) -> None:
    """One Ray Tune trial: the table row its grid index names, run as a local trial; reports the summary."""
    from ray import tune

    row = table[config["trial"]]
    summary = _run_trial(row["spec"], row["seed"], row["run_dir"], row["total_steps"], row["device"])
    tune.report({k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})


def _run_ray(trials: list[Trial], total_steps, device, out: Path, jobs: int) -> None:
    try:
        import ray
        import ray.tune  # noqa: F401  (the extra's Tune, not only Ray core)
    except ImportError:
        raise ImportError('backend "ray" needs Ray: pip install "pprl[ray]"') from None
    started = not ray.is_initialized()
    if started and os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)  # the cluster RAY_ADDRESS names, with its own resources
    elif started:
        ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
    try:
        _tune(trials, total_steps, device, out, jobs)
    finally:
        if started:
            ray.shutdown()


def _tune(trials: list[Trial], total_steps, device, out: Path, jobs: int) -> None:
    from ray import tune

    space = {"trial": tune.grid_search(list(range(len(trials))))}
    by_index = [{"spec": t.spec, "seed": t.seed, "run_dir": str(t.run_dir.resolve()), "total_steps": total_steps,
                 "device": device} for t in trials]
    tuner = tune.Tuner(tune.with_parameters(_ray_trial, table=by_index),
                       param_space=space,
                       tune_config=tune.TuneConfig(max_concurrent_trials=jobs),
                       run_config=tune.RunConfig(storage_path=str((out / "ray").resolve()), name="sweep",
                                                 verbose=0))
    results = tuner.fit()
    errors = [r.error for r in results if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} Ray trial(s) failed; first: {errors[0]}")


def sweep(experiment, seeds: list[int], settings: list[tuple[str, list]] = (), out_dir="runs/sweep", *,
          backend: str = "local", jobs: int = 2, total_steps: int | None = None, device: str = "cpu") -> pd.DataFrame:
    """Run every trial not yet finished, then aggregate; returns the per-trial table (one row per run)."""
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown sweep backend {backend!r}; allowed: local, ray")
    base = load_experiment(experiment).to_dict()
    out = Path(out_dir)
    trials = make_trials(base, list(seeds), list(settings), out)  # every override validated before any run
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(yaml.safe_dump({"experiment": base, "seeds": list(seeds),
                                                    "settings": [[p, v] for p, v in settings]}, sort_keys=False))
    todo = [t for t in trials if not (t.run_dir / "summary.json").is_file()]
    if todo and backend == "local":
        # spawn, not fork: a parent that imported JAX (pprl.nuts) or holds torch threads must not be forked
        with ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_run_trial, [t.spec for t in todo], [t.seed for t in todo], [str(t.run_dir) for t in todo],
                          [total_steps] * len(todo), [device] * len(todo)))
    elif todo:
        _run_ray(todo, total_steps, device, out, jobs)
    rows = []
    for t in trials:
        summary = json.loads((t.run_dir / "summary.json").read_text())
        rows.append({"setting": t.setting or "default", "seed": t.seed, "run_dir": str(t.run_dir),
                     **{m: summary.get(m) for m in MEASURES}})
    table = pd.DataFrame(rows)
    table.to_csv(out / "trials.csv", index=False)
    _aggregate(table, out)
    return table


def _aggregate(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    rows = []
    for setting, group in table.groupby("setting", sort=False):
        row = {"setting": setting, "seeds": len(group)}
        for m in MEASURES:
            values = pd.to_numeric(group[m], errors="coerce").dropna()
            if len(values):
                row[m], row[f"{m}_lo"], row[f"{m}_hi"] = iqm_ci(values)
                row[f"{m}_n"] = len(values)
        rows.append(row)
    agg = pd.DataFrame(rows)
    agg.to_csv(out / "sweep.csv", index=False)
    lines = ["| setting | seeds | final return | final success rate | first success step (of seeds that succeeded) |",
             "|---|---|---|---|---|"]
    for r in rows:
        cell = lambda m: (f"{r[m]:.3g} [{r[m + '_lo']:.3g}, {r[m + '_hi']:.3g}]" if m in r else "—")
        first = cell("first_success_step") + (f" ({r['first_success_step_n']}/{r['seeds']})"
                                              if "first_success_step" in r else "")
        lines.append(f"| {r['setting']} | {r['seeds']} | {cell('final_return')} | {cell('final_success_rate')} | {first} |")
    (out / "sweep.md").write_text("IQM over seeds [95% bootstrap CI]\n\n" + "\n".join(lines) + "\n")
    _plot(agg, out / "sweep.png")
    return agg


def _plot(agg: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.0, 1.2 * len(agg) + 2), 3.6))
    ax = fig.subplots()
    if "final_return" not in agg:  # no trial finished an episode
        ax.text(0.5, 0.5, "no episode finished in any trial", ha="center", transform=ax.transAxes)
        fig.savefig(path, dpi=100)
        return
    x = np.arange(len(agg))
    y = agg["final_return"].to_numpy(dtype=float)
    err = np.stack([y - agg["final_return_lo"].to_numpy(dtype=float), agg["final_return_hi"].to_numpy(dtype=float) - y])
    ax.bar(x, y, yerr=err, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(x, agg["setting"], rotation=20, ha="right", fontsize=8)
    ax.set(ylabel="final return (IQM over seeds, 95% CI)", title="sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
