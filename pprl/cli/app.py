"""The ``pprl`` command line: ``validate | collect | fit | compare | train | mi | demo``.

Bad input (a malformed spec, a missing file, an unknown environment) prints one line
``pprl: error: ...`` and exits with status 2; nothing already written is touched, because
inputs are all checked before any output is written and outputs are written atomically.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from pprl import FitDiverged, SpecError

from . import collect, compare, demo, fit, mi, train, validate
from .common import CLIError

COMMANDS = (validate, collect, fit, compare, train, mi, demo)  # each: add_parser(subparsers), run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pprl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _one_line_warnings(show):
    """pprl's own warnings as one line ``pprl: warning: ...``; others as Python shows them."""
    def show_warning(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("pprl."):
            print(f"pprl: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)
    return show_warning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # pprl's own warnings as one line each (restored on exit)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return args.func(args)
    except (CLIError, SpecError, FileNotFoundError, FileExistsError, ValueError, FitDiverged) as exc:
        print(f"pprl: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pprl: interrupted", file=sys.stderr)
        return 130
