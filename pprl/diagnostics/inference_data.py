"""ArviZ ``InferenceData`` for any pprl posterior — SVI families and NUTS alike — and the Bayesian
checks built on it: PSIS k̂ of a variational family, predictive-interval coverage, LOO.

Groups written by :func:`to_inference_data` (dims in brackets):

- ``posterior``: ``theta`` [chain, draw, weight], the weights labelled ``layer{l}.w[i,o]`` /
  ``layer{l}.b[o]`` (SVI families: one chain of independent draws from q; NUTS: its chains);
- ``log_likelihood``: ``next_obs`` [chain, draw, transition], log p(s'_n | s_n, a_n, θ) in nats of
  the original units (the pointwise values ``az.loo`` and ``az.compare`` read);
- ``posterior_predictive``: ``next_obs`` [chain, draw, transition, obs_dim], one s' per draw, and
  ``f``, the predictive mean f(x; θ) in the units of s' (without the observation noise: the
  quantity to check convergence on);
- ``observed_data``: ``next_obs`` [transition, obs_dim]; ``constant_data``: ``obs``, ``act``;
- ``sample_stats``: ``log_q`` [chain, draw] where q has a density, and NUTS' ``diverging``,
  ``tree_depth``, ``n_steps``, ``energy``, ``acceptance_rate``;
- ``elbo_trace``: ``elbo`` [svi_step], the objective of an SVI fit (its own group: it has no draws).

ArviZ is pinned to its 0.x line (``arviz<1``): 1.x replaced ``InferenceData`` with a different
data structure.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..data import Transitions
from ..rng import seeded

NUTS_STATS = {"diverging": "diverging", "tree_depth": "tree_depth", "num_steps": "n_steps",
              "energy": "energy", "accept_prob": "acceptance_rate"}


def weight_labels(model) -> list[str]:
    """One name per coordinate of θ: ``layer{l}.w[i,o]`` and ``layer{l}.b[o]`` in θ's order."""
    labels = [""] * model.param_dim
    for l, layer in enumerate(model.layers):
        for k in range(layer.fan_in * layer.fan_out):
            labels[layer.weight.start + k] = f"layer{l}.w[{k // layer.fan_out},{k % layer.fan_out}]"
        for o in range(layer.fan_out):
            labels[layer.bias.start + o] = f"layer{l}.b[{o}]"
    return labels


def _draws(posterior, num_samples: int, seed: int) -> torch.Tensor:
    """θ as ``[chain, draw, D]`` (:meth:`Family.chains`: MCMC keeps its chains, an SVI family gives
    one chain of independent draws), seeded."""
    gen = torch.Generator(device=posterior.device).manual_seed(seed)
    return posterior.q.chains(num_samples, gen).detach()


@torch.no_grad()
def pointwise_log_likelihood(posterior, theta: torch.Tensor, data: Transitions, chunk: int = 256,
                             mean_fn=None) -> torch.Tensor:
    """log p(s'_n | s_n, a_n, θ_s) for ``theta [S, D]`` → ``[S, N]`` nats of the original units, with
    the posterior's predictive mean (``mean_fn`` overrides it, e.g. ``model.mean``)."""
    model, data = posterior.model, data.to(posterior.device)
    mean_fn = mean_fn or posterior.predictive_mean
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    out = [model.log_likelihood(mean_fn(theta[i:i + chunk], x), y) for i in range(0, theta.shape[0], chunk)]
    return torch.cat(out) + model.target_norm.log_abs_det()


def to_inference_data(posterior, test_data: Transitions | None = None, num_samples: int = 1000, seed: int = 0):
    """The posterior as ``arviz.InferenceData`` (module docstring); with ``test_data`` the
    log-likelihood, predictive and observed groups are on those transitions."""
    import arviz as az

    theta = _draws(posterior, num_samples, seed)  # [C, S, D]
    C, S, D = theta.shape
    coords = {"weight": weight_labels(posterior.model)}
    dims = {"theta": ["weight"]}
    groups = {"posterior": {"theta": theta.cpu().double().numpy()}}
    stats = {NUTS_STATS.get(k, k): v.cpu().numpy() for k, v in posterior.q.sampler_stats().items()}
    if posterior.q.has_density:
        with torch.no_grad():
            stats["log_q"] = posterior.q.log_q(theta.reshape(C * S, D)).reshape(C, S).cpu().double().numpy()
    groups["sample_stats"] = stats
    if test_data is not None:
        data = test_data.to(posterior.device)
        flat = theta.reshape(C * S, D)
        loglik = pointwise_log_likelihood(posterior, flat, data)
        with torch.no_grad(), seeded(seed + 1):
            f = posterior.predictive_mean(flat, posterior.model.inputs(data.obs, data.act))
            pred = posterior.model.to_next_obs(data.obs, posterior.model.likelihood(f).sample())
        mean = posterior.model.to_next_obs(data.obs, f)
        groups["posterior_predictive"] = {"next_obs": pred.reshape(C, S, *pred.shape[1:]).cpu().double().numpy(),
                                          "f": mean.reshape(C, S, *mean.shape[1:]).cpu().double().numpy()}
        groups["observed_data"] = {"next_obs": data.next_obs.cpu().double().numpy()}
        groups["constant_data"] = {"obs": data.obs.cpu().double().numpy(), "act": data.act.cpu().double().numpy()}
        dims.update({"next_obs": ["transition", "obs_dim"], "f": ["transition", "obs_dim"], "obs": ["transition", "obs_dim"],
                     "act": ["transition", "act_dim"]})
    idata = az.from_dict(**groups, coords=coords, dims=dims,
                         attrs={"family": posterior.family, "model": posterior.model.spec.name,
                                "inference_library": "pprl"})
    if test_data is not None:  # one value per transition (its coordinates jointly): its own dims
        idata.add_groups({"log_likelihood": {"next_obs": loglik.reshape(C, S, -1).cpu().double().numpy()}},
                         dims={"next_obs": ["transition"]})
    if len(posterior.elbo_trace):
        import warnings
        with warnings.catch_warnings():  # a group outside ArviZ's schema: it says so, once per call
            warnings.simplefilter("ignore", UserWarning)
            trace = posterior.elbo_trace.detach().cpu().double().numpy()
            idata.add_groups({"elbo_trace": {"elbo": trace[None, None]}}, dims={"elbo": ["svi_step"]})
    return idata


