"""The short labels of a saved profile in a profile list (the CLI's `profiles list` and the TUI's screen)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from lstmtui.core.config import ModelConfig
from lstmtui.core.units import format_count, is_finite_number, printable

LN2 = math.log(2)


def corpus_label(meta: dict[str, Any]) -> str:
    """The corpus column: its file name(s)."""
    corpus = meta.get("corpus") or {}
    paths = corpus.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths:
        return "-"
    label = Path(str(paths[0])).name or str(paths[0])
    if len(paths) > 1:
        label += f" +{len(paths) - 1}"
    return printable(label)


def parameters_label(meta: dict[str, Any]) -> str:
    """The parameters column, e.g. 2x256 876.92k."""
    config = ModelConfig.from_dict(meta["model"])  # validated by the store already
    return f"{config.layers}x{config.hidden} {format_count(config.parameter_count(), digits=2)}"


def epochs_label(meta: dict[str, Any]) -> str:
    """The epochs column: done/planned."""
    progress = meta.get("progress") or {}
    total = (meta.get("train_config") or {}).get("epochs")
    done = progress.get("epoch")
    if done is None:
        return "-"
    label = f"{done}/{total}" if isinstance(total, int) else str(done)
    return label + (" done" if progress.get("finished") is True else "")


def best_bpc(meta: dict[str, Any]) -> float | None:
    """The best validation bits/char the profile records, or None."""
    progress = meta.get("progress") or {}
    if is_finite_number(progress.get("best_val_bpc")):
        return float(progress["best_val_bpc"])
    if is_finite_number(progress.get("best_val_loss")):
        return float(progress["best_val_loss"]) / LN2
    values = [p[2] for p in (meta.get("history") or {}).get("val", []) if len(p) > 2 and is_finite_number(p[2])]
    return min(values) if values else None


def bpc_label(meta: dict[str, Any]) -> str:
    """The best validation bits/char column."""
    bpc = best_bpc(meta)
    return "-" if bpc is None else f"{bpc:.3f}"


def time_label(stamp: Any) -> str:
    """The updated column: a short local time."""
    if not isinstance(stamp, str):
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return printable(stamp)
