"""Channels declared in YAML (``channels/*.yaml``), like the dynamics models:

    channel: gridworld            # layout (list of strings: '#' wall), slip
    channel: linear_gaussian      # A [n, n], B [n, m], noise_std, power (E‖a‖² ≤ power)

:func:`load_channel` resolves a path or the name of a shipped channel and returns the channel
object; every problem is one :class:`~pprl.spec.SpecError` naming the file and the field.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..bundled import bundled, find_bundled
from ..spec import SpecError, _check_choice, _check_keys, _check_positive, _check_type, _read_yaml
from .channels import GridWorld, LinearGaussianChannel

CHANNEL_TYPES = ("gridworld", "linear_gaussian")
FIELDS = {"gridworld": {"channel", "layout", "slip"},
          "linear_gaussian": {"channel", "A", "B", "noise_std", "power"}}


def parse_channel(data: dict, src: str = "<dict>"):
    """A channel from a mapping (module docstring); for ``linear_gaussian`` its ``power`` is set as
    an attribute of the returned channel."""
    if not isinstance(data, dict) or "channel" not in data:
        raise SpecError(f"{src}: missing field 'channel'; allowed: {', '.join(CHANNEL_TYPES)}")
    kind = _check_choice(data["channel"], CHANNEL_TYPES, "channel", src)
    _check_keys(data, FIELDS[kind], "", src)
    if kind == "gridworld":
        layout = data.get("layout")
        if not isinstance(layout, list) or not layout or not all(isinstance(r, str) for r in layout):
            raise SpecError(f"{src}: field 'layout' must be a list of strings ('#' wall, any other character free)")
        slip = _check_type(data.get("slip", 0.0), float, "slip", src)
        if not 0 <= slip <= 1:
            raise SpecError(f"{src}: field 'slip' must be in [0, 1], got {slip}")
        try:
            return GridWorld(layout, slip)
        except ValueError as exc:
            raise SpecError(f"{src}: field 'layout': {exc}") from None
    for key in ("A", "B"):
        if key not in data:
            raise SpecError(f"{src}: field '{key}' is required for channel 'linear_gaussian'")
    try:
        A, B = (torch.tensor(data[k], dtype=torch.float64) for k in ("A", "B"))
        channel = LinearGaussianChannel(A, B, _check_positive(_check_type(data.get("noise_std", 1.0), float,
                                                                          "noise_std", src), "noise_std", src))
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{src}: fields 'A', 'B': {exc}") from None
    channel.power = _check_positive(_check_type(data.get("power", 1.0), float, "power", src), "power", src)
    return channel


def load_channel(ref: str | Path | dict):
    """A channel from a mapping, a YAML path or the name of a shipped channel (``open_grid``)."""
    if isinstance(ref, dict):
        return parse_channel(ref)
    path = Path(ref)
    if not path.is_file():
        shipped = find_bundled("channels", str(ref))
        if shipped is None:
            raise SpecError(f"{ref}: not a channel spec file or a shipped channel; shipped: "
                            f"{', '.join(bundled('channels'))}")
        path = shipped
    return parse_channel(_read_yaml(path), str(path))
