"""The one entry point, `lstmtui`: the TUI by default, headless subcommands for scripts and CI.

Heavy imports (torch, textual) happen inside the command that needs them, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lstmtui import __version__
from lstmtui.core.errors import LstmtuiError

# subcommand name -> module under lstmtui.commands with add_parser(subparsers) and run(args) -> int
SUBCOMMANDS = {
    "train": "train",
    "generate": "generate",
    "profiles": "profiles",
    "bench": "bench",
    "cache": "cache",
    "completion": "completion",
    "ps": "ps",
    "stop": "stop",
    "attach": "attach",
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with lstmtui's error format: one line, `lstmtui: error: ...`, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"lstmtui: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the TUI's options plus the list of subcommands."""
    from lstmtui.commands import tui

    parser = tui.build_parser()
    parser.error = OneLineErrorParser.error.__get__(parser)  # one-line usage errors here too
    parser.add_argument("--version", action="version", version=f"lstmtui {__version__}")
    return parser


def build_subcommand_parser() -> argparse.ArgumentParser:
    """A parser holding every headless subcommand (their parsers inherit the one-line errors)."""
    parser = OneLineErrorParser(prog="lstmtui")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        mod = _command_module(module)
        if mod is not None:
            mod.add_parser(subparsers)
    return parser


def _command_module(module: str):
    try:
        return importlib.import_module(f"lstmtui.commands.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"lstmtui.commands.{module}":
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run lstmtui with the given arguments; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = None
    try:
        if argv and argv[0] in SUBCOMMANDS:
            args = build_subcommand_parser().parse_args(argv)
        else:
            args = build_parser().parse_args(argv)
        args.argv = argv  # lets a command tell typed options from defaults
        parser = getattr(args, "parser", None)  # the command's own parser: it knows which option sets which setting
        return int(args.handler(args) or 0)
    except LstmtuiError as exc:
        from lstmtui.commands.common import error_line

        print(f"lstmtui: error: {error_line(exc, parser)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lstmtui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # A closed pipe (`lstmtui generate | head`) is a normal end, not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
