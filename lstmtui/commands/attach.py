"""`lstmtui attach [NAME]`: open the TUI on a running run (the only one, or one picked from a list)."""

from __future__ import annotations

import argparse
import sys

from lstmtui.service import RunRecord, ServiceError, find_run, list_runs


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `attach`."""
    parser = subparsers.add_parser(
        "attach",
        help="open the TUI on a running run",
        description="Open the TUI on a run that trains in another terminal or in the background: its whole loss "
        "curve, status and samples, and the training keys (p pause, x stop, s save, g sample, l learning rate) "
        "act on it. q or d leaves it training. Several terminals may attach to one run.",
    )
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help="the run's name as `lstmtui ps` lists it (default: the only run)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="screen refreshes per second; lower it (e.g. 10) on slow SSH links (default: $LSTMTUI_FPS, else 30)",
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Find the run and open the app on it."""
    record = find_run(args.name) if args.name else pick(list_runs())
    if record is None:
        return 0
    from lstmtui.tui.launch import attach

    return attach(record, args)


def pick(runs: list[RunRecord]) -> RunRecord | None:
    """The only run, or the one the user picks from a numbered list (None: they picked none)."""
    if not runs:
        raise ServiceError("no run is training (start one: lstmtui CORPUS, or lstmtui train CORPUS --detach)")
    if len(runs) == 1:
        return runs[0]
    names = ", ".join(r.name for r in runs)
    if not sys.stdin.isatty():
        raise ServiceError(f"several runs are training ({names}): name one, lstmtui attach NAME")
    from lstmtui.commands.ps import describe

    print("runs training now:")
    for i, record in enumerate(runs, 1):
        row = describe(record)
        step = "-" if row["step"] is None else f"{row['step']:,}"
        print(f"  {i}  {record.name}  ({row['state']}, step {step}, pid {record.pid})")
    while True:
        try:
            answer = input(f"attach to which? [1-{len(runs)}, Enter for none]: ").strip()
        except EOFError:
            return None
        if not answer:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(runs):
            return runs[int(answer) - 1]
        if any(r.name == answer for r in runs):
            return next(r for r in runs if r.name == answer)
        print(f"type a number from 1 to {len(runs)} or a run's name")
