"""The bench results as a table on a terminal of any width, and as JSON.

The full table (one line a measurement, its detail in the last column) is about 200 columns wide.
Where it does not fit, each section gets a heading and each detail its own line under the figure,
so nothing is squeezed into one-letter columns; ``wide`` prints the full table however wide it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from lstmtui.bench.rows import SECTIONS

COLUMNS = (
    ("section", "left"),
    ("measurement", "left"),
    ("value", "right"),
    ("unit", "left"),
    ("target", "left"),
    ("met", "left"),
    ("detail", "left"),
)
DETAIL_INDENT = 4
DETAIL_MIN_WIDTH = 40  # the full table is shown when its detail column gets this much room
MEASURE_WIDTH = 100_000  # measuring within this width gives the table's natural, unwrapped width


def format_value(value: float | None, unit: str) -> str:
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


def title(run: dict[str, Any]) -> str:
    """The table's heading: the corpus, the software, and only the settings the chosen sections use."""
    sections = run.get("sections") or list(SECTIONS)
    text = f"lstmtui bench: {run['corpus']} ({run['corpus_chars']:,} chars)"
    text += f", torch {run['torch']}, {run['threads']} threads"
    if len(sections) < len(SECTIONS):
        text += f"; sections: {', '.join(sections)}"
    if "quality" in sections:
        text += f"; {run['minutes']:g} min of training for each quality run"
    if run.get("device"):  # the device it trained on: a CPU's threads are named above
        text += f"; on {str(run['device']).split(' (')[0]}"
    return text


def _met(row: dict[str, Any]) -> str:
    return "" if row["met"] is None else ("yes" if row["met"] else "NO")


def full_table(results: dict[str, Any], details: bool = True):
    """Every column in one table: one line a measurement, the detail column wrapping where it must."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title(results["meta"])), title_justify="left")
    for name, justify in COLUMNS if details else COLUMNS[:-1]:
        table.add_column(name, justify=justify, overflow="fold", no_wrap=name != "detail")
    for r in results["rows"]:
        cells = [r["section"], r["name"], format_value(r["value"], r["unit"]), r["unit"], r["target"], _met(r)]
        table.add_row(*map(Text, cells + ([r["detail"]] if details else [])))
    return table


def narrow_table(results: dict[str, Any]):
    """The same figures for a narrow terminal: a heading per section, each detail on its own line below."""
    from rich import box
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title(results["meta"])), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    # as wide as the longest name: a detail wraps under its figure rather than widening the table
    names = max((len(r["name"]) + 2 for r in results["rows"]), default=12)
    table.add_column("measurement", justify="left", overflow="fold", max_width=names)
    for name, justify in COLUMNS[2:6]:
        table.add_column(name, justify=justify, no_wrap=True)
    section = None
    for r in results["rows"]:
        if r["section"] != section:
            section = r["section"]
            table.add_row(Text(section, style="bold"), "", "", "", "")
        table.add_row(
            Padding(Text(r["name"]), (0, 0, 0, 2), expand=False),
            *map(Text, (format_value(r["value"], r["unit"]), r["unit"], r["target"], _met(r))),
        )
        if r["detail"]:
            table.add_row(
                Padding(Text(r["detail"], style="dim"), (0, 0, 0, DETAIL_INDENT), expand=False), "", "", "", ""
            )
    return table


def render(results: dict[str, Any], file: IO[str] | None = None, width: int | None = None, wide: bool = False) -> None:
    """Print the results: the full table where it fits with a readable detail column (or ``wide``), else the
    narrow layout. ``width`` defaults to the terminal's (or $COLUMNS, or 80 off a terminal)."""
    from rich.console import Console

    console = Console(file=file or sys.stdout, width=width)
    unbounded = console.options.update_width(MEASURE_WIDTH)
    table = full_table(results)
    if wide:
        needed = console.measure(table, options=unbounded).maximum
        Console(file=file or sys.stdout, width=max(needed, console.width)).print(table)
        return
    bare = console.measure(full_table(results, details=False), options=unbounded).maximum
    console.print(table if bare + DETAIL_MIN_WIDTH <= console.width else narrow_table(results))


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the results (meta and rows) as indented JSON."""
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
