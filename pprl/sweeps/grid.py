"""A sweep's grid: seeds (``0-9``, ``0,3,5``), settings (``intrinsic.eta=0.01,0.05``: a dotted path
into the experiment spec and its values, read as YAML) and the trials of their product, each an
experiment spec with its overrides applied and a run directory of its own."""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..rl.experiment import load_experiment
from ..spec import SpecError

__all__ = ["Trial", "parse_seeds", "parse_setting", "make_trials"]


@dataclass(frozen=True)
class Trial:
    setting: str          # "intrinsic.eta=0.01" (joined with "," for several paths), "" with no --set
    overrides: tuple      # ((path, value), ...)
    seed: int
    spec: dict            # the experiment with the overrides applied (validated)
    run_dir: Path


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` → 0..9, ``"0,3,5"`` → [0, 3, 5], ``"2-4,7"`` → [2, 3, 4, 7] (order kept, no repeats)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"seeds must look like 0-9 or 0,3,5 (non-negative, ranges ascending), got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def parse_setting(text: str) -> tuple[str, list]:
    """``"intrinsic.eta=0.01,0.05"`` → ("intrinsic.eta", [0.01, 0.05]); each value is read as YAML."""
    path, sep, values = str(text).partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", path.strip()) or not values.strip():
        raise ValueError(f"--set must look like section.field=v1,v2 (e.g. intrinsic.eta=0.01,0.05), got {text!r}")
    return path.strip(), [_value(v) for v in values.split(",")]


def _value(text: str):
    """A value as YAML reads it, and '1e-3' (a string to YAML 1.1) as the number it means."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _apply(spec: dict, path: str, value) -> dict:
    out = copy.deepcopy(spec)
    node, keys = out, path.split(".")
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise SpecError(f"--set {path}: the experiment has no mapping '{key}' on that path")
        node = node[key]
    node[keys[-1]] = value
    return out


def _label(value) -> str:
    return re.sub(r"[^\w.+-]", "_", str(value))


def make_trials(experiment: dict, seeds: list[int], settings: list[tuple[str, list]], out_dir) -> list[Trial]:
    """Every (setting combination, seed), its spec validated before anything runs (one SpecError
    naming the override otherwise), its run directory ``out_dir/<path=value,...>/seed<k>``."""
    out, trials = Path(out_dir), []
    combos = itertools.product(*[[(path, v) for v in values] for path, values in settings]) if settings else [()]
    for combo in combos:
        spec = experiment
        for path, value in combo:
            spec = _apply(spec, path, value)
        try:
            load_experiment(spec)
        except SpecError as e:
            raise SpecError(f"--set {', '.join(f'{p}={v}' for p, v in combo)}: {e}") from None
        setting = ",".join(f"{p}={v}" for p, v in combo)
        folder = out / (",".join(f"{p}={_label(v)}" for p, v in combo) or "default")
        trials += [Trial(setting, tuple(combo), seed, spec, folder / f"seed{seed}") for seed in seeds]
    return trials
