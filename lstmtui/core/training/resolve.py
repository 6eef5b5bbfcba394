"""Resolving a session: pure functions from the request, the profile and the corpus to what runs and is saved.

Resuming a profile keeps its architecture and saved settings except those typed this time; a new
model with a typed ``--time-budget`` is sized by the planner; a resumed run continues its counters
and learning-rate state exactly when it trains on the same corpus and vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields

from lstmtui.core.checkpoint import HIDDEN_POLICY
from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.profiles import Progress as SavedProgress
from lstmtui.core.training.progress import LN2, Progress

ARCHITECTURE = ("hidden", "layers", "input", "embedding_dim")  # a profile's own; never overridden
TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))


def resumed_config(saved: TrainConfig | None, model: ModelConfig, overrides: Mapping[str, object]) -> TrainConfig:
    """A profile's saved settings with this session's typed ones on top, and the profile's architecture."""
    merged = saved.to_dict() if saved is not None else {}
    merged.update({k: v for k, v in overrides.items() if k in TRAIN_FIELDS})
    for key in ARCHITECTURE:
        merged[key] = getattr(model, key)
    return TrainConfig.from_dict(merged)


def wants_time_plan(config: TrainConfig, overrides: Mapping[str, object], resuming: bool) -> bool:
    """Whether the planner sizes this run: a time budget typed for a new model (a resumed one keeps its size)."""
    return not resuming and config.time_budget_s > 0 and "time_budget_s" in overrides


def training_chars(corpus_chars: int, val_fraction: float) -> int:
    """Characters of the training split of a corpus (the rest validates)."""
    return corpus_chars - int(corpus_chars * val_fraction)


def device_label(device_name: str, precision: str) -> str:
    """How a run's device is shown: the device, and bf16 when the steps run in it."""
    return device_name + ", bf16" if precision == "bf16" else device_name


def continues_exactly(saved_sha: str | None, corpus_sha: str | None, saved_vocab: int, vocab: int) -> bool:
    """Whether a resumed run continues the saved one (same corpus and vocabulary) rather than fine-tunes."""
    return saved_sha == corpus_sha and saved_vocab == vocab


def fresh_progress(config: TrainConfig) -> Progress:
    """The progress of a run that starts from step 0 (a new model, or a fine-tune)."""
    return Progress(base_lr=config.lr)


def resumed_progress(
    saved: SavedProgress, config: TrainConfig, overrides: Mapping[str, object], steps_per_epoch: int
) -> Progress:
    """The progress a resumed run continues from: a typed (or never saved) learning rate replaces the saved
    peak, and an epoch saved at its very end continues with the next one. Keep-best goes on comparing the
    figures it chose by (the saved estimate, or the full-split figure of a profile that has none)."""
    estimated = saved.best_estimate is not None
    chosen_by = saved.best_estimate if estimated else saved.best_val_loss
    progress = Progress(
        epoch=saved.epoch,
        epoch_step=saved.epoch_step,
        step=saved.step,
        elapsed_before=float(saved.elapsed_s),
        best_val_loss=math.inf if chosen_by is None else float(chosen_by),
        best_stderr=(saved.best_estimate_stderr or 0.0) if estimated else None,
        best_full=saved.best_val_loss,
        best_step=saved.best_step,
        bad_epochs=saved.bad_epochs,
        base_lr=config.lr if "lr" in overrides or saved.base_lr is None else float(saved.base_lr),
        lr_scale=float(saved.lr_scale),
    )
    if progress.epoch_step >= steps_per_epoch:
        progress.epoch, progress.epoch_step = progress.epoch + 1, 0
    return progress


def saved_progress(
    progress: Progress, config: TrainConfig, steps_per_epoch: int, elapsed: float, parameters: int, device: str
) -> SavedProgress:
    """What a save records of where the run stands: the full-split figure of the best weights once measured,
    and the estimate they were kept by."""
    best = progress.best_full if progress.best_known else None
    estimate = progress.best_val_loss if progress.best_known and progress.best_estimated else None
    return SavedProgress(
        epoch=progress.epoch,
        epoch_step=progress.epoch_step,
        steps_per_epoch=steps_per_epoch,
        step=progress.step,
        elapsed_s=round(elapsed, 3),
        best_val_loss=best,
        best_val_bpc=None if best is None else best / LN2,
        best_step=progress.best_step,
        best_estimate=estimate,
        best_estimate_stderr=progress.best_stderr if estimate is not None else None,
        bad_epochs=progress.bad_epochs,
        base_lr=progress.base_lr,
        lr_scale=progress.lr_scale,
        hidden_policy=HIDDEN_POLICY,
        finished=progress.epoch >= config.epochs,
        parameters=parameters,
        device=device,
    )


def carried_state_fits(saved_batch: int, batch: int, epoch_step: int) -> bool:
    """Whether a saved hidden state carries into this run: mid-epoch, with as many streams as saved."""
    return epoch_step > 0 and saved_batch == batch