def pareto_k(posterior, data: Transitions, num_samples: int = 1000, seed: int = 0) -> float:
    """PSIS k̂ of q as an importance proposal for p(θ | D) (Yao et al. 2018, "Yes, but did it work?"):
    log w_s = log p(θ_s, D) − log q(θ_s), θ_s ~ q, smoothed by a generalised Pareto fit to the
    largest weights. k̂ < 0.5: q is close, importance sampling converges fast; 0.5–0.7: usable;
    > 0.7: q misses mass the posterior has. Needs a family with a density (not ``map``, ``nuts``)."""
    return _psis(posterior, data, num_samples, seed)[2]


def importance_weighted_log_predictive(posterior, data: Transitions, test_data: Transitions, num_samples: int = 1000,
                                       seed: int = 0) -> float:
    """Mean log predictive density of ``test_data`` under p(θ | data), estimated with q as a PSIS
    importance proposal: log Σ_s w̃_s p(s'_n | s_n, a_n, θ_s) with w̃ the smoothed, normalised weights
    of :func:`pareto_k`. Corrects q's predictive toward the exact posterior's where k̂ is small."""
    theta, lw, _ = _psis(posterior, data, num_samples, seed)
    # the weights target p(θ | D) of the model itself, so score with it (not Laplace's linearisation)
    loglik = pointwise_log_likelihood(posterior, theta, test_data, mean_fn=posterior.model.mean)  # [S, N]
    lw = torch.as_tensor(lw, dtype=loglik.dtype, device=loglik.device)
    return float(torch.logsumexp(lw[:, None] + loglik, 0).mean())


def _psis(posterior, data: Transitions, num_samples: int, seed: int):
    """θ_s ~ q, the PSIS-smoothed normalised log weights against p(θ, data), and k̂."""
    import arviz as az

    model = posterior.model
    if not posterior.q.has_density:
        raise ValueError(f"PSIS needs log q(θ); the {posterior.family!r} family has no density")
    theta = posterior.sample_theta(num_samples, seed=seed).detach()
    with torch.no_grad():
        log_q = posterior.q.log_q(theta)
        # log p(θ, D) up to a constant (the normalisation Jacobian cancels in the weights)
        log_joint = model.prior().log_prob(theta) + pointwise_log_likelihood(posterior, theta, data,
                                                                            mean_fn=model.mean).sum(-1)
    log_w = (log_joint - log_q).double().cpu().numpy()
    lw, k = az.psislw(log_w - log_w.max())  # normalised: logsumexp(lw) = 0
    return theta, lw, float(k)


@torch.no_grad()
def coverage(posterior, data: Transitions, levels=(0.5, 0.9), num_samples: int = 1000, seed: int = 0) -> dict[float, float]:
    """The fraction of held-out next-observation coordinates inside the central ``level``
    predictive interval (quantiles of ``num_samples`` predictive draws): a calibrated posterior
    covers ``level`` of them."""
    data = data.to(posterior.device)
    pred = posterior.predict(data.obs, data.act, num_samples=num_samples, seed=seed)  # [S, N, k]
    return interval_coverage(pred, data.next_obs, levels)


def interval_coverage(pred: torch.Tensor, observed: torch.Tensor, levels=(0.5, 0.9)) -> dict[float, float]:
    """The share of ``observed [N, k]`` inside the central ``level`` intervals of predictive draws
    ``pred [S, N, k]``, per level."""
    out = {}
    for level in levels:
        q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=pred.dtype, device=pred.device)
        lo, hi = torch.quantile(pred, q, dim=0)
        out[level] = float(((observed >= lo) & (observed <= hi)).double().mean())
    return out


def has_spread(idata) -> bool:
    """Whether the draws of θ in ``idata`` vary (False for a point estimate such as MAP)."""
    return float(idata.posterior.theta.std(dim=("chain", "draw")).max()) > 0


@torch.no_grad()
def predictive_summary(posterior, data: Transitions, max_points: int = 50):
    """``az.summary`` (mean, sd, R-hat, bulk/tail ESS, MCSE) of the predictive means f(x_n; θ) at the
    first ``max_points`` transitions of ``data``, over the posterior's chains. For a BNN these are
    the quantities to diagnose: its weight space is symmetric (hidden units permute, signs flip),
    so the R-hat of a weight says nothing about convergence of the function."""
    import arviz as az

    theta = _draws(posterior, 1000, 0)  # [C, S, D]
    C, S, D = theta.shape
    data = data[:max_points].to(posterior.device)
    f = posterior.predictive_mean(theta.reshape(C * S, D), posterior.model.inputs(data.obs, data.act))
    f = posterior.model.target_norm.inverse(f).reshape(C, S, *f.shape[1:])
    idata = az.from_dict(posterior={"f": f.cpu().double().numpy()}, dims={"f": ["transition", "obs_dim"]})
    return az.summary(idata, round_to="none")
