"""A convolutional encoder of small images into a feature vector (the pixel front end of
Mohamed & Rezende 2015's empowerment networks, which see the agent's surroundings as an image),
and its mirror, a convolutional decoder of vectors into images (the pixel likelihood of a latent
dynamics model, :mod:`pprl.models.latent`)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """Images ``[..., C, H, W]`` → features ``[..., features]``.

    Architecture: conv 3×3 (C → 16, stride 1, padding 1), ReLU; conv 4×4 (16 → 32, stride 2,
    padding 1), ReLU; conv 4×4 (32 → 32, stride 2, padding 1), ReLU; flatten; linear
    (32·⌊H/4⌋·⌊W/4⌋ → ``features``), ReLU. The first layer keeps full resolution, so a one-pixel
    feature still reaches the strided layers; the final linear layer sees every position, so the
    features can say *where* something is (a gridworld agent's cell), which a pooled encoder
    could not. Needs H, W ≥ 4.
    """

    def __init__(self, in_shape: Sequence[int], features: int = 64):
        super().__init__()
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(f"in_shape must be (C, H, W) with positive sizes, got {tuple(in_shape)}")
        C, H, W = (int(n) for n in in_shape)
        if H < 4 or W < 4:
            raise ValueError(f"images must be at least 4×4, got {H}×{W}")
        if int(features) < 1:
            raise ValueError(f"features must be >= 1, got {features}")
        self.in_shape, self.features = (C, H, W), int(features)
        self.convs = nn.Sequential(
            nn.Conv2d(C, 16, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32 * (H // 4) * (W // 4), self.features), nn.ReLU())

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """Local features: the map after the second convolution, ``[..., 32, H', W']`` with
        H' = ⌊H/2⌋ (each position sees a 6×6 patch of the image)."""
        if tuple(images.shape[-3:]) != self.in_shape:
            raise ValueError(f"expected images [..., {', '.join(map(str, self.in_shape))}], got {tuple(images.shape)}")
        batch = images.shape[:-3]
        out = self.convs[:4](images.reshape(-1, *self.in_shape))
        return out.reshape(*batch, *out.shape[1:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-3:]) != self.in_shape:
            raise ValueError(f"expected images [..., {', '.join(map(str, self.in_shape))}], got {tuple(images.shape)}")
        batch = images.shape[:-3]
        out = self.head(self.convs(images.reshape(-1, *self.in_shape)))
        return out.reshape(*batch, self.features)


class ConvDecoder(nn.Module):
    """Vectors ``[..., in_features]`` → images ``[..., C, H, W]`` (unbounded: a Gaussian mean or
    Bernoulli logits), the mirror of :class:`ConvEncoder`.

    Architecture: linear (``in_features`` → 32·(H/4)·(W/4)), ReLU; transposed conv 4×4 (32 → 32,
    stride 2, padding 1), ReLU; transposed conv 4×4 (32 → 16, stride 2, padding 1), ReLU; conv 3×3
    (16 → C, padding 1). Needs H, W multiples of 4.
    """

    def __init__(self, in_features: int, out_shape: Sequence[int]):
        super().__init__()
        if len(out_shape) != 3 or min(out_shape) < 1:
            raise ValueError(f"out_shape must be (C, H, W) with positive sizes, got {tuple(out_shape)}")
        C, H, W = (int(n) for n in out_shape)
        if H % 4 or W % 4:
            raise ValueError(f"image height and width must be multiples of 4, got {H}×{W}")
        if int(in_features) < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}")
        self.in_features, self.out_shape = int(in_features), (C, H, W)
        self.head = nn.Sequential(nn.Linear(self.in_features, 32 * (H // 4) * (W // 4)), nn.ReLU())
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, C, 3, stride=1, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        C, H, W = self.out_shape
        batch = z.shape[:-1]
        h = self.head(z.reshape(-1, self.in_features)).reshape(-1, 32, H // 4, W // 4)
        return self.deconvs(h).reshape(*batch, C, H, W)
