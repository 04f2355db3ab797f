"""A fitted posterior q(θ) over a dynamics model: predictive samples, log predictive density,
parameter samples, and a safe checkpoint format (``torch.load(..., weights_only=True)``).

Everything that depends on the form of q is asked of its :class:`~pprl.inference.families.Family`."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..data import Transitions
from ..models.dynamics import DynamicsModel, build_model
from ..pyro_settings import local_params
from ..rng import seeded
from ..spec import InferenceSpec, ModelSpec, parse_inference_spec, parse_model_spec
from .checkpoints import read_checkpoint
from .families import Family, make_family
from ..threads import uses_threads

FORMAT = "pprl.posterior/1"


@torch.no_grad()
def log_predictive_density(model: DynamicsModel, theta: torch.Tensor, data: Transitions,
                           chunk_size: int = 4096, mean_fn=None) -> torch.Tensor:
    """log p(s'_n | s_n, a_n) ≈ log (1/S) Σ_s p(s'_n | s_n, a_n, θ_s) per transition, in nats of
    the *original* next-observation units (the normalisation Jacobian is added) → ``[N]``.
    With θ_s from q this is the posterior predictive; from the prior, the prior predictive."""
    out = []
    for start in range(0, len(data), chunk_size):
        part = data[start:start + chunk_size]
        x, y = model.inputs(part.obs, part.act), model.targets(part.obs, part.next_obs)
        f = (mean_fn or model.mean)(theta, x)  # [S, n, obs_dim]
        ll = model.log_likelihood(f, y)  # [S, n]
        out.append(torch.logsumexp(ll, 0) - math.log(theta.shape[0]))
    return torch.cat(out) + model.target_norm.log_abs_det()


class Posterior:
    """q(θ) fitted to data for one dynamics model and one variational family.

    ``q`` is the fitted :class:`~pprl.inference.families.Family` (bound to its model and guide);
    the predictive samples θ ~ q and pushes it through ``q.predictive_mean`` (the model itself,
    or for ``laplace`` the network linearised at the MAP).
    """

    def __init__(self, q: Family, elbo_trace: torch.Tensor | None = None, info: dict | None = None):
        if not isinstance(q, Family) or q.guide is None:
            raise TypeError("Posterior(q, ...) needs a Family bound to a model and a guide "
                            "(make_family(spec).make_guide(model), or make_family(spec, model, guide))")
        self.q = q
        self.elbo_trace = elbo_trace if elbo_trace is not None else torch.empty(0)
        self.info = dict(info or {})

    @property
    def model(self) -> DynamicsModel:
        return self.q.model

    @property
    def guide(self):
        return self.q.guide

    @property
    def inference(self) -> InferenceSpec:
        return self.q.spec

    @property
    def family(self) -> str:
        """The family's name (``self.q`` is the family object)."""
        return self.q.name

    def predictive_mean(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The mean of p(y | x, θ) used by the predictive, for ``theta [S, D]`` → ``[S, N, obs_dim]``."""
        return self.q.predictive_mean(theta, x)

    @property
    def device(self) -> torch.device:
        return self.model.prior_loc.device

    def __repr__(self):
        return (f"Posterior(model={self.model.spec.name!r}, family={self.family!r}, "
                f"D={self.model.param_dim}, steps={len(self.elbo_trace)})")

    def renormalize(self, data: Transitions) -> "Posterior":
        """Fit the model's normalisation to ``data`` and re-express q(θ) in the new units, in place.

        The model's parameters map as θ' = a ⊙ θ + c (:meth:`DynamicsModel.refit_normalizer`) and
        q is pushed through that map (:meth:`Family.affine_transform`), so the predictive
        distribution at any raw input is unchanged; only the prior (declared in normalised units)
        now sits at the new data's scale."""
        a, c = self.model.refit_normalizer(data.to(self.device))
        self.q.affine_transform(a, c)
        return self

    # ---------------------------------------------------------------- sampling
    def sample_theta(self, num_samples: int, seed: int = 0) -> torch.Tensor:
        """Draws of the flat weights θ ~ q → ``[num_samples, D]`` (differentiable where q is).

        Every sampling method here takes ``seed`` and leaves the global RNG as it found it, so
        the same call gives the same draws whatever ran before it (see :mod:`pprl.rng`)."""
        with seeded(seed):
            return self.q.sample(num_samples)

    @torch.no_grad()
    def sample(self, num_samples: int, seed: int = 0) -> dict[str, torch.Tensor]:
        """``{"theta": [n, D], "noise_scale": [obs_dim]}`` plus, for layered models, each layer's
        ``"layer{l}.weight" [n, in, out]`` and ``"layer{l}.bias" [n, out]``."""
        theta = self.sample_theta(num_samples, seed)
        out = {"theta": theta, "noise_scale": self.model.noise_scale.detach().clone()}
        for l, layer in enumerate(getattr(self.model, "layers", [])):
            out[f"layer{l}.weight"] = theta[:, layer.weight].reshape(-1, layer.fan_in, layer.fan_out)
            out[f"layer{l}.bias"] = theta[:, layer.bias]
        return out

    def mean_theta(self) -> torch.Tensor:
        """E_q[θ]: closed form where q has one, else a Monte-Carlo mean over fixed draws."""
        with seeded(0):
            return self.q.mean().detach()

    @uses_threads
    @torch.no_grad()
    def predict(self, obs: torch.Tensor, act: torch.Tensor, num_samples: int = 100,
                noise: bool = True, seed: int = 0) -> torch.Tensor:
        """Samples of s' from the posterior predictive → ``[num_samples, N, obs_dim]``
        (θ ~ q, then s' ~ p(s' | s, a, θ); ``noise=False`` gives the mean f(x; θ) only)."""
        obs, act = torch.as_tensor(obs, device=self.device), torch.as_tensor(act, device=self.device)
        if obs.dim() == 1:
            obs, act = obs.unsqueeze(0), act.unsqueeze(0)
        with seeded(seed):
            theta = self.q.sample(num_samples)
            y = self.predictive_mean(theta, self.model.inputs(obs.float(), act.float()))
            if noise:
                y = self.model.likelihood(y).sample()
        return self.model.to_next_obs(obs.float(), y)

    @uses_threads
    def log_predictive(self, transitions: Transitions, num_samples: int = 200, seed: int = 0) -> float:
        """Mean log posterior-predictive density per transition, in nats (higher is better)."""
        theta = self.sample_theta(num_samples, seed).detach()
        data = transitions.to(self.device)
        return float(log_predictive_density(self.model, theta, data, mean_fn=self.predictive_mean).mean())

    @uses_threads
    def prior_log_predictive(self, transitions: Transitions, num_samples: int = 200, seed: int = 0) -> float:
        """The same under the prior p(θ): the baseline a posterior must beat."""
        with seeded(seed):
            theta = self.model.prior().sample((num_samples,))
        return float(log_predictive_density(self.model, theta, transitions.to(self.device)).mean())

    # ---------------------------------------------------------------- Bayesian checks (ArviZ)
    def to_inference_data(self, test_data: Transitions | None = None, num_samples: int = 1000, seed: int = 0):
        """This posterior as ``arviz.InferenceData`` (:func:`pprl.diagnostics.inference_data.to_inference_data`)."""
        from ..diagnostics.inference_data import to_inference_data
        return to_inference_data(self, test_data, num_samples, seed)

    def pareto_k(self, data: Transitions, num_samples: int = 1000, seed: int = 0) -> float:
        """PSIS k̂ of q against the exact posterior on ``data`` (:func:`pprl.diagnostics.inference_data.pareto_k`)."""
        from ..diagnostics.inference_data import pareto_k
        return pareto_k(self, data, num_samples, seed)

    def coverage(self, data: Transitions, levels=(0.5, 0.9), num_samples: int = 1000, seed: int = 0) -> dict:
        """Held-out coverage of the central predictive intervals (:func:`pprl.diagnostics.inference_data.coverage`)."""
        from ..diagnostics.inference_data import coverage
        return coverage(self, data, levels, num_samples, seed)

    # ---------------------------------------------------------------- persistence
    def state(self) -> dict:
        """Everything needed to rebuild this posterior; only tensors, numbers, strings, lists, dicts."""
        return {"format": FORMAT, "model_spec": self.model.spec.to_dict(),
                "inference_spec": self.inference.to_dict(),
                "obs_dim": self.model.obs_dim, "act_dim": self.model.act_dim,
                "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "guide_state": self.q.state_dict(),
                "elbo_trace": self.elbo_trace.detach().cpu(), "info": self.info}

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint that :func:`load_posterior` reads with ``weights_only=True``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)  # atomic: a crash mid-write never leaves a half checkpoint
        return path


