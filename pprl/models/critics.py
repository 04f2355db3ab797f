r"""Critics f(x, y) for the MI bounds of :mod:`pprl.inference.bounds`.

A critic maps a paired batch ``x [..., K, dx]``, ``y [..., K, dy]`` to the full score matrix

    scores[..., i, j] = f(x_i, y_j)        ([..., K, K]; positives on the diagonal),

in one vectorised pass (no Python loop over pairs). Leading dimensions broadcast. Poole et al.
2019 (Sec. 4) compare the two neural families here: *separable* critics f(x, y) = g(x)ᵀh(y)
cost one K×K matrix product after K + K network evaluations, *concat* (joint) critics
f(x, y) = MLP([x, y]) evaluate a network on all K² pairs and are more expressive.

Device and dtype: every constructor takes ``device=`` and ``dtype=`` (forwarded to its
parameters); ``.to(...)`` works as for any ``torch.nn.Module``. Inputs must match the
critic's dtype and device.
"""
from __future__ import annotations

import inspect
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ACTIVATIONS

__all__ = ["SeparableCritic", "ConcatCritic", "BilinearCritic", "CRITICS", "make_critic"]


def _check_dim(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def _check_hidden(hidden, owner: str) -> tuple[int, ...]:
    if isinstance(hidden, int):
        hidden = (hidden,)
    try:
        widths = tuple(hidden)
    except TypeError:
        raise ValueError(f"{owner}: hidden must be a sequence of layer widths, got {hidden!r}") from None
    for w in widths:
        _check_dim(w, "every hidden width", owner)
    return widths


def _check_activation(activation: str, owner: str):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]


def _check_inputs(x: torch.Tensor, y: torch.Tensor, dx: int, dy: int, owner: str) -> None:
    for name, t, d in (("x", x, dx), ("y", y, dy)):
        if not isinstance(t, torch.Tensor) or t.dim() < 2 or t.shape[-1] != d:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{owner}: {name} must be a [..., K, {d}] tensor, got {shape}")


class _MLP(nn.Module):
    """Plain MLP: Linear layers with ``activation`` between them (none after the last)."""

    def __init__(self, sizes: Sequence[int], activation, device=None, dtype=None):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, device=device, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation

    def forward(self, h: torch.Tensor, skip_first: bool = False) -> torch.Tensor:
        """``skip_first``: ``h`` is already the first layer's pre-activation."""
        for i, layer in enumerate(self.layers):
            if i > 0:
                h = self.activation(h)
            if i > 0 or not skip_first:
                h = layer(h)
        return h


class SeparableCritic(nn.Module):
    r"""Separable critic f(x, y) = g(x)ᵀ h(y) (Poole et al. 2019; CPC-style).

    g and h are MLPs ``dx → hidden… → embed_dim`` and ``dy → hidden… → embed_dim``;
    scores = g(X) h(Y)ᵀ, one matrix product, so the K² scores cost K + K network passes.
    """

    def __init__(self, dx: int, dy: int, hidden: Sequence[int] = (256, 256), embed_dim: int = 32,
                 activation: str = "relu", *, device=None, dtype=None):
        super().__init__()
        owner = "SeparableCritic"
        self.dx, self.dy = _check_dim(dx, "dx", owner), _check_dim(dy, "dy", owner)
        widths = _check_hidden(hidden, owner)
        _check_dim(embed_dim, "embed_dim", owner)
        act = _check_activation(activation, owner)
        self.g = _MLP([dx, *widths, embed_dim], act, device, dtype)
        self.h = _MLP([dy, *widths, embed_dim], act, device, dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x [..., K, dx]``, ``y [..., K, dy]`` → scores ``[..., K, K]`` with scores[i, j] = g(x_i)·h(y_j)."""
        _check_inputs(x, y, self.dx, self.dy, "SeparableCritic")
        return self.g(x) @ self.h(y).mT


class ConcatCritic(nn.Module):
    r"""Concat (joint) critic f(x, y) = MLP([x, y]) on all K² pairs (Belghazi et al. 2018;
    Poole et al. 2019).

    Batched without materialising the K² concatenations: the first layer is affine, so
    W [x_i; y_j] + b = (W_x x_i + b) + W_y y_j is an outer sum of a ``[K, H]`` and a ``[K, H]``
    matrix; the remaining layers then act on the ``[..., K, K, H]`` pair features.
    """

    def __init__(self, dx: int, dy: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 *, device=None, dtype=None):
        super().__init__()
        owner = "ConcatCritic"
        self.dx, self.dy = _check_dim(dx, "dx", owner), _check_dim(dy, "dy", owner)
        widths = _check_hidden(hidden, owner)
        act = _check_activation(activation, owner)
        self.net = _MLP([dx + dy, *widths, 1], act, device, dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x [..., K, dx]``, ``y [..., K, dy]`` → scores ``[..., K, K]`` with scores[i, j] = MLP([x_i, y_j])."""
        _check_inputs(x, y, self.dx, self.dy, "ConcatCritic")
        first = self.net.layers[0]
        hx = F.linear(x, first.weight[:, :self.dx], first.bias)          # [..., K, H]
        hy = F.linear(y, first.weight[:, self.dx:])                      # [..., K, H]
        pre = hx.unsqueeze(-2) + hy.unsqueeze(-3)                        # [..., K, K, H]
        return self.net(pre, skip_first=True).squeeze(-1)


class BilinearCritic(nn.Module):
    r"""Bilinear critic f(x, y) = xᵀ W y; scores = X W Yᵀ.

    For jointly Gaussian (x, y) the log density ratio log r is quadratic and its x–y interaction
    is exactly bilinear, so this is the simplest useful critic on Gaussian problems (it cannot
    represent the x-only and y-only quadratic terms). W starts uniform in ±1/√dx.
    """

    def __init__(self, dx: int, dy: int, *, device=None, dtype=None):
        super().__init__()
        self.dx, self.dy = _check_dim(dx, "dx", "BilinearCritic"), _check_dim(dy, "dy", "BilinearCritic")
        bound = dx ** -0.5
        self.weight = nn.Parameter(torch.empty(dx, dy, device=device, dtype=dtype).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x [..., K, dx]``, ``y [..., K, dy]`` → scores ``[..., K, K]`` with scores[i, j] = x_iᵀ W y_j."""
        _check_inputs(x, y, self.dx, self.dy, "BilinearCritic")
        return (x @ self.weight) @ y.mT


_CRITIC_CLASSES = {"separable": SeparableCritic, "concat": ConcatCritic, "bilinear": BilinearCritic}
CRITICS: tuple[str, ...] = tuple(_CRITIC_CLASSES)


def make_critic(name: str, dx: int, dy: int, **options) -> nn.Module:
    """Build a critic by name (one of :data:`CRITICS`), e.g. ``make_critic("concat", 2, 2, hidden=(64,))``.

    ``options`` are the class's keyword arguments (hidden, embed_dim, activation, device, dtype);
    unknown names or options raise ValueError naming what is allowed.
    """
    if name not in _CRITIC_CLASSES:
        raise ValueError(f"unknown critic {name!r}; allowed: {', '.join(CRITICS)}")
    cls = _CRITIC_CLASSES[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "dx", "dy")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"critic {name!r} got unknown option(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return cls(dx, dy, **options)
