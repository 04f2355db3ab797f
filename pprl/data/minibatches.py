"""Minibatch indices for the training loops: epochs of a random permutation of the N rows, cut into
batches of M; a new permutation starts when fewer than M rows are left in the current one (those
are skipped), so every batch has exactly M distinct rows."""
from __future__ import annotations

from typing import Iterator

import torch


def shuffled_batches(n: int, size: int, device=None, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """An endless stream of index tensors ``[size]`` over ``range(n)`` (``size`` ≤ ``n``). The
    permutations come from ``generator``, or from the global torch RNG when None: then call it
    inside :func:`pprl.rng.seeded` so that the caller's RNG state is restored and the same seed
    gives the same batches."""
    if not 1 <= size <= n:
        raise ValueError(f"batch size must be in [1, {n}], got {size}")
    while True:
        order = torch.randperm(n, device=device, generator=generator)
        for start in range(0, n - size + 1, size):
            yield order[start:start + size]