@local_params
def posterior_from_state(state: dict, device: str | torch.device = "cpu", where: str = "<state>") -> Posterior:
    """Rebuild a posterior from :meth:`Posterior.state` (e.g. inside a training checkpoint)."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{where}: not a pprl posterior checkpoint (expected format {FORMAT!r})")
    mspec: ModelSpec = parse_model_spec(state["model_spec"], f"{where}:model_spec")
    ispec: InferenceSpec = parse_inference_spec(state["inference_spec"], f"{where}:inference_spec")
    model = build_model(mspec, state["obs_dim"], state["act_dim"])
    model.load_state_dict(state["model_state"])
    model.to(device)
    q = make_family(ispec)
    q.load_guide(model, state["guide_state"])
    return Posterior(q, state["elbo_trace"], state.get("info"))


def load_posterior(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint written by :meth:`Posterior.save` (safe: ``weights_only=True``); a latent
    model's checkpoint (:meth:`~pprl.inference.latent_posterior.LatentPosterior.save`) loads as a
    ``LatentPosterior``."""
    state = read_checkpoint(path, "posterior")
    if isinstance(state, dict) and str(state.get("format", "")).startswith("pprl.latent_posterior/"):
        from .latent_posterior import latent_posterior_from_state
        return latent_posterior_from_state(state, device, str(path))
    return posterior_from_state(state, device, str(path))
