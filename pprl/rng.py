"""Seeded randomness without global side effects.

Pyro and torch sample from torch's global generators. :func:`seeded` runs a block with them
seeded and restores every one afterwards — the CPU generator and, where CUDA is available, each
device's — so no public pprl call changes the caller's random state. (``torch.manual_seed``
also reseeds CUDA, so forking the CPU generator alone would leak into a GPU user's stream.)
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int):
    """``with seeded(s): ...`` — torch's global RNGs seeded by ``s`` inside, restored on exit."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def numpy_and_random_restored():
    """Restore numpy's and Python's global RNG states on exit: for third-party code that draws from
    them (importing JAX the first time does)."""
    import random

    import numpy as np

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
