"""What the status panel shows, computed from the run's messages: pure functions from value to value.

Each function takes the current TrainingStats and returns the next one; the app assigns the result
to its reactive ``stats`` and the status panel redraws. Nothing here touches a widget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import PurePath
from typing import TYPE_CHECKING

from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FineTuneEvent,
    FinishedEvent,
    PrepareEvent,
    StateEvent,
    StepEvent,
)
from lstmtui.core.units import printable
from lstmtui.tui.widgets.status import TrainingStats

if TYPE_CHECKING:
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.profiles import ProfileMeta
    from lstmtui.core.runhost import RunSnapshot

LN2 = math.log(2)
ACTIVE_STATES = ("starting", "preparing", "training", "paused", "stopping")


def with_step(s: TrainingStats, step: StepEvent) -> TrainingStats:
    """The stats after a step's metrics."""
    epochs = max(1, round(step.total_steps / step.steps_per_epoch)) if step.steps_per_epoch else s.epochs
    return replace(
        s,
        step=step.step,
        epoch=step.epoch,
        epoch_step=step.epoch_step,
        steps_per_epoch=step.steps_per_epoch,
        total_steps=step.total_steps,
        total_forecast=step.forecast,
        loss=step.loss,
        lr=step.lr,
        chars_per_s=step.chars_per_s,
        elapsed_s=step.elapsed_s,
        eta_s=step.eta_s,
        epochs=epochs,
    )


def _prepare(s: TrainingStats, e: PrepareEvent) -> TrainingStats:
    pct = f" {e.done / e.total:.0%}" if e.total else ""
    return replace(s, prepare=f"{e.stage}{pct}")


def _state(s: TrainingStats, e: StateEvent) -> TrainingStats:
    error = e.detail if e.state == "failed" and e.detail else s.error
    return replace(s, state=e.state, detail=e.detail, error=error)


def _evaluated(s: TrainingStats, e: EvalEvent | EpochEvent) -> TrainingStats:
    best = e.best_val_loss / LN2 if math.isfinite(e.best_val_loss) else s.best_bpc
    estimate = isinstance(e, EvalEvent) and e.estimate  # an epoch's figure reads the whole split
    stderr = e.stderr if isinstance(e, EvalEvent) and e.stderr is not None else math.nan
    best_estimate = e.estimate if isinstance(e, EvalEvent) else e.best_estimate
    return replace(
        s, val_bpc=e.val_bpc, best_bpc=best, val_estimate=estimate, val_stderr=stderr, best_estimate=best_estimate
    )


def _saved(s: TrainingStats, e: CheckpointEvent) -> TrainingStats:
    return replace(s, saved=f"step {e.step:,} ({e.reason})")


def _finished(s: TrainingStats, e: FinishedEvent) -> TrainingStats:
    # the full-split figure of the kept weights
    return replace(s, best_bpc=e.best_val_bpc, best_estimate=False) if math.isfinite(e.best_val_bpc) else s


def _failed(s: TrainingStats, e: FailedEvent) -> TrainingStats:
    return replace(s, state="failed", error=e.message)


def _fine_tune(s: TrainingStats, e: FineTuneEvent) -> TrainingStats:
    return replace(s, fine_tune=fine_tune_text(e))


def fine_tune_text(e: FineTuneEvent) -> str:
    """'fine-tuning: prose.txt → accents.txt (+15 characters)': what a fine-tune changes, in a line."""
    added = len(e.added)
    plural = "" if added == 1 else "s"
    return f"fine-tuning: {_corpus_names(e.old_corpus)} → {_corpus_names(e.new_corpus)} (+{added} character{plural})"


def _corpus_names(paths: tuple[str, ...]) -> str:
    if not paths:
        return "?"
    first = printable(PurePath(paths[0]).name or paths[0])
    return first + (f" +{len(paths) - 1}" if len(paths) > 1 else "")


_REDUCERS: Mapping[type[Event], Callable[..., TrainingStats]] = {
    PrepareEvent: _prepare,
    StateEvent: _state,
    EvalEvent: _evaluated,
    EpochEvent: _evaluated,
    CheckpointEvent: _saved,
    FinishedEvent: _finished,
    FailedEvent: _failed,
    FineTuneEvent: _fine_tune,
}


def with_event(s: TrainingStats, event: Event) -> TrainingStats:
    """The stats after one rare event (samples and warnings change nothing here)."""
    if isinstance(event, StepEvent):
        return with_step(s, event)
    reduce = _REDUCERS.get(type(event))
    return reduce(s, event) if reduce is not None else s


