"""Reading a checkpoint file safely (``torch.load(..., weights_only=True)``), with one clear error
for a missing file or one that is not a checkpoint; the posterior loaders build on it."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import torch


def read_checkpoint(path: str | Path, what: str) -> dict:
    """The state dict saved at ``path``; ``what`` names the expected kind in the errors
    (``FileNotFoundError`` for a missing file, ``ValueError`` for anything torch cannot load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, KeyError, RuntimeError, ValueError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a pprl {what} checkpoint (torch.load failed: {reason[:120]})") from None
