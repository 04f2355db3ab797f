"""The ``pprl`` command line: one thin module per command over the public API.

``app.py`` assembles the parser and turns bad input into one ``pprl: error: ...`` line (exit 2);
``common.py`` holds the helpers the commands share; a new command is a new module with
``add_parser(subparsers)`` and ``run(args) -> int`` plus one line in ``app.COMMANDS``.
"""
from .app import build_parser, main
from .common import CLIError

__all__ = ["main", "build_parser", "CLIError"]
