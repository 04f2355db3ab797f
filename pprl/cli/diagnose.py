"""``pprl diagnose RUN_DIR``: ArviZ diagnostics of every posterior a ``fit``/``compare``/``nuts`` run saved."""
from __future__ import annotations

from pathlib import Path

from .common import CLIError, add_parser as _add_parser


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "diagnose", help="ArviZ diagnostics of a saved run's posteriors",
                    description="Read every <name>.nc (ArviZ InferenceData) in RUN_DIR and print, per posterior: "
                                "R-hat and bulk ESS of the predictive means f(x; θ) (worst over held-out "
                                "transitions), the held-out log predictive density, and az.summary of the "
                                "weights when there are at most --max-weights of them; writes diagnose_<name>.png "
                                "(posterior predictive check against the observed next states).")
    p.add_argument("run_dir", help="a directory written by pprl fit, compare or nuts")
    p.add_argument("--max-weights", type=int, default=30, help="print az.summary of θ when D is at most this")
    p.set_defaults(func=run)


def run(args) -> int:
    import warnings

    import arviz as az
    import numpy as np
    from matplotlib.figure import Figure
    from scipy.special import logsumexp

    files = sorted(Path(args.run_dir).glob("*.nc"))
    if not Path(args.run_dir).is_dir():
        raise CLIError(f"{args.run_dir}: no such run directory")
    if not files:
        raise CLIError(f"{args.run_dir}: no .nc posterior files (written by pprl fit, compare or nuts)")
    for path in files:
        name = path.stem
        try:
            idata = az.from_netcdf(path)
        except (OSError, ValueError) as exc:
            raise CLIError(f"{path}: not ArviZ InferenceData ({str(exc).splitlines()[0][:100]})") from None
        family = idata.posterior.attrs.get("family", "?")
        chains, draws = idata.posterior.sizes["chain"], idata.posterior.sizes["draw"]
        print(f"== {name} (family {family}, {chains} chain(s) × {draws} draws)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if "posterior_predictive" in idata.groups() and "f" in idata.posterior_predictive:
                pp = az.summary(idata, group="posterior_predictive", var_names=["f"], kind="diagnostics",
                                round_to="none")
                rhat = pp["r_hat"].max() if chains > 1 else float("nan")
                print(f"   predictive means f(x; θ): worst R-hat {rhat:.3f}, lowest bulk ESS {pp['ess_bulk'].min():.0f}"
                      + ("" if chains > 1 else " (one chain of independent draws: R-hat does not apply)"))
            if "log_likelihood" in idata.groups():  # held-out points: the predictive density itself, not LOO
                ll = idata.log_likelihood.next_obs.values.reshape(-1, idata.log_likelihood.sizes["transition"])
                lpd = logsumexp(ll, axis=0) - np.log(ll.shape[0])
                print(f"   held-out log predictive {lpd.mean():.3f} ± {lpd.std(ddof=1) / np.sqrt(lpd.size):.3f} "
                      f"nats per transition ({lpd.size} transitions)")
            if idata.posterior.sizes["weight"] <= args.max_weights:
                print(az.summary(idata, var_names=["theta"], round_to=3).to_string())
        if "posterior_predictive" in idata.groups() and "observed_data" in idata.groups():
            fig = Figure(figsize=(4 * idata.observed_data.sizes["obs_dim"], 3.2))
            axes = fig.subplots(1, idata.observed_data.sizes["obs_dim"], squeeze=False)[0]
            _ppc(idata, axes)
            fig.suptitle(f"{name}: posterior predictive check (held-out s')", fontsize=10)
            fig.tight_layout()
            fig.savefig(Path(args.run_dir) / f"diagnose_{name}.png", dpi=100)
    print(f"wrote diagnose_<name>.png in {args.run_dir}")
    return 0


def _ppc(idata, axes) -> None:
    """Per coordinate of s': histograms of the observed values and of the pooled predictive draws."""
    import numpy as np

    obs = idata.observed_data.next_obs.values  # [transition, obs_dim]
    pred = idata.posterior_predictive.next_obs.values.reshape(-1, *obs.shape)  # [draws, transition, obs_dim]
    for j, ax in enumerate(axes):
        bins = np.histogram_bin_edges(np.concatenate([obs[:, j], pred[:200, :, j].ravel()]), bins=30)
        ax.hist(pred[:, :, j].ravel(), bins=bins, density=True, alpha=0.5, label="predictive")
        ax.hist(obs[:, j], bins=bins, density=True, histtype="step", color="black", label="observed")
        ax.set(xlabel=f"s'[{j}]")
    axes[0].legend(fontsize=8)
