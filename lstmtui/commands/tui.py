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
  lstmtui ps                  list the runs training now (in any terminal or none)
  lstmtui attach [NAME]       open the TUI on a running run (d detaches from it again)
  lstmtui stop NAME           stop a running run (it saves)
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
    parser.add_argument(
        "--profile",
        help="open this saved profile (train it further or generate from it; attach to it while it trains); "
        "with a corpus, train it on that corpus, or create it under this name",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="screen refreshes per second; lower it (e.g. 10) on slow SSH links "
        "(default: $LSTMTUI_FPS, else $TEXTUAL_FPS, else 30)",
    )
    parser.add_argument(
        "--on-hangup",
        choices=("detach", "stop"),
        default="detach",
        help="when the terminal hangs up (SIGHUP): detach keeps training in the background with the output going "
        "to the profile's log file (as d does); stop saves and exits with status 129 (default: detach)",
    )
    add_home_option(parser)
    add_corpus_options(parser)
    add_training_options(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the Textual app (on the run that trains --profile, if one does)."""
    from lstmtui.tui import launch  # textual is imported only when the app starts

    config = config_from_args(args)
    running = launch.running_run(args)
    if running is not None:
        return launch.attach(running, args)
    # Before the corpus options load numpy: the fork that lets `d` return the prompt needs one thread.
    from lstmtui.tui.background import fork_waiter

    fork_waiter()
    # typed options override an opened profile's settings, and --time-budget's planner keeps them
    return launch.launch(args, config, cleaning_from_args(args), overrides_from_args(args))
