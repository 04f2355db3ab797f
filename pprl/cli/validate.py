"""``pprl validate FILE...``: check model, inference and experiment YAML specs, one line per file."""
from __future__ import annotations

import sys

from pprl import ExperimentSpec, InferenceSpec, ModelSpec, SpecError, load_spec

from .common import add_parser as _add_parser


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "validate", help="check model, inference and experiment YAML specs",
                    description="Check YAML specs of every kind pprl reads: model specs (field 'type'), "
                                "inference specs (field 'family') and experiment specs (fields 'env', "
                                "'learner', 'intrinsic'). Prints 'ok' per valid file and one error line per "
                                "invalid one; exit status 2 if any is invalid.")
    p.add_argument("files", nargs="+", help="spec files to check")
    p.set_defaults(func=run)


def describe(spec) -> str:
    """What a valid spec is, in a few words."""
    if isinstance(spec, ModelSpec) or getattr(spec, "type", None) == "latent":  # latent: a LatentSpec
        return f"model spec: {spec.type}"
    if isinstance(spec, InferenceSpec):
        return f"inference spec: {spec.family}"
    if isinstance(spec, ExperimentSpec):
        parts = [f"experiment: {spec.name}", f"learner {spec.learner.type}", f"intrinsic {spec.intrinsic.type}"]
        if spec.auxiliary:
            parts.append("auxiliary " + ", ".join(a.type for a in spec.auxiliary))
        return ", ".join(parts)
    if hasattr(spec, "dataset"):  # an OfflineSpec
        return f"offline experiment: {spec.name}, learner {spec.learner.type}, dataset {spec.dataset}"
    if hasattr(spec, "cells"):
        return f"channel spec: gridworld, {len(spec.cells)} cells, slip {spec.slip:g}"
    return f"channel spec: {type(spec).__name__}"


def run(args) -> int:
    failed = 0
    for path in args.files:
        try:
            print(f"ok  {path}  ({describe(load_spec(path))})")
        except SpecError as exc:
            print(f"pprl: error: {str(exc).splitlines()[0]}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0
