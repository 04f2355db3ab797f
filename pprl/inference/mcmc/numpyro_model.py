"""The same declared dynamics model as a NumPyro model, for NUTS reference posteriors.

:func:`numpyro_model` reads everything from a built (and normalised) torch
:class:`~pprl.models.dynamics.DynamicsModel` — the flat θ layout, the prior N(μ_p, diag σ_p²), the
activation, the likelihood (Gaussian or Student-t) and its noise scale — so a NUTS draw of θ is the
same vector an SVI family samples, weight for weight:

    θ ~ N(μ_p, diag σ_p²),    y_n | x_n, θ ~ N(f(x_n; θ), diag σ²)  or  t_ν(f(x_n; θ), σ),

on the model's normalised inputs x and targets y (:meth:`DynamicsModel.inputs` / ``targets``).
JAX is imported here only, when a reference posterior is asked for.
"""
from __future__ import annotations

import numpy as np

from ...models.dynamics import DynamicsModel


def _activation(name: str | None):
    import jax
    import jax.numpy as jnp

    return {None: None, "relu": jax.nn.relu, "tanh": jnp.tanh, "elu": jax.nn.elu, "silu": jax.nn.silu,
            "softplus": jax.nn.softplus}[name]


def jax_mean(model: DynamicsModel):
    """f(x; θ) of ``model`` as a JAX function of ``theta [D]`` and ``x [N, in]`` → ``[N, obs_dim]``."""
    layers = [(l.fan_in, l.fan_out, l.weight.start, l.weight.stop, l.bias.start, l.bias.stop)
              for l in model.layers]
    act = _activation(getattr(model.spec, "activation", None) if model.spec.type == "bnn" else None)

    def mean(theta, x):
        h = x
        for i, (fan_in, fan_out, w0, w1, b0, b1) in enumerate(layers):
            h = h @ theta[w0:w1].reshape(fan_in, fan_out) + theta[b0:b1]
            if i < len(layers) - 1:
                h = act(h)
        return h

    return mean


def numpyro_model(model: DynamicsModel):
    """A NumPyro model ``fn(x, y=None)`` with one latent site ``theta`` and observed ``obs``."""
    import numpyro
    import numpyro.distributions as ndist

    mean = jax_mean(model)
    prior_loc = np.asarray(model.prior_loc.detach().cpu().numpy())
    prior_scale = np.asarray(model.prior_scale.detach().cpu().numpy())
    noise = np.asarray(model.noise_scale.detach().cpu().numpy())
    lik = model.spec.likelihood

    def fn(x, y=None):
        theta = numpyro.sample("theta", ndist.Normal(prior_loc, prior_scale).to_event(1))
        f = mean(theta, x)
        with numpyro.plate("data", x.shape[0]):
            if lik.type == "student_t":
                numpyro.sample("obs", ndist.StudentT(lik.df, f, noise).to_event(1), obs=y)
            else:
                numpyro.sample("obs", ndist.Normal(f, noise).to_event(1), obs=y)

    return fn
