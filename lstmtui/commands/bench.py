"""`lstmtui bench`: measure this machine and print one table (optionally JSON) from one run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lstmtui.core.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `bench`."""
    parser = subparsers.add_parser(
        "bench",
        help="measure training, generation, the TUI and start-up on this machine",
        description="Run the performance suite and print one table; every figure comes from this one run.",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        metavar="FILE",
        help="text file the training, quality, generation and TUI figures use (default: tinyshakespeare.txt, "
        "the benchmark corpus, when a shared/corpora/ folder beside the lstmtui checkout holds it; "
        "else the sample corpus bundled with lstmtui)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=5.0,
        help="training time for the time-to-quality figures, for lstmtui and the baseline each (default: 5)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument(
        "--only",
        metavar="SECTION,...",
        help="run only these sections: ceiling, training, quality, generation, tui, service, startup (default: all)",
    )
    parser.add_argument(
        "--corpus-gb",
        type=float,
        default=1.0,
        help="size of the generated corpus whose preparation is timed, 0 to skip (default: 1)",
    )
    parser.add_argument(
        "--snapshots", type=int, default=12, help="weight copies scored along each time-to-quality run (default: 12)"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="time to quality for lstmtui only, without the seed-style baseline"
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="print the full table, details beside each figure, however wide it is "
        "(default: that table when the terminal fits it, else each detail on a line under its figure)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=run, parser=parser)
    return parser


def parse_sections(text: str | None) -> set[str] | None:
    """The --only list as a set, refusing unknown section names."""
    from lstmtui.bench.rows import SECTIONS

    if not text:
        return None
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = sorted(chosen - set(SECTIONS))
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return chosen


def run(args: argparse.Namespace) -> int:
    """Run the suite, print the table, write JSON if asked."""
    from lstmtui.bench.report import render, write_json
    from lstmtui.bench.runner import run_bench

    only = parse_sections(args.only)
    if args.minutes <= 0:
        raise ConfigError(f"--minutes must be above 0, not {args.minutes:g}")
    if args.corpus_gb < 0:
        raise ConfigError(f"--corpus-gb must be 0 or more, not {args.corpus_gb:g}")
    if args.corpus is not None and not args.corpus.is_file():
        raise ConfigError(f"--corpus {args.corpus}: no such file")
    if args.json is not None:
        from lstmtui.core.userfiles import check_output

        check_output(args.json, "--json")  # a directory or device is refused now, not after the whole run
    if args.snapshots < 1:
        raise ConfigError(f"--snapshots must be 1 or more, not {args.snapshots}")

    def log(message: str) -> None:
        if not args.quiet:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    results = run_bench(
        args.corpus,
        args.minutes,
        only,
        args.corpus_gb,
        log=log,
        snapshots=args.snapshots,
        baseline=not args.no_baseline,
    )
    render(results, wide=args.wide)
    if args.json:
        write_json(results, args.json)
    return 0
