"""Affine normalisation of inputs and targets, fitted from data and stored with the model."""
from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """``z = (v − mean) / std`` per feature; identity until :meth:`fit` is called.

    The statistics are buffers, so they move with ``.to(device)`` and are saved in the
    model's ``state_dict``. ``min_std`` keeps constant features from dividing by zero.
    """

    def __init__(self, dim: int, min_std: float = 1e-6):
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, values: torch.Tensor) -> "Normalizer":
        self.mean.copy_(values.mean(0))
        self.std.copy_(values.std(0).clamp_min(self.min_std) if len(values) > 1 else torch.ones_like(self.std))
        return self

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def log_abs_det(self) -> torch.Tensor:
        """log |∂z/∂v| = −Σ log std: add to a density of z to get the density of v."""
        return -self.std.log().sum()
