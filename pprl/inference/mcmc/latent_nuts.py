"""A NUTS reference for the local posterior of a latent dynamics model, and the amortised
guide's distance to it.

A fitted :class:`~pprl.inference.latent_posterior.LatentPosterior` holds point estimates of the
global parameters φ (decoder, transition, noise) and an amortised guide q(z_{0:T−1} | o, a). For a
set of sequences, NUTS (NumPyro) samples the exact posterior of their states under the same φ,

    p(z_{0:T−1} | o_{0:T−1}, a; φ) ∝ p(z_0) ∏_t p(z_t | z_{t−1}, a_{t−1}; φ) ∏_t p(o_t | z_t; φ),

so what the guide loses to amortisation and to its factorised Gaussian family shows up per state
(Cremer, Li & Duvenaud 2018, "Inference Suboptimality in Variational Autoencoders"). The model is
rebuilt in JAX from the torch modules (linear and MLP decoders and transitions; a conv decoder is
refused). Sequences are independent given φ: one NUTS run samples all of them jointly, B·T·dz
numbers per draw.

:func:`local_posterior_gap` compares the guide's marginals q(z_t^j) (Monte-Carlo, its own draws)
with the NUTS marginals: the mean error in posterior standard deviations |E_q z − E_p z| / sd_p,
the scale ratio sd_q / sd_p, and the 2-Wasserstein distance between the two Gaussian marginals
with those moments, averaged over sequences, steps and latent dimensions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ...data.sequences import Sequences
from ...rng import numpy_and_random_restored

JAX_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh", "ELU": "elu", "SiLU": "silu", "Softplus": "softplus"}


def jax_network(module: nn.Module):
    """A torch ``nn.Linear`` or an ``nn.Sequential`` of Linear layers and activations (ReLU, Tanh,
    ELU, SiLU, Softplus) as a JAX function ``x [..., in] → [..., out]`` with the module's current
    weights as constants."""
    with numpy_and_random_restored():  # importing JAX the first time draws from numpy's global RNG
        import jax
        import jax.numpy as jnp

    acts = {"relu": jax.nn.relu, "tanh": jnp.tanh, "elu": jax.nn.elu, "silu": jax.nn.silu,
            "softplus": jax.nn.softplus}
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    ops = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            w = jnp.asarray(layer.weight.detach().cpu().numpy().T)
            bias = jnp.asarray(layer.bias.detach().cpu().numpy()) if layer.bias is not None else 0.0
            ops.append(lambda h, w=w, bias=bias: h @ w + bias)
        elif type(layer).__name__ in JAX_ACTIVATIONS:
            ops.append(acts[JAX_ACTIVATIONS[type(layer).__name__]])
        else:
            raise ValueError(f"the NUTS reference translates Linear layers and {', '.join(JAX_ACTIVATIONS)} to JAX, "
                             f"not {type(layer).__name__} (a conv decoder is not supported)")

    def fn(x):
        for op in ops:
            x = op(x)
        return x

    return fn


def latent_numpyro_model(model):
    """The latent model's joint p(o, z | a; φ) as a NumPyro model ``fn(obs [B, T, D], act [B, T − 1, m])``
    with one latent site ``z [B, T, dz]`` (φ fixed at the model's weights). A Bernoulli likelihood
    reads intensities in [0, 1] as the torch model does: o·g − softplus(g) per pixel."""
    with numpy_and_random_restored():
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as ndist
        from numpyro.distributions import constraints

    spec = model.spec
    if spec.decoder.type == "conv":
        raise ValueError(f"model {spec.name!r}: the NUTS reference needs a linear or mlp decoder, not conv")
    if model.bayesian:
        raise ValueError(f"model {spec.name!r}: the NUTS reference samples the local latents z given point-estimate "
                         f"transition weights; a Bayesian transition (transition.bayesian: true) is not translated")
    decode = jax_network(model.decoder)
    dz, kind = model.latent_size, spec.transition.type
    if kind != "none":
        step = jax_network(model.transition)
    if kind == "linear":
        trans_scale = jnp.asarray(torch.nn.functional.softplus(model.transition_scale_raw).detach().cpu().numpy())
    min_scale = float(getattr(spec.transition, "min_scale", 0.0))
    bernoulli = spec.likelihood.type == "bernoulli"
    if not bernoulli:
        obs_scale = float(model.obs_scale.detach().cpu())

    def transition(z_prev, a_prev):
        out = step(jnp.concatenate([z_prev, a_prev], -1))
        if kind == "linear":
            return out, jnp.broadcast_to(trans_scale, out.shape)
        delta, raw = out[..., :dz], out[..., dz:]
        return z_prev + delta, jax.nn.softplus(raw) + min_scale

    def fn(obs, act):
        B, T = obs.shape[:2]
        z = numpyro.sample("z", ndist.ImproperUniform(constraints.real, (), (B, T, dz)))  # the density: factors
        if kind == "none" or T == 1:
            numpyro.factor("prior", ndist.Normal(0.0, 1.0).log_prob(z).sum())
        else:  # z_0 ~ N(0, I), z_t | z_{t−1}, a_{t−1} ~ the transition
            loc, scale = transition(z[:, :-1], act)
            numpyro.factor("prior", ndist.Normal(0.0, 1.0).log_prob(z[:, 0]).sum()
                           + ndist.Normal(loc, scale).log_prob(z[:, 1:]).sum())
        g = decode(z)
        if bernoulli:
            numpyro.factor("obs", (obs * g - jax.nn.softplus(g)).sum())
        else:
            numpyro.factor("obs", ndist.Normal(g, obs_scale).log_prob(obs).sum())

    return fn


@dataclass
class LocalDraws:
    """NUTS draws of the states of B sequences: ``z [chains, draws, B, T, dz]`` (float64; sampled in
    float32) and the sampler's ``diverging [chains, draws]``; ``info`` holds the settings and the
    wall time."""

    z: torch.Tensor
    diverging: torch.Tensor
    info: dict = field(default_factory=dict)

    @property
    def mean(self) -> torch.Tensor:
        """E[z_t | o, a] per sequence and step → ``[B, T, dz]``."""
        return self.z.mean((0, 1))

    @property
    def std(self) -> torch.Tensor:
        """Posterior standard deviation of every z_t^j → ``[B, T, dz]``."""
        return self.z.flatten(0, 1).std(0)

    def diagnostics(self) -> dict:
        """Divergences, and the worst split R-hat and lowest bulk ESS over every state (ArviZ)."""
        import arviz as az

        flat = self.z.flatten(2).numpy()  # [chains, draws, B·T·dz]
        data = az.convert_to_inference_data({"z": flat})
        return {"num_divergences": int(self.diverging.sum()),
                "r_hat_max": float(az.rhat(data)["z"].max()), "ess_bulk_min": float(az.ess(data)["z"].min())}


def latent_nuts(posterior, data: Sequences, *, num_samples: int = 500, num_warmup: int = 500, num_chains: int = 2,
                max_tree_depth: int = 10, target_accept: float = 0.8, dense_mass: bool = False, seed: int = 0,
                progress: bool = True) -> LocalDraws:
    """NUTS draws of p(z | o, a; φ) for the sequences ``data`` under the fitted ``posterior``'s φ
    (module docstring). Chains run vectorised, each started at its own draw from the guide;
    ``seed`` seeds those draws and JAX's PRNG (no global RNG is read or changed)."""
    with numpy_and_random_restored():  # importing JAX the first time draws from numpy's global RNG
        import jax
        import jax.numpy as jnp
        from numpyro.infer import MCMC, NUTS

    if not isinstance(data, Sequences) or len(data) == 0:
        raise ValueError("latent_nuts needs a non-empty Sequences (pprl.data.to_sequences)")
    if data.obs_dim != posterior.model.obs_dim or data.act_dim != posterior.model.act_dim:
        raise ValueError(f"the sequences have obs_dim {data.obs_dim} and act_dim {data.act_dim}, the model "
                         f"{posterior.model.obs_dim} and {posterior.model.act_dim}")
    for name, value in (("num_samples", num_samples), ("num_warmup", num_warmup), ("num_chains", num_chains),
                        ("max_tree_depth", max_tree_depth)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    obs = data.obs.detach().cpu().float().numpy()
    act = data.act.detach().cpu().float().numpy()
    # each chain starts at its own draw from the guide (seeded), so split R-hat can see chains disagree
    g = torch.Generator(device=posterior.device).manual_seed(int(seed))
    init = posterior.guide.sample(data.obs.to(posterior.device), data.act.to(posterior.device), int(num_chains),
                                  generator=g).cpu().float().numpy()  # [chains, B, T, dz]
    kernel = NUTS(latent_numpyro_model(posterior.model), max_tree_depth=int(max_tree_depth),
                  target_accept_prob=float(target_accept), dense_mass=bool(dense_mass))
    mcmc = MCMC(kernel, num_warmup=int(num_warmup), num_samples=int(num_samples), num_chains=int(num_chains),
                chain_method="vectorized", progress_bar=progress)
    start = time.perf_counter()
    init_params = {"z": jnp.asarray(init if int(num_chains) > 1 else init[0])}
    mcmc.run(jax.random.PRNGKey(int(seed)), jnp.asarray(obs), jnp.asarray(act), extra_fields=("diverging",),
             init_params=init_params)
    z = torch.tensor(np.array(mcmc.get_samples(group_by_chain=True)["z"]), dtype=torch.float64)
    diverging = torch.tensor(np.array(mcmc.get_extra_fields(group_by_chain=True)["diverging"]))
    wall = time.perf_counter() - start
    info = {"num_samples": int(num_samples), "num_warmup": int(num_warmup), "num_chains": int(num_chains),
            "max_tree_depth": int(max_tree_depth), "target_accept": float(target_accept), "dense_mass": bool(dense_mass),
            "seed": int(seed), "wall_time_s": wall, "num_sequences": len(data), "length": data.length}
    return LocalDraws(z, diverging, info)


def guide_marginals(posterior, data: Sequences, num_samples: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the guide's marginals q(z_t^j) for every sequence and step
    → two ``[B, T, dz]`` tensors (float64), from ``num_samples`` draws of the whole guide (a
    filtering or smoothing guide conditions each step on its own previous draw)."""
    g = torch.Generator(device=posterior.device).manual_seed(int(seed))
    z = posterior.guide.sample(data.obs.to(posterior.device), data.act.to(posterior.device), int(num_samples),
                               generator=g).double().cpu()
    return z.mean(0), z.std(0)


def local_posterior_gap(posterior, data: Sequences, draws: LocalDraws, num_samples: int = 1000,
                        seed: int = 0) -> dict:
    """How far the guide's marginals are from the NUTS marginals (module docstring): averages over
    sequences, steps and dimensions of ``mean_error_sd`` = |m_q − m_p| / s_p, ``sd_ratio`` = s_q / s_p
    (geometric mean) and ``w2`` = √((m_q − m_p)² + (s_q − s_p)²); also ``mean_error_sd_max``."""
    mq, sq = guide_marginals(posterior, data, num_samples, seed)
    mp, sp = draws.mean, draws.std
    err = (mq - mp).abs() / sp
    return {"mean_error_sd": float(err.mean()), "mean_error_sd_max": float(err.max()),
            "sd_ratio": float(torch.exp(torch.log(sq / sp).mean())),
            "w2": float(torch.sqrt((mq - mp) ** 2 + (sq - sp) ** 2).mean())}


def plot_local_posterior(posterior, data: Sequences, draws: LocalDraws, path, index: int = 0,
                         num_samples: int = 1000, seed: int = 0):
    """z_t^j of sequence ``index`` against t, one panel per latent dimension (at most 4): the NUTS
    mean with a ±2 sd band, and the guide's marginal mean and ±2 sd."""
    from matplotlib.figure import Figure

    mq, sq = guide_marginals(posterior, data[index:index + 1], num_samples, seed)
    mp, sp = draws.mean[index], draws.std[index]
    dz = min(mp.shape[-1], 4)
    fig = Figure(figsize=(4 * dz, 3.2))
    axes = fig.subplots(1, dz, squeeze=False)[0]
    t = np.arange(mp.shape[0])
    for j, ax in enumerate(axes):
        ax.fill_between(t, mp[:, j] - 2 * sp[:, j], mp[:, j] + 2 * sp[:, j], color="C0", alpha=0.25,
                        label="NUTS ± 2 sd")
        ax.plot(t, mp[:, j], color="C0", lw=2, label="NUTS mean")
        ax.errorbar(t, mq[0, :, j], yerr=2 * sq[0, :, j], color="C3", fmt="o", ms=3, capsize=2,
                    label=f"guide ({posterior.spec.guide}) ± 2 sd")
        ax.set(xlabel="t", ylabel=f"z[{j}]", title=f"sequence {index}, latent {j}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


__all__ = ["LocalDraws", "latent_nuts", "guide_marginals", "local_posterior_gap", "plot_local_posterior",
           "latent_numpyro_model", "jax_network"]
