"""The bench results as one table on a terminal, and as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any


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


def render(results: dict[str, Any], file: IO[str] | None = None) -> None:
    """Print the results as one rich table."""
    from rich.console import Console
    from rich.table import Table

    run = results["meta"]
    table = Table(
        title=f"lstmtui bench: {run['corpus']} ({run['corpus_chars']:,} chars), {run['minutes']:g} min, "
        f"torch {run['torch']}, {run['threads']} threads",
        title_justify="left",
    )
    for name, justify in (
        ("section", "left"),
        ("measurement", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("target", "left"),
        ("met", "left"),
        ("detail", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")
    for r in results["rows"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        table.add_row(
            r["section"], r["name"], format_value(r["value"], r["unit"]), r["unit"], r["target"], met, r["detail"]
        )
    Console(file=file or sys.stdout, width=200).print(table)


def write_json(results: dict[str, Any], path: Path) -> None:
    """Write the results (meta and rows) as indented JSON."""
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
