"""A fitted latent dynamics model with its amortised guide: encode frames, reconstruct them,
predict K steps open loop, estimate the ELBO, save and load (``torch.load(..., weights_only=True)``).

The counterpart of :class:`pprl.inference.posterior.Posterior` for models with local latents: the
model's own parameters are point estimates (maximum ELBO), and q(z_t | ·) is the amortised guide.
"""
from __future__ import annotations

from pathlib import Path

import pyro
import torch
from pyro.nn import PyroParam
from torch.distributions import constraints

from ..data.sequences import Sequences
from ..models.latent import LatentModel, build_latent_model
from ..rng import seeded
from ..spec import InferenceSpec, parse_inference_spec, parse_model_spec
from ..threads import uses_threads
from .amortised import AmortisedGuide, guide_options
from .checkpoints import read_checkpoint

FORMAT = "pprl.latent_posterior/1"


class LatentPosterior:
    """``model`` (:class:`~pprl.models.latent.LatentModel`), ``guide``
    (:class:`~pprl.inference.amortised.AmortisedGuide`), the ELBO per observed step at each
    training step (``elbo_trace``), the inference spec and an ``info`` dict."""

    def __init__(self, model: LatentModel, guide: AmortisedGuide, inference: InferenceSpec,
                 elbo_trace: torch.Tensor | None = None, info: dict | None = None):
        self.model, self.guide, self.inference = model, guide, inference
        self.elbo_trace = elbo_trace if elbo_trace is not None else torch.empty(0)
        self.info = dict(info or {})

    @property
    def spec(self):
        return self.model.spec

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __repr__(self):
        return (f"LatentPosterior(model={self.spec.name!r}, latent_size={self.spec.latent_size}, "
                f"guide={self.spec.guide!r}, steps={len(self.elbo_trace)})")

    def _flat(self, obs) -> torch.Tensor:
        """Observations as ``[..., obs_dim]`` on the model's device (images may come as ``[..., C, H, W]``)."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        shape = self.model.obs_shape
        if len(shape) > 1 and tuple(obs.shape[-len(shape):]) == tuple(shape):
            obs = obs.reshape(*obs.shape[:-len(shape)], self.model.obs_dim)
        if obs.shape[-1] != self.model.obs_dim:
            raise ValueError(f"observations must end in obs_dim={self.model.obs_dim} (or the shape "
                             f"{list(shape)}), got shape {tuple(obs.shape)}")
        return obs

    # ---------------------------------------------------------------- the guide and the model
    @uses_threads
    @torch.no_grad()
    def encode(self, obs, act=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of q(z_t | ·) for each frame of ``obs [B, T, obs_dim]`` (or ``[T, obs_dim]``)
        → two ``[..., T, dz]`` tensors (a filtering guide also reads ``act [B, T − 1, act_dim]``)."""
        obs = self._flat(obs)
        act = None if act is None else torch.as_tensor(act, dtype=torch.float32, device=self.device)
        return self.guide.encode(obs, act)

    @uses_threads
    @torch.no_grad()
    def reconstruct(self, obs, act=None) -> torch.Tensor:
        """E[o_t | z_t = mean of q(z_t | ·)] for every frame → the shape of the (flat) ``obs``."""
        loc, _ = self.encode(obs, act)
        return self.model.decode_mean(loc)

    @uses_threads
    @torch.no_grad()
    def predict(self, obs, actions, context_act=None, sample: bool = False, seed: int = 0) -> torch.Tensor:
        """K-step open-loop prediction: z at the last context frame from the guide (its mean), then
        K transitions driven by ``actions [B, K, act_dim]`` (their means, or draws with ``sample``),
        decoded to E[o | z] → ``[B, K + 1, obs_dim]`` (index 0 reconstructs the last context frame).
        ``obs [B, obs_dim]`` is one context frame; ``obs [B, C, obs_dim]`` C frames with
        ``context_act [B, C − 1, act_dim]``. Seeded; the global RNG is left untouched."""
        obs = self._flat(obs)
        if obs.dim() == 2:
            obs = obs.unsqueeze(1)
        actions = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        loc, _ = self.guide.encode(obs, None if context_act is None else
                                   torch.as_tensor(context_act, dtype=torch.float32, device=self.device))
        with seeded(seed):
            theta = self.transition_weights(len(loc) if sample else None) if self.model.bayesian else None
            z = self.model.rollout(loc[:, -1], actions, sample=sample, theta=theta)
        return self.model.decode_mean(z)

    @torch.no_grad()
    def transition_weights(self, num_samples: int | None = None) -> torch.Tensor:
        """A Bayesian transition's weights: the mean μ of q(θ) (``[D]``), or ``num_samples`` draws
        θ ~ q(θ) (``[num_samples, D]``, global torch RNG: call seeded). :meth:`predict` rolls out with
        μ, or with ``sample`` one draw of θ per sequence (the posterior predictive)."""
        self._require_bayesian()
        if num_samples is None:
            return self.guide.weights_loc.detach().clone()
        return self.guide.weights_distribution().sample((int(num_samples),))

    def _require_bayesian(self) -> None:
        if not self.model.bayesian:
            raise ValueError(f"model {self.spec.name!r} has point-estimate transition weights; "
                             f"transition.bayesian: true makes them a latent variable with a posterior q(θ)")

    def transition_posterior(self, inference=None, learn_noise: bool = False):
        """q(θ) of a Bayesian transition as a :class:`~pprl.inference.posterior.Posterior` of a ``bnn``
        dynamics model on the latent codes: p(z' − z | z, a, θ) = N(f(z, a; θ), diag s²) with the
        fitted scale s (held fixed, or with ``learn_noise`` a point estimate that later refits move, on
        the ``bnn`` model's positive constraint: the latent spec's ``min_scale`` floor is not kept), no
        normalisation, the same prior and a ``mean_field`` q of the fitted μ, σ. ``inference`` (a
        ``mean_field`` inference spec) sets how the posterior is refitted later (:meth:`InfoGain.update`);
        by default, the analytic-KL ELBO with this fit's lr and batch size. Every tool of a dynamics
        posterior then applies to the codes of frames, VIME's :class:`~pprl.inference.info_gain.InfoGain`
        first: the information gain about θ of a transition (z, a, z'), z and z' from :meth:`encode`."""
        from ..models.dynamics import build_model
        from ..spec import LikelihoodSpec, ModelSpec, PriorSpec, as_inference_spec, parse_inference_spec
        from .families import FAMILIES, make_family
        from .posterior import Posterior

        self._require_bayesian()
        tr = self.spec.transition
        scale = torch.nn.functional.softplus(self.model.transition_scale_raw.detach()) + tr.min_scale
        mspec = ModelSpec(type="bnn", name=f"{self.spec.name}_transition",
                          hidden_sizes=tuple(tr.hidden_sizes) if tr.type == "mlp" else (),
                          activation=tr.activation, prior=PriorSpec(tr.prior.weight_scale, tr.prior.bias_scale),
                          likelihood=LikelihoodSpec(noise_scale=1.0, learn_noise=bool(learn_noise)), target="delta",
                          normalize=False, source=f"{self.spec.source}:transition")
        dz, da = self.model.latent_size, self.model.act_dim
        model = build_model(mspec, dz, da).to(self.device)
        if learn_noise:
            with pyro.settings.context(module_local_params=True):
                model.noise_scale = PyroParam(scale.clone(), constraint=constraints.positive)
        else:
            model.noise_scale.copy_(scale)
        if inference is None:
            ispec = parse_inference_spec({"family": "mean_field", "elbo": "analytic_kl",
                                          "lr": self.inference.lr, "batch_size": self.inference.batch_size},
                                         f"{self.spec.source}:transition")
        else:
            ispec = as_inference_spec(inference)
        q = make_family(ispec)
        if not q.diagonal_gaussian:
            diagonal = ", ".join(name for name, cls in FAMILIES.items() if cls.diagonal_gaussian)
            raise ValueError(f"the latent model's q(θ) is a diagonal Gaussian; transition_posterior needs a family "
                             f"of that form ({diagonal}), got {ispec.family!r}")
        q.load_guide(model)
        q.set_diagonal_gaussian(self.guide.weights_loc, self.guide.weights_scale)
        return Posterior(q, info={"from_latent_model": self.spec.name})

    @uses_threads
    def elbo(self, data: Sequences, num_particles: int = 8, seed: int = 0, weights_kl: bool = True) -> float:
        """ELBO per observed step, (1/(B·T)) Σ_b E_q[log p(o_b, z_b | a_b) − log q(z_b | o_b, a_b)],
        a Monte-Carlo estimate over ``num_particles`` draws (seeded; the global RNG untouched). A
        Bayesian transition's −KL(q(θ) ‖ p(θ)) enters once for ``data`` unless ``weights_kl=False``
        (:func:`~pprl.inference.latent_fit.elbo_estimate`)."""
        from .latent_fit import elbo_estimate
        return elbo_estimate(self.model, self.guide, data.to(self.device), num_particles, seed, weights_kl=weights_kl)

    # ---------------------------------------------------------------- persistence
    def state(self) -> dict:
        """Everything needed to rebuild this posterior; only tensors, numbers, strings, lists, dicts."""
        return {"format": FORMAT, "model_spec": self.spec.to_dict(), "inference_spec": self.inference.to_dict(),
                "act_dim": self.model.act_dim,
                "model_state": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "guide_state": {k: v.detach().cpu() for k, v in self.guide.state_dict().items()},
                "elbo_trace": self.elbo_trace.detach().cpu(), "info": self.info}

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint that :func:`load_latent_posterior` reads with ``weights_only=True``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "LatentPosterior":
        return load_latent_posterior(path, device)


def latent_posterior_from_state(state: dict, device: str | torch.device = "cpu", where: str = "<state>") -> LatentPosterior:
    """Rebuild a :class:`LatentPosterior` from :meth:`LatentPosterior.state`."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{where}: not a pprl latent-model checkpoint (expected format {FORMAT!r})")
    mspec = parse_model_spec(state["model_spec"], f"{where}:model_spec")
    ispec = parse_inference_spec(state["inference_spec"], f"{where}:inference_spec")
    with seeded(0):  # the initial weights are overwritten; this keeps the caller's RNG untouched
        model = build_latent_model(mspec, state["act_dim"])
        guide = AmortisedGuide(mspec, state["act_dim"], **guide_options(ispec))
    model.load_state_dict(state["model_state"])
    guide.load_state_dict(state["guide_state"])
    model.to(device), guide.to(device)
    return LatentPosterior(model, guide, ispec, state["elbo_trace"], state.get("info"))


def load_latent_posterior(path: str | Path, device: str | torch.device = "cpu") -> LatentPosterior:
    """Load a checkpoint written by :meth:`LatentPosterior.save` (safe: ``weights_only=True``)."""
    return latent_posterior_from_state(read_checkpoint(path, "latent-model"), device, str(path))