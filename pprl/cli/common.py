"""Helpers the commands share: the user-facing error, argument types, atomic JSON, threads, data."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pprl import Transitions


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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


def set_threads(n: int) -> None:
    """PPO's and the BNN's tensors are small: one torch thread is fastest, and more threads
    spin-wait badly when other processes share the cores (measured 10-60× slower updates)."""
    import torch

    torch.set_num_threads(n)


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """The data / output / budget options shared by ``fit`` and ``compare``."""
    p.add_argument("--data", required=True, help="training transitions (.npz from `pprl collect`)")
    p.add_argument("--test-data", help="held-out transitions; default: a split of --data")
    p.add_argument("--test-fraction", type=fraction, default=0.2, help="held-out share when no --test-data")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--steps", type=positive_int, help="SVI steps (default: the inference spec's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def train_test(args) -> tuple[Transitions, Transitions]:
    """``--data`` and ``--test-data``, or a seeded split of ``--data`` by ``--test-fraction``."""
    data = Transitions.load(args.data)
    if args.test_data:
        return data, Transitions.load(args.test_data)
    return data.split(args.test_fraction, seed=args.seed)
