"""Batched Bayesian linear algebra: one MLP evaluated for many weight samples at once.

All weights live in one flat vector θ ∈ R^D (the single latent site of a dynamics model),
so every variational family is a distribution over R^D and particles are a leading batch
dimension: ``θ [P, D]`` and inputs ``x [N, in]`` give outputs ``[P, N, out]``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "elu": F.elu, "silu": F.silu,
               "softplus": F.softplus}


@dataclass(frozen=True)
class LayerSlices:
    """Where layer ``l``'s weight ``[in, out]`` and bias ``[out]`` sit inside θ."""

    fan_in: int
    fan_out: int
    weight: slice
    bias: slice


def mlp_layout(sizes: list[int]) -> tuple[list[LayerSlices], int]:
    """Slices of θ for an MLP with layer widths ``sizes`` (input first); returns (layers, D)."""
    layers, offset = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = slice(offset, offset + fan_in * fan_out)
        b = slice(w.stop, w.stop + fan_out)
        layers.append(LayerSlices(fan_in, fan_out, w, b))
        offset = b.stop
    return layers, offset


def mlp_prior_scale(layers: list[LayerSlices], weight_scale: float | str, bias_scale: float) -> torch.Tensor:
    """σ_p of the zero-mean Gaussian prior on each entry of θ: ``weight_scale`` (or 1/√fan_in for
    ``"fan_in"``, per layer) on the weights, ``bias_scale`` on the biases → ``[D]``."""
    scale = torch.ones(layers[-1].bias.stop)
    for layer in layers:
        scale[layer.weight] = 1.0 / math.sqrt(layer.fan_in) if weight_scale == "fan_in" else float(weight_scale)
        scale[layer.bias] = float(bias_scale)
    return scale


def batched_mlp(theta: torch.Tensor, x: torch.Tensor, layers: list[LayerSlices], activation,
                trace: list | None = None) -> torch.Tensor:
    """f(x; θ_p) for every particle: ``theta [P, D]``, ``x [N, in]`` (shared by all particles) or
    ``x [P, N, in]`` (each particle its own inputs) → ``[P, N, out]``.

    With ``trace=[]`` each layer appends ``(h, z)``: its input ``h [P, N, in]`` and its
    pre-activation ``z = h W + b [P, N, out]``. The weight gradient of a loss summed over data
    points is ``Σ_n h_n ⊗ ∂L/∂z_n``, so (h, ∂L/∂z) carry every per-example gradient in
    factored form (see :mod:`pprl.inference.info_gain`, second-order method)."""
    P = theta.shape[0]
    h = x if x.dim() == 3 else x.expand(P, *x.shape)
    for i, layer in enumerate(layers):
        w = theta[:, layer.weight].reshape(P, layer.fan_in, layer.fan_out)
        b = theta[:, layer.bias].unsqueeze(1)
        z = torch.baddbmm(b, h, w)
        if trace is not None:
            trace.append((h, z))
        h = z
        if i < len(layers) - 1:
            h = activation(h)
    return h


def local_reparam_mlp(loc: torch.Tensor, scale: torch.Tensor, x: torch.Tensor, layers: list[LayerSlices],
                      activation, num_particles: int, randn=None) -> torch.Tensor:
    """Local reparameterisation (Kingma et al. 2015, used by VIME) under q(θ) = N(loc, diag scale²).

    For each layer the pre-activation ``z = h W + b`` is Gaussian given ``h``:
    ``z ~ N(h μ_W + μ_b, h² σ_W² + σ_b²)``; sampling ``z`` instead of ``W`` gives independent
    weight noise per data point, an unbiased, lower-variance estimate of E_q[log p(y | x, θ)].
    ``loc, scale [*B, D]`` and ``x [*B, N, in]`` may carry leading run dimensions ``B`` (stacked
    fits); ``randn(shape)`` draws the noise ``[*B, *shape]`` (default: torch's global generator).
    Returns samples of the output layer ``[*B, P, N, out]``.
    """
    batch, P = loc.shape[:-1], num_particles
    if randn is None:
        randn = lambda shape: torch.randn(shape, device=loc.device, dtype=loc.dtype)  # noqa: E731
    var = scale.square()
    h = x.unsqueeze(-3).expand(*batch, P, *x.shape[-2:]).flatten(-3, -2)  # [*B, P·N, in]
    for i, layer in enumerate(layers):
        w_loc = loc[..., layer.weight].unflatten(-1, (layer.fan_in, layer.fan_out))
        w_var = var[..., layer.weight].unflatten(-1, (layer.fan_in, layer.fan_out))
        z_loc = h @ w_loc + loc[..., None, layer.bias]
        z_var = h.square() @ w_var + var[..., None, layer.bias]
        h = z_loc + z_var.sqrt() * randn(z_loc.shape[len(batch):])
        if i < len(layers) - 1:
            h = activation(h)
    return h.unflatten(-2, (P, x.shape[-2]))
