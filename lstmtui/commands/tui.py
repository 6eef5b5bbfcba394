"""`lstmtui [CORPUS...]`: open the Textual app (the default command)."""

from __future__ import annotations

import argparse

from lstmtui.commands.common import (
    add_corpus_options,
    add_home_option,
    add_training_options,
    cleaning_from_args,
    config_from_args,
    overrides_from_args,
)

EPILOG = """headless commands:
  lstmtui train CORPUS        train without the TUI (rich progress or plain lines)
  lstmtui generate --profile NAME   stream text from a trained profile
  lstmtui profiles ...        list, show, rm, rename, export, import profiles
  lstmtui bench               measure speed and time-to-quality on this machine
  lstmtui cache ...           list, clear or bound the corpus cache
  lstmtui completion SHELL    print a bash, zsh or fish completion script
run `lstmtui COMMAND --help` for each one's options."""


def build_parser() -> argparse.ArgumentParser:
    """Parser for the TUI: corpus paths, an optional profile, and the training options."""
    parser = argparse.ArgumentParser(
        prog="lstmtui",
        description="Train a character-level LSTM on any text and watch it learn and write, live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "corpus",
        nargs="*",
        help="text file(s) or a directory to train on (default: the bundled sample corpus)",
    )
    parser.add_argument("--profile", help="open this saved profile (train it further or generate from it)")
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="screen refreshes per second; lower it (e.g. 10) on slow SSH links "
        "(default: $LSTMTUI_FPS, else $TEXTUAL_FPS, else 30)",
    )
    add_home_option(parser)
    add_corpus_options(parser)
    add_training_options(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the Textual app."""
    from lstmtui.tui.launch import launch  # textual is imported only when the app starts

    config = config_from_args(args)
    # typed options override an opened profile's settings, and --time-budget's planner keeps them
    return launch(args, config, cleaning_from_args(args), overrides_from_args(args))
