"""`lstmtui bench`: measure this machine and print one table (optionally JSON) from one run."""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--corpus", type=Path, help="corpus for the training figures (default: ../shared/corpora/tinyshakespeare.txt if present, else the bundled sample)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time for the time-to-quality figures, for lstmtui and the baseline each (default: 5)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--only", metavar="SECTION,...", help="run only these sections: ceiling, training, quality, generation, tui, startup (default: all)")
    parser.add_argument("--corpus-gb", type=float, default=1.0, help="size of the generated corpus whose preparation is timed, 0 to skip (default: 1)")
    parser.add_argument("--snapshots", type=int, default=12, help="weight copies scored along each time-to-quality run (default: 12)")
    parser.add_argument("--no-baseline", action="store_true", help="time to quality for lstmtui only, without the seed-style baseline")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=run, parser=parser)
    return parser


def parse_sections(text: str | None) -> set[str] | None:
    """The --only list as a set, refusing unknown section names."""
    from lstmtui.core.bench import SECTIONS

    if not text:
        return None
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = sorted(chosen - set(SECTIONS))
    if unknown:
        raise ConfigError(f"--only: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return chosen


def format_value(value, unit: str) -> str:
    """A figure with sensible precision for its unit."""
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.2f}"
    if unit == "x faster":
        return f"{value:.1f}x"
    if unit in ("nats", "s"):
        return f"{value:.3f}"
    if unit == "ms":
        return f"{value:.1f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def render(results: dict, file=None) -> None:
    """Print the results as one rich table."""
    from rich.console import Console
    from rich.table import Table

    meta = results["meta"]
    table = Table(title=f"lstmtui bench: {meta['corpus']} ({meta['corpus_chars']:,} chars), {meta['minutes']:g} min, "
                        f"torch {meta['torch']}, {meta['threads']} threads", title_justify="left")
    for name, justify in (("section", "left"), ("measurement", "left"), ("value", "right"), ("unit", "left"),
                          ("target", "left"), ("met", "left"), ("detail", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in results["rows"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        table.add_row(r["section"], r["name"], format_value(r["value"], r["unit"]), r["unit"], r["target"], met, r["detail"])
    Console(file=file or sys.stdout, width=200).print(table)


def run(args: argparse.Namespace) -> int:
    """Run the suite, print the table, write JSON if asked."""
    from lstmtui.core.bench import run_bench

    only = parse_sections(args.only)
    if args.minutes <= 0:
        raise ConfigError(f"--minutes must be above 0, not {args.minutes:g}")
    if args.corpus_gb < 0:
        raise ConfigError(f"--corpus-gb must be 0 or more, not {args.corpus_gb:g}")
    if args.corpus is not None and not args.corpus.is_file():
        raise ConfigError(f"--corpus {args.corpus}: no such file")

    def log(message: str) -> None:
        if not args.quiet:
            print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.snapshots < 1:
        raise ConfigError(f"--snapshots must be 1 or more, not {args.snapshots}")
    results = run_bench(args.corpus, args.minutes, only, args.corpus_gb, log=log, snapshots=args.snapshots,
                        baseline=not args.no_baseline)
    render(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0
