"""Channels declared in YAML (``channels/*.yaml``), like the dynamics models:

    channel: gridworld            # layout (list of strings: '#' wall), slip
    channel: linear_gaussian      # A [n, n], B [n, m], noise_std, power (E‖a‖² ≤ power)
    channel: pendulum             # noise_std, noise (final | step), action_repeat, power
    channel: learned              # posterior (a saved Posterior, path relative to the YAML file),
                                  # action_low, action_high, theta (mean | sample), num_thetas,
                                  # noise, noise_scale or noise_std (declared noise in the
                                  # observation's units instead of the model's), action_repeat, power

``power`` of a continuous channel (pendulum, learned) is optional: the linearised estimate's
E‖a − ā‖² budget per action (default: a uniform box, Σ (high − low)²/12), set as the attribute
``power_per_action`` (None when not declared).

:func:`load_channel` resolves a path or the name of a shipped channel and returns the channel
object; every problem is one :class:`~pprl.spec.SpecError` naming the file and the field.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..bundled import bundled, find_bundled
from ..spec import SpecError, _check_choice, _check_keys, _check_positive, _check_type, _read_yaml
from .channels import GridWorld, LinearGaussianChannel
from .continuous import NOISE, PendulumChannel, PosteriorChannel

CHANNEL_TYPES = ("gridworld", "linear_gaussian", "pendulum", "learned")
_CONTINUOUS = {"channel", "noise", "action_repeat", "power"}
FIELDS = {"gridworld": {"channel", "layout", "slip"},
          "linear_gaussian": {"channel", "A", "B", "noise_std", "power"},
          "pendulum": _CONTINUOUS | {"noise_std"},
          "learned": _CONTINUOUS | {"posterior", "action_low", "action_high", "theta", "num_thetas", "noise_scale",
                                 "noise_std"}}


def _continuous(data: dict, src: str, base: Path | None):
    """A pendulum or learned channel (module docstring)."""
    kind = data["channel"]
    common = {"noise": _check_choice(_check_type(data.get("noise", "final"), str, "noise", src), NOISE, "noise", src),
              "action_repeat": _check_positive(_check_type(data.get("action_repeat", 1), int, "action_repeat", src),
                                               "action_repeat", src)}
    power = data.get("power")
    power = None if power is None else _check_positive(_check_type(power, float, "power", src), "power", src)
    if kind == "pendulum":
        noise_std = _check_positive(_check_type(data.get("noise_std", 0.05), float, "noise_std", src), "noise_std", src)
        channel = PendulumChannel(noise_std, **common)
    else:
        for required in ("posterior", "action_low", "action_high"):
            if required not in data:
                raise SpecError(f"{src}: field '{required}' is required for channel 'learned'")
        from ..inference.posterior import load_posterior  # here: pprl.inference imports pprl.data, which can import us

        ref = Path(_check_type(data["posterior"], str, "posterior", src))
        path = ref if ref.is_absolute() or base is None else base / ref
        try:
            posterior = load_posterior(path)
        except (FileNotFoundError, ValueError) as exc:
            raise SpecError(f"{src}: field 'posterior': {exc}") from None
        theta = _check_choice(_check_type(data.get("theta", "mean"), str, "theta", src), ("mean", "sample"), "theta",
                              src)
        noise_std = data.get("noise_std")
        if noise_std is not None:
            noise_std = _check_positive(_check_type(noise_std, float, "noise_std", src), "noise_std", src)
        try:
            channel = PosteriorChannel(posterior, data["action_low"], data["action_high"], theta=theta,
                                       noise_std=noise_std,
                                       num_thetas=_check_type(data.get("num_thetas", 8), int, "num_thetas", src),
                                       noise_scale=_check_type(data.get("noise_scale", 1.0), float, "noise_scale",
                                                               src), **common)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise SpecError(f"{src}: channel 'learned': {exc}") from None
    channel.power_per_action = power
    return channel


def parse_channel(data: dict, src: str = "<dict>", base: Path | None = None):
    """A channel from a mapping (module docstring); for ``linear_gaussian`` its ``power`` is set as
    an attribute of the returned channel."""
    if not isinstance(data, dict) or "channel" not in data:
        raise SpecError(f"{src}: missing field 'channel'; allowed: {', '.join(CHANNEL_TYPES)}")
    kind = _check_choice(data["channel"], CHANNEL_TYPES, "channel", src)
    _check_keys(data, FIELDS[kind], "", src)
    if kind in ("pendulum", "learned"):
        return _continuous(data, src, base)
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
    return parse_channel(_read_yaml(path), str(path), path.parent)
