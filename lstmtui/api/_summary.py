"""The facts the API reports: ProfileSummary (a saved profile), TrainResult (a finished run), profiles()."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lstmtui.core.events import FinishedEvent
    from lstmtui.core.profiles import ProfileMeta

# How the API takes a profile home: a path, or None for $LSTMTUI_HOME / the user data directory.
Home = str | os.PathLike[str] | None


@dataclass(frozen=True)
class ProfileSummary:
    """A saved profile's facts: architecture, training progress, best validation loss; ``error`` if unreadable."""

    name: str
    hidden: int
    layers: int
    vocab_size: int
    parameters: int
    steps: int
    epochs: int  # epochs completed
    best_val_loss: float | None  # nats per character; None before any validation
    bits_per_char: float | None  # the best validation loss in bits per character
    finished: bool  # whether the run reached its planned end
    corpus: tuple[str, ...]  # the corpus files it was trained on
    updated: str | None  # when it was last saved (ISO 8601)
    error: str | None = None  # why the profile cannot be read; its other facts are then zero or empty


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended: the profile it saved, why it ended, its steps and best validation loss."""

    profile: str
    reason: str  # completed, early_stopped, max_steps, time_budget or stopped
    steps: int
    epochs: int  # epochs completed
    best_val_loss: float | None  # nats per character; None when the run had no validation
    bits_per_char: float | None
    elapsed_s: float


def profiles(home: str | os.PathLike[str] | None = None) -> list[ProfileSummary]:
    """Every saved profile under ``home``, sorted by name (unreadable ones carry ``error``)."""
    from lstmtui.core.profiles import ProfileStore

    out = []
    for info in ProfileStore(home).list():
        if info.meta is None:
            out.append(_unreadable(info.name, info.error or "cannot be read"))
        else:
            out.append(summary_of(info.name, info.meta))
    return out


def summary_of(name: str, meta: ProfileMeta) -> ProfileSummary:
    """The summary of a profile from its metadata."""
    progress = meta.progress
    return ProfileSummary(
        name=name,
        hidden=meta.model.hidden,
        layers=meta.model.layers,
        vocab_size=meta.model.vocab_size,
        parameters=meta.model.parameter_count(),
        steps=progress.step,
        epochs=progress.epoch,
        best_val_loss=finite(progress.best_val_loss),
        bits_per_char=finite(meta.best_bpc()),
        finished=progress.finished,
        corpus=tuple(meta.corpus.paths) if meta.corpus is not None else (),
        updated=meta.updated,
    )


def result_of(profile: str, event: FinishedEvent, epochs_done: int) -> TrainResult:
    """The result of a run from its FinishedEvent and the number of epochs it completed (the event
    numbers the epoch it ended in, from 1)."""
    return TrainResult(
        profile=profile,
        reason=event.reason,
        steps=event.step,
        epochs=epochs_done,
        best_val_loss=finite(event.best_val_loss),
        bits_per_char=finite(event.best_val_bpc),
        elapsed_s=event.elapsed_s,
    )


def finite(value: float | None) -> float | None:
    """The value, or None when it is missing or not finite (a loss before any validation is inf)."""
    return value if value is not None and math.isfinite(value) else None


def _unreadable(name: str, error: str) -> ProfileSummary:
    return ProfileSummary(name, 0, 0, 0, 0, 0, 0, None, None, False, (), None, error)
