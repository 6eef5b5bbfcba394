"""The short labels of a saved profile in a profile list (the CLI's `profiles list` and the TUI's screen)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from lstmtui.core.profiles import ProfileMeta
from lstmtui.core.units import format_count, printable


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
