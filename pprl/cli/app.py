"""The ``pprl`` command line: ``validate | collect | fit | compare | nuts | diagnose | train | sweep | offline | dataset | mi | empowerment | demo``.

Bad input (a malformed spec, a missing or malformed data file, an unknown environment, a device
this machine lacks) prints one line ``pprl: error: ...`` and exits with status 2; nothing already
written is touched, because inputs are all checked before any output is written and outputs are
written atomically. Anything else (a bug) keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pprl
from pprl import FitDiverged, SpecError, __version__

from . import collect, compare, dataset, demo, diagnose, empowerment, fit, mi, nuts, offline, sweep, train, validate
from .common import CLIError, HelpFormatter

_PACKAGE = Path(pprl.__file__).resolve().parent
COMMANDS = (validate, collect, fit, compare, nuts, diagnose, train, sweep, offline, dataset, mi, empowerment, demo)  # each: add_parser(subparsers), run(args)

DESCRIPTION = ("pprl: probabilistic programming for information-theoretic RL. Declare Bayesian dynamics "
               "models and variational families as YAML specs, fit and compare them, estimate mutual "
               "information, and train PPO with intrinsic rewards such as VIME.")
EPILOG = ("Run 'pprl COMMAND --help' for a command's options. Bad input is one 'pprl: error: ...' line "
          "and exit status 2; an interrupted run exits with status 130.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pprl", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"pprl {__version__}",
                        help="print pprl's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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


def _raised_by_pprl(exc: BaseException) -> bool:
    """Whether pprl's own code raised ``exc`` (an input check), not a library underneath it (a bug
    or a case pprl does not check yet, which keeps its traceback)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # pprl's own warnings as one line each (restored on exit)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return args.func(args)
    except (CLIError, SpecError, FileNotFoundError, FileExistsError, FitDiverged, ValueError) as exc:
        if type(exc) not in (CLIError, SpecError, FitDiverged) and isinstance(exc, ValueError) \
                and not _raised_by_pprl(exc):
            raise
        print(f"pprl: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pprl: interrupted", file=sys.stderr)
        return 130
