"""``pprl validate FILE...``: check model / inference YAML specs, one line per file."""
from __future__ import annotations

import sys

from pprl import SpecError, load_spec


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("validate", help="check model/inference YAML specs")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=run)


def run(args) -> int:
    failed = 0
    for path in args.files:
        try:
            spec = load_spec(path)
            kind = "model" if hasattr(spec, "type") else "inference"
            detail = spec.type if kind == "model" else spec.family
            print(f"ok  {path}  ({kind} spec: {detail})")
        except SpecError as exc:
            print(f"pprl: error: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0
