"""The amortised guide of a latent dynamics model: q(z_{0:T−1} | o_{0:T−1}, a) = ∏_t q(z_t | ·),
each factor a diagonal Gaussian whose mean and scale a network computes from the data (Kingma &
Welling 2014; Levine, CS 294-112, "amortised variational inference").

* ``guide: per_step``: q(z_t | o_t) — one encoder applied to every frame.
* ``guide: filtering``: q(z_0 | o_0), then q(z_t | o_t, z_{t−1}, a_{t−1}) with z_{t−1} the guide's
  own draw — the structure of the exact filtering posterior of a state-space model.
* ``guide: smoothing``: h_t = r(o_t, a_t, h_{t+1}) backwards from h_T = 0 (linear for a linear
  encoder, a GRU cell otherwise), then q(z_0 | h_0) and q(z_t | h_t, z_{t−1}, a_{t−1}) — the
  structure of the exact posterior p(z_t | z_{t−1}, a_{t−1}, o_{t:T}) of a state-space model, whose
  backward message is a Gaussian with an information vector linear in o_{t:T} (Krishnan et al. 2017).

With ``num_flows`` = K > 0 (the inference spec's family ``flow``), each q(z_t | ·) is that Gaussian
pushed through K planar maps z ← z + u tanh(wᵀz + b) whose (u, w, b) a small network computes from
the step's features (amortised planar flows, Rezende & Mohamed 2015 §4; Pyro's
``ConditionalPlanar``, which keeps wᵀu > −1 so each map is invertible): the density is
log q(z) = log N(z₀; μ, σ²) − Σ_k log|1 + u_kᵀψ_k(z_{k−1})|, so q can be skewed or curved where the
exact posterior is.

With ``score_function`` set, each z_t is drawn without a reparameterisation (Pyro's
``has_rsample_(False)``) and carries a learned baseline b(o_t, T − t) for ``TraceGraph_ELBO``:
the gradient is E_q[(log p(o, z) − log q(z) − b) ∇ log q(z)] (Williams 1992; Mnih & Gregor 2014's
input-dependent baseline), unbiased for any b that does not depend on z.
"""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pyro.distributions.transforms as T
import torch
from torch import nn

from ..models.encoders import ConvEncoder
from ..models.latent import ACTIVATION_MODULES, inverse_softplus, make_mlp, positive
from ..models.latent_spec import LatentSpec
from ..models.layers import mlp_layout

MIN_SCALE = 1e-4


