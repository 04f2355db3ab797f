"""A fitted latent world model as an empowerment channel: the state is the latent code z of a frame,
and K actions drive the model's own stochastic transition.

    z_{j+1} = f(z_j, a_j) + s(z_j, a_j) ⊙ ε_j,    ε_j ~ N(0, I),

with f and s the mean and scale of the transition p(z_{j+1} | z_j, a_j) of a
:class:`~pprl.inference.latent_posterior.LatentPosterior` (the latent model of
:mod:`pprl.models.latent`), started at z = E_q[z | o], the amortised guide's mean for a frame o.
With ``noise="step"`` (default) ε enters at every step, so the channel's noise is the model's own
K-step predictive spread, different at every state (a Bayesian transition, run at the mean of q(θ),
has one per-step scale s for all states; its K-step spread still varies through the dynamics); with ``noise="final"`` only the last step's
scale enters. With ``noise_std`` the noise is declared instead, ``noise_std``·ε isotropic in latent
units in place of s(z, a)·ε, at every step or at the last (as :class:`~pprl.empowerment.PosteriorChannel`
declares it).

This differs from the latent linear-Gaussian channel of Zhao et al. 2021
(:class:`~pprl.empowerment.LatentGaussianChannel`), which regresses z_K on a_{1:K} with one noise
covariance for every state: here the dynamics and their uncertainty are the world model's, fitted
by the ELBO together with the encoder, and :func:`~pprl.empowerment.linearised_empowerment` reads
the capacity of their tangent channel, Σ = Σ_j J_j diag(s_j²) J_jᵀ.

A channel in the sense of :mod:`pprl.empowerment.continuous`: ``obs_dim`` (= the latent size),
``act_dim``, the action box, ``noise_shape(K)`` and a differentiable ``rollout``. The transition
is evaluated in float64 on a copy of the model (the caller's model is not changed); a rollout
returns the dtype of the codes it was given (float64 for the linearisation, float32 for the
variational :class:`~pprl.Empowerment`).
"""
from __future__ import annotations

import copy

import torch

from .continuous import _box, _check_common


class LatentModelChannel:
    """K actions (each held ``action_repeat`` steps) through the transition of a fitted latent model
    (module docstring). ``posterior``: a :class:`~pprl.inference.latent_posterior.LatentPosterior`
    whose model has a transition (``mlp`` or ``linear``); ``action_low``/``action_high``: the
    environment's action box."""

    theta = "mean"  # fixed dynamics: what linearised_empowerment needs

    def __init__(self, posterior, action_low, action_high, *, noise: str = "step", noise_std: float | None = None,
                 action_repeat: int = 1):
        model = posterior.model
        if model.transition is None:
            raise ValueError("a LatentModelChannel needs a latent model with a transition (transition.type mlp or "
                             "linear); this one has transition.type 'none'")
        if model.act_dim < 1:
            raise ValueError("a LatentModelChannel needs a latent model fitted with actions (act_dim >= 1)")
        if noise_std is not None and not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std}")
        self.repeat = _check_common(noise, action_repeat)
        self.noise, self.noise_std = noise, None if noise_std is None else float(noise_std)
        self.posterior = posterior
        self.model = copy.deepcopy(model).double().requires_grad_(False)
        # a Bayesian transition runs at the mean of q(θ), the fixed dynamics the capacity is read from
        self.weights = posterior.transition_weights().double() if model.bayesian else None
        self.obs_dim, self.act_dim = model.latent_size, model.act_dim
        self.action_low, self.action_high = _box(action_low, action_high, self.act_dim)

    def encode(self, frames, chunk: int = 2048) -> torch.Tensor:
        """z = E_q[z | o] for each frame of ``frames [N, *obs_shape]`` (or flat ``[N, obs_dim]``), each
        frame read alone (a sequence of one: for a filtering or smoothing guide, its first step)
        → ``[N, latent_size]`` (float64), in chunks of ``chunk`` frames."""
        flat = self.posterior._flat(frames)
        if flat.dim() != 2:
            raise ValueError(f"frames must be [N, *obs_shape] or [N, obs_dim], got shape {tuple(torch.as_tensor(frames).shape)}")
        return torch.cat([self.posterior.encode(flat[i:i + chunk, None])[0][:, 0]
                          for i in range(0, len(flat), chunk)]).double()

    def noise_shape(self, horizon: int) -> tuple[int, int]:
        return (1 if self.noise == "final" else horizon * self.repeat), self.obs_dim

    def rollout(self, z: torch.Tensor, a: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """z_K for ``z [N, dz]``, ``a [N, K, m]``, ``noise [N, *noise_shape(K)]``."""
        dtype = z.dtype
        z, a, noise = z.to(torch.float64), a.to(torch.float64), noise.to(torch.float64)
        steps = a.shape[1] * self.repeat
        for j in range(steps):
            loc, scale = self.model.transition_loc_scale(z, a[:, j // self.repeat], self.weights)
            eps = noise[:, j] if self.noise == "step" else noise[:, 0] if j == steps - 1 else None
            if eps is None:
                z = loc
            else:
                z = loc + (scale if self.noise_std is None else self.noise_std) * eps
        return z.to(dtype)
