"""Helpers the commands share: the user-facing error, argument types and shared options (threads,
device, the fit data), atomic JSON, loading data with errors that name the file."""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np

from pprl import Transitions
from pprl.threads import DEFAULT_THREADS


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with ``(default: X)`` added to every option that has a default worth
    showing (not None, not False) unless its help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or hidden or not action.option_strings:
            return text
        default = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else action.default
        return f"{text} (default: {default})"


def add_parser(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser with :class:`HelpFormatter`."""
    return subparsers.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as JSON atomically (a temporary file renamed over ``path``)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``, passed to the API as ``threads=`` (torch's global setting is left alone)."""
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS,
                   help="torch CPU threads for this command (default: %(default)s). pprl's models are "
                        "small, so one thread is fastest, and more threads spin-wait when other processes "
                        "share the cores; the count also changes floating-point summation order, so a seeded "
                        "run gives the same numbers only at the same thread count")


def add_device_option(p: argparse.ArgumentParser, components: bool = False) -> None:
    extra = "; or per component, e.g. learner=cpu,intrinsic=cuda" if components else ""
    p.add_argument("--device", default="cpu", help=f"torch device: cpu, cuda or cuda:N{extra}")


def component_device(text: str) -> str | dict:
    """``--device`` of ``train``: one device, or ``learner=D,intrinsic=D`` (each checked)."""
    if "=" not in text:
        return check_device(text)
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() not in ("learner", "intrinsic") or not value.strip():
            raise CLIError(f"--device {text!r}: give one device, or learner=DEVICE,intrinsic=DEVICE")
        out[key.strip()] = check_device(value.strip())
    return out


def add_seed_option(p: argparse.ArgumentParser, what: str = "everything random") -> None:
    p.add_argument("--seed", type=int, default=0, help=f"random seed for {what}; the same seed gives the same numbers")


def add_quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def check_device(text: str) -> str:
    """``--device`` checked before anything runs or is written: cpu, or a CUDA device this machine has."""
    import torch

    from pprl.inference.svi import _resolve_device  # the API's own check, so both accept the same devices

    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise CLIError(f"--device {text!r} is not a device pprl runs on; allowed: cpu, cuda, cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {text!r}: CUDA is not available on this machine; use --device cpu")
    try:
        _resolve_device(device)
    except ValueError as exc:
        raise CLIError(f"--device {text!r}: {exc}") from None
    return text


def output_parent(path: str | Path) -> Path:
    """``path``'s directory, created if missing (for an output file such as ``-o sub/dir/data.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """The data / output / budget options shared by ``fit`` and ``compare``."""
    p.add_argument("--data", required=True,
                   help="training transitions: an .npz with float arrays obs, act, next_obs [N, d] and reward "
                        "[N], bool arrays terminated, truncated [N] (as `pprl collect` writes)")
    p.add_argument("--test-data", help="held-out transitions in the same format (default: a seeded split of --data)")
    p.add_argument("--test-fraction", type=fraction, default=0.2, help="held-out share of --data when no --test-data")
    p.add_argument("-o", "--output", required=True, help="output directory (created if missing)")
    p.add_argument("--steps", type=positive_int, help="SVI steps (default: the inference spec's)")
    add_seed_option(p, "the split, the initial guide and the minibatches")
    add_device_option(p)
    add_threads_option(p)
    add_quiet_option(p)


def train_test(args) -> tuple[Transitions, Transitions]:
    """``--data`` and ``--test-data``, or a seeded split of ``--data`` by ``--test-fraction``."""
    data = Transitions.load(args.data)
    if args.test_data:
        test = Transitions.load(args.test_data)
        if (test.obs_dim, test.act_dim) != (data.obs_dim, data.act_dim):
            raise CLIError(f"--test-data {args.test_data} has obs_dim {test.obs_dim}, act_dim {test.act_dim} but "
                           f"--data {args.data} has obs_dim {data.obs_dim}, act_dim {data.act_dim}")
        return data, test
    return data.split(args.test_fraction, seed=args.seed)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read eagerly; a missing file or one that is not an ``.npz``
    archive of plain arrays is one CLIError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"no such file: {path}")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        arrays = None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise CLIError(f"{path}: not an .npz archive of arrays (numpy.savez writes one)")
    try:
        with arrays:
            return {name: arrays[name] for name in arrays.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):  # e.g. an object array, a damaged member
        raise CLIError(f"{path}: not an .npz archive of plain numeric arrays (numpy.savez writes one)") from None
