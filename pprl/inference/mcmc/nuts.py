"""NUTS reference posteriors with NumPyro (Hoffman & Gelman 2014) for pprl's declared dynamics models.

The torch model's normalisation is fitted on the data; the NumPyro twin
(:func:`~pprl.inference.mcmc.numpyro_model.numpyro_model`) has the same prior, likelihood and θ
layout, so the draws are a :class:`~pprl.inference.posterior.Posterior` of family ``nuts`` that
predicts and scores like an SVI posterior. Chains run vectorised in one process by default
(``chain_method="vectorized"``); ``"parallel"`` needs as many JAX devices as chains, which on a CPU
means setting ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX starts — pprl does
not change that setting for you.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ...data import Transitions
from ...models.dynamics import DynamicsModel, build_model
from ...spec import InferenceSpec, ModelSpec, as_inference_spec
from ...rng import numpy_and_random_restored
from ...threads import uses_threads
from ..families import family_class, make_family
from ..posterior import Posterior
from .numpyro_model import numpyro_model

CHAIN_METHODS = ("vectorized", "parallel", "sequential")


def run_nuts(model: DynamicsModel, spec: InferenceSpec, data: Transitions, *, seed: int = 0, progress: bool = True,
             device="cpu", chain_method: str = "vectorized") -> Posterior:
    """Fit the normalisation on ``data``, run NUTS with ``spec.options`` and wrap the draws."""
    with numpy_and_random_restored():  # importing JAX the first time draws from numpy's global RNG
        import jax
        import jax.numpy as jnp
        from numpyro.infer import MCMC, NUTS

    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {', '.join(CHAIN_METHODS)}, got {chain_method!r}")
    if model.spec.likelihood.learn_noise:
        raise ValueError(f"model {model.spec.name!r} learns its noise scale (likelihood.learn_noise: true): the SVI "
                         f"families fit σ by maximum likelihood, NUTS would keep the initial σ — a different "
                         f"model. Give NUTS a spec with learn_noise: false (and the noise scale you want)")
    opts = spec.options
    model.to("cpu")  # JAX reads the normalised data from the CPU; the model goes to ``device`` after
    try:
        model.fit_normalizer(data.to("cpu"))
        with torch.no_grad():
            x = model.inputs(data.obs.cpu().float(), data.act.cpu().float()).numpy()
            y = model.targets(data.obs.cpu().float(), data.next_obs.cpu().float()).numpy()
        kernel = NUTS(numpyro_model(model), max_tree_depth=opts["max_tree_depth"],
                      target_accept_prob=opts["target_accept"])
        mcmc = MCMC(kernel, num_warmup=opts["num_warmup"], num_samples=opts["num_samples"],
                    num_chains=opts["num_chains"], chain_method=chain_method, progress_bar=progress)
        start = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), jnp.asarray(x), jnp.asarray(y),
                 extra_fields=("diverging", "num_steps", "energy", "accept_prob"))
        theta = np.array(mcmc.get_samples(group_by_chain=True)["theta"])  # a writable copy
        stats = {k: torch.tensor(np.array(v)) for k, v in mcmc.get_extra_fields(group_by_chain=True).items()}
        stats["tree_depth"] = torch.log2(stats["num_steps"].double() + 1).ceil().to(torch.int64)
        wall = time.perf_counter() - start
    finally:
        model.to(device)
    q = make_family(spec)
    q.load_guide(model, {"theta": torch.as_tensor(theta, dtype=model.prior_loc.dtype),
                         **{f"stat_{k}": v for k, v in stats.items()}})
    info = {"seed": seed, "device": str(device), "num_data": len(data), "wall_time_s": wall,
            "num_divergences": int(stats["diverging"].sum()), "chain_method": chain_method, "steps": 0}
    return Posterior(q, torch.empty(0), info)


@uses_threads
def nuts(model: DynamicsModel | ModelSpec | str | Path, data: Transitions, inference: InferenceSpec | str | dict = "nuts",
         *, num_samples: int | None = None, num_warmup: int | None = None, num_chains: int | None = None,
         max_tree_depth: int | None = None, seed: int = 0, progress: bool = True, device="cpu",
         chain_method: str = "vectorized") -> Posterior:
    """A NUTS reference posterior of ``model`` on ``data`` (module docstring): the ``nuts``
    inference spec's settings (``inference/nuts.yaml``), overridden by any argument given here.
    Deterministic for a given ``seed``; JAX's random keys leave every global RNG untouched."""
    spec = as_inference_spec(inference)
    if family_class(spec.family).fitted_by_svi:
        raise ValueError(f"pprl.nuts needs the inference spec of an MCMC family (e.g. 'nuts'), got family "
                         f"{spec.family!r}, which is fitted by SVI (pprl.fit)")
    changes = {k: v for k, v in (("num_samples", num_samples), ("num_warmup", num_warmup),
                                 ("num_chains", num_chains), ("max_tree_depth", max_tree_depth)) if v is not None}
    for k, v in changes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "num_warmup" else 1):
            raise ValueError(f"{k} must be an integer >= {0 if k == 'num_warmup' else 1}, got {v!r}")
    spec = spec.replace(options={**spec.options, **changes})
    if not isinstance(model, DynamicsModel):
        model = build_model(model, data.obs_dim, data.act_dim)
    return run_nuts(model, spec, data, seed=seed, progress=progress, device=device, chain_method=chain_method)
