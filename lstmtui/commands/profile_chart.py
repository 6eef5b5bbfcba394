"""The learning curve `profiles show` draws as text, each fine-tune drawn as a segment of its own.

A fine-tune starts its step count afresh, so a profile's history holds the original run's points,
then the fine-tune's from step 1 again; the chart lays the runs end to end (a fine-tune's steps
counted on from the step it started at), marks where each fine-tune starts, draws its points with
marks of their own and names its corpus in a legend line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lstmtui.core.units import printable, unit_label

if TYPE_CHECKING:
    from lstmtui.core.profiles import History, HistoryEvent, TrainPoint, ValPoint

LN2 = math.log(2)
CHART_WIDTH = 60
CHART_HEIGHT = 10
FINE_TUNE = "fine-tune"  # the history event a run on another corpus records
MARKS = (("·", "o"), ("+", "*"))  # (train, validation) of the original run, then of a fine-tune
BOUNDARY = "¦"


@dataclass(frozen=True)
class Segment:
    """One run of a profile's history: its points in bits/char, placed after the runs before it."""

    offset: int  # steps of the runs before this one
    train: list[tuple[float, float]]  # (step on the chart, bits/char)
    val: list[tuple[float, float]]
    event: HistoryEvent | None  # the fine-tune that started it; None for the original run


def split_runs(points: Sequence[TrainPoint | ValPoint], fine_tunes: Sequence[HistoryEvent]) -> list[list]:
    """The points of each run, one list more than fine-tunes: a run ends where the step count starts
    again (or, when that is not visible, after its last point up to the step the fine-tune started at)."""
    parts: list[list] = []
    start = 0
    for event in fine_tunes:
        cut = next((i for i in range(start + 1, len(points)) if points[i].step <= points[i - 1].step), None)
        if cut is None:
            cut = next((i for i in range(start, len(points)) if points[i].step > event.step), len(points))
        parts.append(list(points[start:cut]))
        start = cut
    parts.append(list(points[start:]))
    return parts


def segments(history: History) -> list[Segment]:
    """The history as runs laid end to end: the original one, then one per fine-tune."""
    fine_tunes = [e for e in history.events if e.event == FINE_TUNE]
    trains, vals = split_runs(history.train, fine_tunes), split_runs(history.val, fine_tunes)
    out, offset = [], 0
    for k, (train, val) in enumerate(zip(trains, vals, strict=True)):
        event = fine_tunes[k - 1] if k else None
        offset += event.step if event is not None else 0
        out.append(
            Segment(
                offset,
                [(offset + p.step, p.loss / LN2) for p in train if math.isfinite(p.loss)],
                [(offset + p.step, p.bpc) for p in val if math.isfinite(p.bpc)],
                event,
            )
        )
    return out


def corpus_names(event: HistoryEvent) -> str:
    """The file names a fine-tune trained on, for its legend line."""
    if not event.corpus:
        return "another corpus"
    names = [Path(p).name or p for p in event.corpus]
    return printable(", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else ""))


def learning_curve(
    history: History, width: int = CHART_WIDTH, height: int = CHART_HEIGHT, unit: str = "bits"
) -> list[str]:
    """A small text chart of train (·) and validation (o) losses in ``unit`` over steps; fine-tunes drawn apart."""
    runs = segments(history)
    if unit == "nats":
        scale = lambda pts: [(x, y * LN2) for x, y in pts]  # noqa: E731
        runs = [Segment(r.offset, scale(r.train), scale(r.val), r.event) for r in runs]
    points = [p for run in runs for p in run.train + run.val]
    if not points:
        return ["learning curve: no history yet"]
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    xs, ys = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    grid = [[" "] * width for _ in range(height)]

    def column(x: float) -> int:
        return max(0, min(width - 1, int((x - x0) / xs * (width - 1) + 0.5)))

    def place(series: list[tuple[float, float]], mark: str, over: bool) -> None:
        for x, y in series:
            row = min(height - 1, int((y1 - y) / ys * (height - 1) + 0.5))
            cell = grid[row][column(x)]
            if over or cell in (" ", BOUNDARY):
                grid[row][column(x)] = mark

    for run in runs[1:]:
        for row in grid:
            row[column(run.offset)] = BOUNDARY
    for k, run in enumerate(runs):
        train_mark, val_mark = MARKS[min(k, 1)]
        place(run.train, train_mark, over=False)
        place(run.val, val_mark, over=True)
    label_w = max(len(f"{y0:.2f}"), len(f"{y1:.2f}"))
    out = [f"learning curve ({unit_label(unit)}; · train, o validation):"]
    for i, row in enumerate(grid):
        label = f"{y1:.2f}" if i == 0 else f"{y0:.2f}" if i == height - 1 else ""
        out.append(f"{label:>{label_w}} |{''.join(row)}")
    out.append(" " * label_w + " +" + "-" * width)
    left, right = f"step {x0:g}", f"{x1:g}"
    out.append(" " * (label_w + 2) + left + right.rjust(width - len(left)))
    for run in runs[1:]:
        train_mark, val_mark = MARKS[1]
        out.append(
            f"{BOUNDARY} step {run.offset:,}: fine-tuned on {corpus_names(run.event)}; "
            f"its steps counted on from there, {train_mark} train, {val_mark} validation"
        )
    return out
