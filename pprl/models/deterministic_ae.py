"""A deterministic autoencoder with latent dynamics: the baseline a latent (VAE-style) dynamics model
is compared against (issue 15: "lower than a deterministic autoencoder's of the same size").

Built from the same ``type: latent`` spec as :class:`~pprl.models.latent.LatentModel` and its
amortised guide, with the same pieces, but no noise anywhere:

    z_t = e(o_t)                          (the guide's per-frame encoder and a linear head to dz numbers)
    ô_t = g(z_t)                          (the model's decoder: Bernoulli logits or a Gaussian mean)
    ẑ_{t+1} = z_t + f(z_t, a_t)           (the model's transition network, its mean half only)

trained on windows o_{0:L}, a_{0:L−1} by minimising, per frame,

    ℓ(g(z_t), o_t)  +  ℓ(g(ẑ_{t+1}), o_{t+1})  +  ‖ẑ_{t+1} − z_{t+1}‖² / dz,

with ℓ the per-pixel binary cross-entropy (``likelihood: bernoulli``) or squared error (``normal``),
averaged over pixels: reconstruction, the one-step prediction decoded to pixels, and the one-step
prediction in latent space. This is the "learn an embedding of the image and a dynamics model
jointly" of Levine's CS 294-112 lecture with point estimates instead of distributions; an
autoencoder without the KL term has no reason to keep its latent space smooth where the
transition will take it, which is what the comparison tests. Open-loop prediction encodes the
context frame and rolls the transition forward (as :meth:`LatentPosterior.predict` does with means).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.minibatches import shuffled_batches
from ..data.sequences import Sequences
from ..rng import seeded
from ..spec import as_model_spec
from ..threads import uses_threads
from .encoders import ConvDecoder, ConvEncoder
from .latent import ACTIVATION_MODULES, make_mlp
from .latent_spec import LatentSpec


@dataclass
class AETrainInfo:
    """What :meth:`DeterministicAE.fit` did: the loss per step, wall time and frames per second."""

    loss_trace: torch.Tensor
    wall_time_s: float
    frames_per_s: float
    steps: int
    batch_size: int
    extra: dict = field(default_factory=dict)


class DeterministicAE(nn.Module):
    """Deterministic encoder e, decoder g and transition f of the sizes a latent ``spec`` declares
    (see the module docstring). ``spec``: a :class:`LatentSpec` or anything
    :func:`pprl.spec.as_model_spec` reads; ``act_dim``: action size. Weights use torch's global RNG:
    build under :func:`pprl.rng.seeded` (:meth:`fit` does so when it builds nothing itself). A
    Bayesian transition (``transition.bayesian``) gets point-estimate weights here: the baseline has
    no uncertainty by design."""

    def __init__(self, spec, act_dim: int):
        super().__init__()
        spec = as_model_spec(spec)
        if not isinstance(spec, LatentSpec):
            raise ValueError(f"DeterministicAE needs a 'latent' model spec, got type {spec.type!r}")
        self.spec, self.act_dim = spec, int(act_dim)
        self.obs_shape = spec.obs_shape
        self.obs_dim = math.prod(self.obs_shape)
        dz, enc, dec, tr = spec.latent_size, spec.encoder, spec.decoder, spec.transition
        if enc.type == "linear":
            features, width = nn.Identity(), self.obs_dim
        elif enc.type == "mlp":
            features = nn.Sequential(make_mlp([self.obs_dim, *enc.hidden_sizes], enc.activation),
                                     ACTIVATION_MODULES[enc.activation]())
            width = enc.hidden_sizes[-1]
        else:
            features, width = nn.Sequential(nn.Unflatten(-1, self.obs_shape), ConvEncoder(self.obs_shape, enc.features)), enc.features
        self.encoder = nn.Sequential(features, nn.Linear(width, dz))
        if dec.type == "linear":
            self.decoder = nn.Linear(dz, self.obs_dim)
        elif dec.type == "mlp":
            self.decoder = make_mlp([dz, *dec.hidden_sizes, self.obs_dim], dec.activation)
        else:
            self.decoder = nn.Sequential(ConvDecoder(dz, self.obs_shape), nn.Flatten(-3))
        if tr.type == "linear":
            self.transition = nn.Linear(dz + self.act_dim, dz)
        elif tr.type == "mlp":
            self.transition = make_mlp([dz + self.act_dim, *tr.hidden_sizes, dz], tr.activation)
        else:
            raise ValueError("DeterministicAE needs a transition (transition.type mlp or linear), got 'none'")
        self.bernoulli = spec.likelihood.type == "bernoulli"

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """z = e(o) for flat observations ``[..., obs_dim]`` → ``[..., dz]``."""
        batch = obs.shape[:-1]
        return self.encoder(obs.reshape(-1, self.obs_dim)).reshape(*batch, -1)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The predicted frame: sigmoid g(z) (Bernoulli) or g(z) → ``[..., obs_dim]``."""
        g = self.decoder(z)
        return torch.sigmoid(g) if self.bernoulli else g

    def step(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """ẑ_{t+1} = z_t + f(z_t, a_t) (the linear transition predicts ẑ_{t+1} itself)."""
        out = self.transition(torch.cat([z, a], -1))
        return out if isinstance(self.transition, nn.Linear) else z + out

    def _pixel_loss(self, z: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        g = self.decoder(z)
        if self.bernoulli:
            return F.binary_cross_entropy_with_logits(g, obs)
        return F.mse_loss(g, obs)

    def loss(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The training loss on windows ``obs [B, T, obs_dim]``, ``act [B, T − 1, act_dim]`` (module docstring)."""
        z = self.encode(obs)
        rec = self._pixel_loss(z, obs)
        if obs.shape[1] < 2:
            return rec
        z_next = self.step(z[:, :-1], act)
        return rec + self._pixel_loss(z_next, obs[:, 1:]) + F.mse_loss(z_next, z[:, 1:])

    @uses_threads
    @torch.no_grad()
    def predict(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """K-step open-loop prediction from one context frame ``obs [B, obs_dim]`` and ``actions
        [B, K, act_dim]`` → decoded frames ``[B, K + 1, obs_dim]`` (index 0 reconstructs the context),
        the signature of :meth:`LatentPosterior.predict`."""
        z = [self.encode(obs)]
        for k in range(actions.shape[1]):
            z.append(self.step(z[-1], actions[:, k]))
        return self.decode_mean(torch.stack(z, 1))

    @uses_threads
    def fit(self, data: Sequences, steps: int, batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
            grad_clip: float | None = None) -> AETrainInfo:
        """Adam on :meth:`loss` over minibatches of ``batch_size`` windows of ``data`` (epochs of a seeded
        permutation, as :func:`pprl.inference.latent_fit.fit_latent` draws them). Seeded; the global
        RNG is left untouched."""
        if data.obs_dim != self.obs_dim or data.act_dim != self.act_dim:
            raise ValueError(f"data has obs_dim={data.obs_dim}, act_dim={data.act_dim}; the autoencoder was built "
                             f"for obs_dim={self.obs_dim}, act_dim={self.act_dim}")
        N, T = len(data), data.length
        M = min(batch_size, N)
        params = list(self.parameters())
        opt = torch.optim.Adam(params, lr=lr)
        trace = torch.empty(steps)
        with seeded(seed):
            batches = shuffled_batches(N, M)
            start = time.perf_counter()
            for step in range(steps):
                idx = next(batches)
                opt.zero_grad(set_to_none=True)
                loss = self.loss(data.obs[idx], data.act[idx])
                loss.backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                trace[step] = loss.detach()
            wall = time.perf_counter() - start
        return AETrainInfo(trace, wall, steps * M * T / max(wall, 1e-9), steps, M)


def build_deterministic_ae(spec, act_dim: int, seed: int = 0) -> DeterministicAE:
    """:class:`DeterministicAE` for ``spec`` with initial weights seeded by ``seed`` (global RNG untouched)."""
    with seeded(seed):
        return DeterministicAE(spec, act_dim)