def with_facts(s: TrainingStats, snap: RunSnapshot) -> TrainingStats:
    """The model's facts from a snapshot: the device it trains on and its size."""
    return replace(
        s, device=snap.device or s.device, params=snap.parameters or s.params, profile=snap.name or s.profile
    )


def with_snapshot(s: TrainingStats, snap: RunSnapshot) -> TrainingStats:
    """The stats of a run a client attaches to, from its snapshot."""
    s = replace(with_facts(s, snap), state=snap.state, detail=snap.detail)
    if snap.config is not None:
        s = replace(s, epochs=snap.config.epochs)
    for event in (snap.prepare, snap.last_step, snap.last_eval, snap.last_checkpoint, snap.result):
        if event is not None:
            s = with_event(s, event)
    if snap.best_val_loss is not None:
        s = replace(s, best_bpc=snap.best_val_loss / LN2)
    return s


def restarted(s: TrainingStats, profile: str) -> TrainingStats:
    """The stats as a run of ``profile`` starts: progress kept (a profile trained further), state reset."""
    return replace(s, profile=profile, state="starting", error="", detail="", fine_tune="")


def stopped(s: TrainingStats) -> TrainingStats:
    """The stats once the client stopped following: a run that had not ended shows as stopped."""
    return replace(s, state="stopped") if s.state in ACTIVE_STATES else s


# ----- a saved profile (its metadata) -----


def from_meta(name: str, meta: ProfileMeta) -> TrainingStats:
    """The status of a saved profile: its progress, its best and last validation, when it was saved."""
    progress = meta.progress
    best = progress.best_val_loss  # full split; a run saved before its end has only the estimate it kept by
    estimated = best is None and progress.best_estimate is not None
    best = progress.best_estimate if estimated else best
    val = meta.history.val
    per_epoch = progress.steps_per_epoch or 0
    epoch, epoch_step = progress.epoch, progress.epoch_step
    if epoch_step:
        epoch += 1  # the epoch under way, counted from 1 like events
    elif epoch > 0:
        epoch_step = per_epoch  # saved at the end of an epoch: that epoch is complete
    return TrainingStats(
        profile=name,
        state="finished" if progress.finished else "idle",
        step=progress.step,
        epoch=epoch,
        epochs=meta.train_config.epochs if meta.train_config is not None else 0,
        epoch_step=epoch_step,
        steps_per_epoch=per_epoch,
        elapsed_s=progress.elapsed_s,
        best_bpc=best / LN2 if best is not None else math.nan,
        best_estimate=estimated,
        val_bpc=val[-1].bpc if val else math.nan,
        saved=(meta.updated or "")[:19].replace("T", " "),
        params=meta.model.parameter_count(),
        device=progress.device or "",
    )


def history_from_meta(
    meta: ProfileMeta,
) -> tuple[list[tuple[int, float]], list[tuple[int, float]], tuple[int, ...]]:
    """A saved profile's training and validation losses as (step, nats) points, and the steps where its
    corpus changed (fine-tunes)."""
    history = meta.history
    marks = tuple(e.step for e in history.events if e.event == "fine-tune")
    return [(p.step, p.loss) for p in history.train], [(p.step, p.loss) for p in history.val], marks


def finished_in_meta(meta: ProfileMeta) -> tuple[bool, int, int]:
    """Whether a saved profile finished its run, with its epoch and planned epochs."""
    epochs = meta.train_config.epochs if meta.train_config is not None else 0
    epoch = meta.progress.epoch
    return meta.progress.finished or (epochs > 0 and epoch >= epochs), epoch, epochs


def form_defaults(
    meta: ProfileMeta | None, running: TrainConfig | None, corpus_paths: list[str], config: TrainConfig
) -> tuple[list[str], TrainConfig]:
    """What the new-run form starts from: the corpus being trained (else the profile's) and the open
    run's settings (else the profile's saved ones, else ``config``)."""
    paths = list(corpus_paths)
    if not paths and meta is not None and meta.corpus is not None:
        paths = list(meta.corpus.paths)
    if running is not None:
        return paths, running
    if meta is None:
        return paths, config
    if meta.train_config is not None:
        return paths, meta.train_config
    model = meta.model
    shape = dict(
        hidden=model.hidden,
        layers=model.layers,
        dropout=model.dropout,
        input=model.input,
        embedding_dim=model.embedding_dim,
    )
    return paths, replace(config, **shape)
