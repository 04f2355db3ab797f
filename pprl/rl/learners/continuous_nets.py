r"""The networks of the off-policy continuous-action learners (SAC, and the offline BC, CQL, MISA).

``SquashedGaussianActor``: u ~ N(μ(s), σ(s)²), a = c + h·tanh(u) with the action box's centre c
and half-width h, so every action is inside the box and

    log π(a|s) = log N(u; μ, σ²) − Σ_i log(h_i (1 − tanh²(u_i)) + 1e-6)

(the change of variables, Haarnoja et al. 2018, App. C); log σ is squashed into [−5, 2].
``QNetwork``: Q(s, a), an MLP on [s, a]. Both ReLU MLPs.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def relu_mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


class SquashedGaussianActor(nn.Module):
    """π(a|s): a tanh-squashed Gaussian on the box [low, high] (module docstring)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], low, high):
        super().__init__()
        self.trunk = relu_mlp([obs_dim, *hidden, 2 * act_dim])
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("centre", (high + low) / 2)
        self.register_buffer("half_width", (high - low) / 2)

    def features(self, obs: Tensor) -> Tensor:
        """The last hidden layer: the representation the policy acts on."""
        return self.trunk[:-1](obs)

    def gaussian(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """μ(s) and log σ(s) of the pre-squash Gaussian."""
        mean, raw = self.trunk(obs).chunk(2, -1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1)
        return mean, log_std

    def squash(self, u: Tensor) -> Tensor:
        return self.centre + self.half_width * torch.tanh(u)

    def _log_prob(self, z: Tensor, log_std: Tensor, u: Tensor) -> Tensor:
        """log π(squash(u)|s) with z = (u − μ)/σ: the Gaussian's log density minus the squash's log-Jacobian."""
        log_normal = (-0.5 * z.square() - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        return log_normal - torch.log(self.half_width * (1 - torch.tanh(u).square()) + 1e-6).sum(-1)

    def log_prob_pre_squash(self, obs: Tensor, u: Tensor) -> Tensor:
        """log π(a|s) of a = squash(u), from u ``[..., B, act_dim]`` (obs broadcast over leading dims)."""
        mean, log_std = self.gaussian(obs)
        return self._log_prob((u - mean) / log_std.exp(), log_std, u)

    def sample(self, obs: Tensor, generator: torch.Generator, num: int | None = None) -> tuple[Tensor, Tensor]:
        """Reparameterised a ~ π(·|s) and log π(a|s): ``[B, act_dim]``, ``[B]`` (or ``[num, B, ...]``
        with ``num`` draws per state), from ``generator``."""
        mean, log_std = self.gaussian(obs)
        shape = mean.shape if num is None else (num, *mean.shape)
        eps = torch.randn(shape, generator=generator, device=mean.device)
        u = mean + log_std.exp() * eps
        return self.squash(u), self._log_prob(eps, log_std, u)

    def mode(self, obs: Tensor) -> Tensor:
        """The deterministic action squash(μ(s))."""
        return self.squash(self.gaussian(obs)[0])


class QNetwork(nn.Module):
    """Q(s, a): an MLP on the concatenation [s, a]; broadcasts over leading sample dims of a."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = relu_mlp([obs_dim + act_dim, *hidden, 1])

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        if act.dim() > obs.dim():
            obs = obs.expand(*act.shape[:-1], obs.shape[-1])
        return self.net(torch.cat([obs, act], -1)).squeeze(-1)