class AmortisedGuide(nn.Module):
    """q(z_t | …) for a :class:`~pprl.models.latent.LatentModel` of ``spec`` (see the module docstring)."""

    def __init__(self, spec: LatentSpec, act_dim: int, num_flows: int = 0, flow_hidden: int = 64,
                 weights_init_scale: float = 0.01):
        super().__init__()
        self.spec, self.act_dim = spec, int(act_dim)
        self.obs_shape = spec.obs_shape
        self.obs_dim = math.prod(self.obs_shape)
        dz, enc = spec.latent_size, spec.encoder
        if enc.type == "linear":
            self.features, width = nn.Identity(), self.obs_dim
        elif enc.type == "mlp":  # hidden layers, each followed by the activation
            self.features = nn.Sequential(make_mlp([self.obs_dim, *enc.hidden_sizes], enc.activation),
                                          ACTIVATION_MODULES[enc.activation]())
            width = enc.hidden_sizes[-1]
        else:
            self.features, width = ConvEncoder(self.obs_shape, enc.features), enc.features
        self.smoothing = spec.guide == "smoothing"
        self.filtering = spec.guide in ("filtering", "smoothing")
        if self.smoothing:  # backward state h_t summarising o_{t:T}, a_{t:T}
            state = 2 * dz if enc.type == "linear" else (enc.hidden_sizes[-1] if enc.type == "mlp" else enc.features)
            self.state_size = state
            if enc.type == "linear":
                self.backward_cell = nn.Linear(width + self.act_dim + state, state)
            else:
                self.backward_cell = nn.GRUCell(width + self.act_dim, state)
            width = state
        self.head = nn.Linear(width, 2 * dz)  # q(z_t | o_t), and q(z_0 | ·) when filtering or smoothing
        if self.filtering:
            inputs = width + dz + self.act_dim
            if enc.type == "linear":
                self.step_head = nn.Linear(inputs, 2 * dz)
            else:
                hidden = enc.hidden_sizes[-1] if enc.type == "mlp" else enc.features
                self.step_head = make_mlp([inputs, hidden, 2 * dz], enc.activation)
        with torch.no_grad():  # start with moderate scales
            for head in (self.head, getattr(self, "step_head", None)):
                last = head if isinstance(head, nn.Linear) else (head[-1] if head is not None else None)
                if last is not None:
                    last.bias[dz:] = inverse_softplus(0.5)
        if int(num_flows) < 0 or int(flow_hidden) < 1:
            raise ValueError(f"num_flows must be >= 0 and flow_hidden >= 1, got {num_flows}, {flow_hidden}")
        self.num_flows = int(num_flows)
        self.flows = nn.ModuleList([T.conditional_planar(dz, width, hidden_dims=[int(flow_hidden)])
                                    for _ in range(self.num_flows)])  # conditioned on the step's features
        self.baseline = nn.Linear(self.obs_dim + 1, 1)  # b(o_t, T − t) for the score-function estimator
        nn.init.zeros_(self.baseline.weight), nn.init.zeros_(self.baseline.bias)
        self.score_function = spec.estimator == "score_function"
        self.bayesian = spec.transition.bayesian
        if self.bayesian:  # q(θ) = N(μ, diag σ²) of the transition's weights, θ laid out as mlp_layout
            hidden = spec.transition.hidden_sizes if spec.transition.type == "mlp" else ()
            layers, D = mlp_layout([dz + self.act_dim, *hidden, dz])
            loc = torch.zeros(D)
            for i, layer in enumerate(layers):  # torch's Linear init; the last layer 10× smaller (f ≈ 0)
                bound = (0.1 if i == len(layers) - 1 else 1.0) / math.sqrt(layer.fan_in)
                loc[layer.weight] = torch.empty(layer.fan_in * layer.fan_out).uniform_(-bound, bound)
            self.weights_loc = nn.Parameter(loc)
            self.weights_scale_raw = nn.Parameter(torch.full((D,), inverse_softplus(float(weights_init_scale))))

    def embed(self, obs: torch.Tensor, act: torch.Tensor | None = None) -> torch.Tensor:
        """Features of every frame ``obs [..., T, obs_dim]`` → ``[..., T, width]`` (one batched pass);
        for the smoothing guide, the backward states h_t over them and ``act [..., T − 1, act_dim]``."""
        if isinstance(self.features, ConvEncoder):
            feats = self.features(obs.reshape(*obs.shape[:-1], *self.obs_shape))
        else:
            feats = self.features(obs)
        if not self.smoothing:
            return feats
        T = obs.shape[-2]
        act = torch.cat([act, act.new_zeros(*act.shape[:-2], 1, self.act_dim)], -2)  # no a_T: zeros
        h = feats.new_zeros(*feats.shape[:-2], self.state_size)
        states = [None] * T
        for t in reversed(range(T)):
            x = torch.cat([feats[..., t, :], act[..., t, :]], -1)
            if isinstance(self.backward_cell, nn.GRUCell):
                h = self.backward_cell(x.reshape(-1, x.shape[-1]), h.reshape(-1, h.shape[-1])).reshape(*x.shape[:-1], -1)
            else:
                h = self.backward_cell(torch.cat([x, h], -1))
            states[t] = h
        return torch.stack(states, -2)

    def step(self, feat: torch.Tensor, z_prev: torch.Tensor | None, a_prev: torch.Tensor | None):
        """(mean, scale) of q(z_t | ·) from the frame's features (and z_{t−1}, a_{t−1} when filtering)."""
        if self.filtering and z_prev is not None:
            out = self.step_head(torch.cat([feat, z_prev, a_prev], -1))
        else:
            out = self.head(feat)
        loc, raw = out.split(self.spec.latent_size, -1)
        return loc, positive(raw, MIN_SCALE)

    def push(self, z: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        """z through the step's flows (identity without flows); ``feat`` broadcasts against ``z``."""
        for flow in self.flows:
            z = flow.condition(feat.expand(*z.shape[:-1], feat.shape[-1]))(z)
        return z

    def distribution(self, feat: torch.Tensor, z_prev: torch.Tensor | None, a_prev: torch.Tensor | None):
        """q(z_t | ·) as a distribution with event shape ``[dz]``: the Gaussian, or it through the flows."""
        loc, scale = self.step(feat, z_prev, a_prev)
        base = dist.Normal(loc, scale).to_event(1)
        if not self.num_flows:
            return base
        return dist.TransformedDistribution(base, [flow.condition(feat) for flow in self.flows])

    def forward(self, obs: torch.Tensor, act: torch.Tensor, num_sequences: int | None = None):
        """The Pyro guide: sites ``z_t`` in the plate ``sequences`` (the model's signature), and
        ``transition_weights`` for a Bayesian transition."""
        B, T = obs.shape[:2]
        if self.bayesian:
            pyro.sample("transition_weights", self.weights_distribution())
        feats = self.embed(obs, act)
        subsample = torch.arange(B, device=obs.device)
        with pyro.plate("sequences", num_sequences or B, subsample=subsample):
            z = None
            if self.score_function and self.num_flows:
                raise ValueError("the score-function estimator needs the Gaussian guide (no flows)")
            for t in range(T):
                infer = {}
                if self.score_function:
                    loc, scale = self.step(feats[:, t], z, act[:, t - 1] if t else None)
                    # the same diagonal Gaussian, as a MultivariateNormal: a plate's broadcast keeps its
                    # has_rsample flag (an Independent's flag is its base's, which expanding resets)
                    q = dist.MultivariateNormal(loc, scale_tril=torch.diag_embed(scale)).has_rsample_(False)
                    left = torch.full((B, 1), float(T - t), device=obs.device)
                    infer = {"baseline": {"nn_baseline": _Squeeze(self.baseline),
                                          "nn_baseline_input": torch.cat([obs[:, t], left], -1)}}
                else:
                    q = self.distribution(feats[:, t], z, act[:, t - 1] if t else None)
                z = pyro.sample(f"z_{t}", q, infer=infer)

    @property
    def weights_scale(self) -> torch.Tensor:
        return positive(self.weights_scale_raw, MIN_SCALE * 1e-2)

    def weights_distribution(self) -> dist.Distribution:
        """q(θ) = N(μ, diag σ²) of a Bayesian transition's weights, event shape ``[D]``."""
        return dist.Normal(self.weights_loc, self.weights_scale).to_event(1)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, act: torch.Tensor, num_samples: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``num_samples`` draws of z_{0:T−1} ~ q(· | o, a) → ``[S, B, T, dz]`` for ``obs [B, T, obs_dim]``,
        ``act [B, T − 1, act_dim]``; each step conditioned on the draw's own z_{t−1} (filtering and
        smoothing guides). Noise from ``generator`` (the global RNG is not touched when one is given)."""
        feats = self.embed(obs, act)
        S, (B, T) = int(num_samples), obs.shape[:2]
        draws, z = [], None
        for t in range(T):
            feat = feats[:, t].expand(S, *feats[:, t].shape)
            a_prev = act[:, t - 1].expand(S, *act[:, t - 1].shape) if t else None
            loc, scale = self.step(feat, z, a_prev)
            z = loc + scale * torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
            z = self.push(z, feat)
            draws.append(z)
        return torch.stack(draws, -2)

    @torch.no_grad()
    def encode(self, obs: torch.Tensor, act: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale of every q(z_t | ·) → two ``[B, T, dz]`` tensors; a filtering guide is fed
        its own means for z_{t−1}. With flows: the base Gaussian's mean pushed through them (a point
        of q, not its mean) and the base's scale. ``obs [B, T, obs_dim]`` (or ``[T, obs_dim]``), ``act [B, T − 1, act_dim]``."""
        if act is None:
            act = obs.new_zeros(*obs.shape[:-2], max(obs.shape[-2] - 1, 0), self.act_dim)
        feats = self.embed(obs, act)
        locs, scales, z = [], [], None
        for t in range(obs.shape[-2]):
            loc, scale = self.step(feats[..., t, :], z, act[..., t - 1, :] if t else None)
            loc = self.push(loc, feats[..., t, :])
            locs.append(loc), scales.append(scale)
            z = loc
        return torch.stack(locs, -2), torch.stack(scales, -2)


def guide_options(spec) -> dict:
    """The :class:`AmortisedGuide` arguments an inference spec asks for: its family's
    ``local_guide_options`` (planar flows per step for ``flow``, none for ``mean_field``), and its
    ``init_scale`` as the initial σ of q(θ) for a Bayesian transition."""
    from .families import family_class

    return {**family_class(spec.family).local_guide_options(spec), "weights_init_scale": spec.init_scale}


class _Squeeze(nn.Module):
    """A baseline network with its trailing size-1 output dimension dropped (Pyro wants ``[B]``)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).squeeze(-1)
