"""Affine normalisation of inputs and targets, fitted from data and stored with the model."""
from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """``z = (v − mean) / std`` per feature; identity until :meth:`fit` is called.

    The statistics are buffers, so they move with ``.to(device)`` and are saved in the
    model's ``state_dict``. A feature whose spread is below ``min_std`` (constant so far) gets
    scale 1: dividing by a tiny scale would blow up its weights at the next :meth:`refit`.

    :meth:`refit` updates the statistics on new data and returns the affine map
    ``z_new = a ⊙ z_old + b`` between the old and the new normalised units, so that a model
    can re-express its parameters and represent the same function of the raw values.
    """

    def __init__(self, dim: int, min_std: float = 1e-6):
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, values: torch.Tensor) -> "Normalizer":
        self.mean.copy_(values.mean(0))
        self.std.copy_(self._floor(values.std(0)) if len(values) > 1 else torch.ones_like(self.std))
        return self

    def _floor(self, std: torch.Tensor) -> torch.Tensor:
        return torch.where(std < self.min_std, torch.ones_like(std), std)

    @torch.no_grad()
    def refit(self, values: torch.Tensor, keep_mean: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """New statistics from ``values``; returns ``(a, b)`` with ``z_new = a ⊙ z_old + b``.

        ``keep_mean=True`` keeps the centre and sets the scale to the root-mean-square
        deviation about it, √(mean (v − centre)²), so that the map is a pure scaling
        (``b = 0``): z stays O(1) on the new data even where it drifted from the centre."""
        old_mean, old_std = self.mean.clone(), self.std.clone()
        if keep_mean:
            self.std.copy_(self._floor((values - old_mean).square().mean(0).sqrt()))
        else:
            self.fit(values)
        a = old_std / self.std
        return a, (old_mean - self.mean) / self.std

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return (values - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def log_abs_det(self) -> torch.Tensor:
        """log |∂z/∂v| = −Σ log std: add to a density of z to get the density of v."""
        return -self.std.log().sum()
