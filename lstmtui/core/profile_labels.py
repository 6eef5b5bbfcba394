"""The short labels of a saved profile in a profile list (the CLI's `profiles list` and the TUI's screen)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from lstmtui.core.profiles import ProfileMeta
from lstmtui.core.units import format_count, format_loss, printable


def corpus_label(meta: ProfileMeta) -> str:
    """The corpus column: its file name(s)."""
    paths = meta.corpus.paths if meta.corpus is not None else ()
    if not paths:
        return "-"
    label = Path(paths[0]).name or paths[0]
    if len(paths) > 1:
        label += f" +{len(paths) - 1}"
    return printable(label)


def parameters_label(meta: ProfileMeta) -> str:
    """The parameters column, e.g. 2x256 876.92k."""
    config = meta.model
    return f"{config.layers}x{config.hidden} {format_count(config.parameter_count(), digits=2)}"


def epochs_label(meta: ProfileMeta) -> str:
    """The epochs column: done/planned."""
    done = meta.progress.epoch
    label = f"{done}/{meta.train_config.epochs}" if meta.train_config is not None else str(done)
    return label + (" done" if meta.progress.finished else "")


def best_bpc(meta: ProfileMeta) -> float | None:
    """The best validation bits/char the profile records, or None."""
    return meta.best_bpc()


def bpc_label(meta: ProfileMeta) -> str:
    """The best validation bits/char column."""
    return best_label(meta, "bits")


def best_label(meta: ProfileMeta, unit: str, digits: int = 3) -> str:
    """The best validation column in ``unit`` (bits or nats per character): the full-split figure of the
    kept weights, else the estimate they were kept by ('≈1.234', a run saved before it ended), else '-'."""
    bpc = best_bpc(meta)
    if bpc is not None:
        return format_loss(bpc * math.log(2.0), unit, digits)
    return format_loss(meta.progress.best_estimate, unit, digits, estimate=True, missing="-")


def time_label(stamp: Any) -> str:
    """The updated column: a short local time."""
    if not isinstance(stamp, str):
        return "-"
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return printable(stamp)
