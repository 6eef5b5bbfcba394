"""`lstmtui ps`: the runs training now, in any terminal or none, with where each stands."""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import datetime, timezone

from lstmtui.commands.common import add_units_option
from lstmtui.core.units import format_count, format_duration, in_unit, loss_unit, unit_label
from lstmtui.service import RunClient, RunRecord, ServiceError, list_runs

ASK_TIMEOUT_S = 3.0
COLUMNS = ("NAME", "PID", "STATE", "STEP", "EPOCH", "VAL LOSS", "CHARS/S", "RUNNING SINCE")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `ps`."""
    parser = subparsers.add_parser(
        "ps",
        help="list the runs training now",
        description="List the training runs of this user that are running now (detached or in a terminal); "
        "what dead runs left behind is removed.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON array of runs, for scripts (losses in nats)")
    add_units_option(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """List the live runs."""
    unit = loss_unit(args.units)
    rows = [describe(record) for record in list_runs()]
    if args.json:
        print(json.dumps(rows, indent=1, allow_nan=False))
    elif not rows:
        print("no runs are training")
    else:
        print(table(rows, unit))
    return 0


def describe(record: RunRecord) -> dict:
    """What ps reports about one run: the record plus its snapshot (state 'not answering' without one)."""
    row: dict = {
        "name": record.name,
        "pid": record.pid,
        "state": "not answering",
        "profile": record.profile,
        "home": record.home,
        "step": None,
        "total_steps": None,
        "epoch": None,
        "epochs": None,
        "forecast": False,  # whether total_steps and epochs are where a time budget is forecast to end
        "val_loss": None,
        "best_val_loss": None,
        "chars_per_s": None,
        "paused": None,
        "started": datetime.fromtimestamp(record.started, timezone.utc).isoformat(timespec="seconds"),
        "running_s": max(0.0, time.time() - record.started),
        "socket": record.socket,
        "log": record.log,
    }
    try:
        with RunClient.connect(record, timeout=ASK_TIMEOUT_S) as client:
            snapshot = client.snapshot
    except ServiceError:
        return row
    step = snapshot.get("last_step") or {}
    evaluation = snapshot.get("last_eval") or {}
    config = snapshot.get("config") or {}
    forecast = bool(step.get("forecast"))
    epochs = config.get("epochs")
    if forecast and step.get("steps_per_epoch") and step.get("total_steps"):
        # a budget's configured epochs are only a cap; the forecast says where it ends
        epochs = max(1, round(step["total_steps"] / step["steps_per_epoch"]))
    row.update(
        state=str(snapshot.get("state") or "?"),
        step=step.get("step"),
        total_steps=step.get("total_steps"),
        epoch=step.get("epoch"),  # the epoch under way, from 1
        epochs=epochs,
        forecast=forecast,
        val_loss=evaluation.get("val_loss"),
        best_val_loss=snapshot.get("best_val_loss"),
        chars_per_s=step.get("chars_per_s"),
        paused=snapshot.get("paused"),
    )
    return row


def table(rows: list[dict], unit: str = "bits") -> str:
    """The runs as aligned columns, losses in ``unit`` (named in the heading)."""
    lines = [tuple(f"{c} ({unit_label(unit)})" if c == "VAL LOSS" else c for c in COLUMNS)]
    for row in rows:
        mark = "≈" if row.get("forecast") else ""
        epoch = "-" if row["epoch"] is None else f"{row['epoch']}/{mark}{row['epochs'] or '?'}"
        since = datetime.fromisoformat(row["started"]).astimezone().strftime("%Y-%m-%d %H:%M")
        lines.append(
            (
                row["name"],
                str(row["pid"]),
                row["state"],
                "-" if row["step"] is None else str(row["step"]),
                epoch,
                _loss(row["val_loss"], unit),
                "-" if row["chars_per_s"] is None else format_count(row["chars_per_s"]),
                f"{since} ({format_duration(row['running_s'])})",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _loss(value: object, unit: str) -> str:
    return f"{in_unit(value, unit):.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"
