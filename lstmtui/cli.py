"""The one entry point, `lstmtui`: the TUI by default, headless subcommands for scripts and CI.

Heavy imports (torch, textual) happen inside the command that needs them, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lstmtui import __version__
from lstmtui.core.errors import ConfigError, LstmtuiError

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


GLOBAL_OPTIONS_NOTE = (
    "Options may come before COMMAND (`lstmtui --home DIR train CORPUS`); a corpus file named like a "
    "command is given with a path (`lstmtui ./train`)."
)
NAME_DESTS = {"profile": "profile name", "name": "name"}  # an empty one is a mistake, never "none given"


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with lstmtui's error format (one line, `lstmtui: error: ...`, exit status 2) and no abbreviations.

    Abbreviated options (``--warm`` for ``--warmup-steps``) are refused: the code that tells typed
    options from defaults matches whole option names.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"lstmtui: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the TUI's options plus the list of subcommands."""
    from lstmtui.commands import tui

    parser = tui.build_parser()
    parser.error = OneLineErrorParser.error.__get__(parser)  # one-line usage errors here too
    parser.add_argument("--version", action="version", version=f"lstmtui {__version__}")
    parser.epilog = f"{parser.epilog or ''}\n{GLOBAL_OPTIONS_NOTE}".strip()
    no_abbreviations(parser)
    return parser


def build_subcommand_parser() -> argparse.ArgumentParser:
    """A parser holding every headless subcommand (their parsers inherit the one-line errors)."""
    parser = OneLineErrorParser(prog="lstmtui")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        mod = _command_module(module)
        if mod is not None:
            mod.add_parser(subparsers)
    no_abbreviations(parser)
    return parser


def no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Refuse abbreviated options in ``parser`` and every subcommand parser below it."""
    parser.allow_abbrev = False
    for action in parser._actions:  # argparse has no public way to reach its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                no_abbreviations(sub)


def command_first(argv: list[str]) -> list[str] | None:
    """argv with its subcommand moved to the front when options come before it, or None when it names none.

    The first word that is neither an option nor an option's value decides: a subcommand's name
    means that command (`lstmtui --home D train c.txt` is `lstmtui train --home D c.txt`); anything
    else is the TUI's corpus.
    """
    from lstmtui.commands import tui

    options = tui.build_parser()._option_string_actions  # argparse keeps no public lookup by option string
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return None
        if word.startswith("-") and len(word) > 1:
            action = options.get(word)
            takes_value = action is not None and action.nargs != 0 and "=" not in word
            i += 2 if takes_value else 1
            continue
        if word in SUBCOMMANDS:
            return [word, *argv[:i], *argv[i + 1 :]]
        return None
    return None


def check_names(args: argparse.Namespace) -> None:
    """Refuse an empty profile or run name: "" is a mistake, never "no name given"."""
    for dest, what in NAME_DESTS.items():
        if getattr(args, dest, None) == "":
            raise ConfigError(f"the {what} is empty; give one", dest)


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
        command = argv if argv and argv[0] in SUBCOMMANDS else command_first(argv)
        if command is not None:
            argv = command
            args = build_subcommand_parser().parse_args(argv)
        else:
            args = build_parser().parse_args(argv)
        args.argv = argv  # lets a command tell typed options from defaults
        parser = getattr(args, "parser", None)  # the command's own parser: it knows which option sets which setting
        check_names(args)
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
