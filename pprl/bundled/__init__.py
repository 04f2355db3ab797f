"""The YAML specs that ship with pprl, found by name from any working directory.

They live at the repository's top level (``models/``, ``inference/``, ``examples/``,
``channels/``: what users
read and copy); ``pprl/bundled/<kind>`` links to those folders, so an editable install reads
them in place and a wheel carries them as package data.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KINDS = ("models", "inference", "examples", "channels")


def bundled(kind: str) -> dict[str, Path]:
    """``{name: path}`` of the shipped ``kind`` specs (``models``, ``inference`` or ``examples``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of spec {kind!r}; allowed: {', '.join(KINDS)}")
    folder = Path(str(files(__name__) / kind))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find_bundled(kind: str, ref: str) -> Path | None:
    """The shipped spec that ``ref`` names — ``NAME``, ``NAME.yaml`` or ``KIND/NAME.yaml`` — or None."""
    parts = Path(ref).parts
    if len(parts) == 2 and parts[0] == kind:
        ref = parts[1]
    elif len(parts) != 1:
        return None
    name = ref[:-5] if ref.endswith(".yaml") else ref
    return bundled(kind).get(name)
