"""What a training session writes into its profile and reads back to resume; the only place it touches metadata."""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass

import torch

from lstmtui.core import checkpoint
from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.errors import ProfileError
from lstmtui.core.model import CharLSTM
from lstmtui.core.training.progress import LN2, LossLog, Progress
from lstmtui.core.training.resolve import carried_state_fits

Hidden = tuple[torch.Tensor, torch.Tensor]
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SavedRun:
    """What a profile records about the run that trained it, as a resuming session reads it."""

    meta: dict
    train_config: TrainConfig | None
    model: ModelConfig
    vocab: list[str]
    corpus_sha: str | None
    corpus_paths: list[str]
    cleaning: dict
    progress: Progress  # its base_lr is 0 when base_lr is None
    base_lr: float | None  # the saved peak learning rate (None: not saved; the settings' lr applies)
    history: LossLog


def open_profile(store, name: str, stack: ExitStack) -> SavedRun | None:
    """Lock the profile for this session (released when ``stack`` closes); its saved run, or None if new."""
    stack.enter_context(store.lock(name))
    if not store.exists(name):
        return None
    return read_saved_run(store.load_meta(name))


def read_saved_run(meta: dict) -> SavedRun:
    """The parts of a profile's metadata a resuming session uses."""
    corpus = meta.get("corpus", {})
    saved_config = meta.get("train_config")
    model = ModelConfig.from_dict(meta["model"])
    train_config = TrainConfig.from_dict(saved_config) if saved_config is not None else None
    history = meta.get("history") or {}
    return SavedRun(
        meta=meta,
        train_config=train_config,
        model=model,
        vocab=list(meta["vocab"]),
        corpus_sha=corpus.get("sha256"),
        corpus_paths=list(corpus.get("paths", [])),
        cleaning=dict(corpus.get("cleaning", {})),
        progress=_progress(meta.get("progress", {})),
        base_lr=None if meta.get("progress", {}).get("base_lr") is None else float(meta["progress"]["base_lr"]),
        history=LossLog(history.get("train"), history.get("val"), history.get("events")),
    )


def _progress(p: dict) -> Progress:
    best = p.get("best_val_loss")
    return Progress(
        epoch=int(p.get("epoch", 0)),
        epoch_step=int(p.get("epoch_step", 0)),
        step=int(p.get("step", 0)),
        elapsed_before=float(p.get("elapsed_s", 0.0)),
        best_val_loss=float(best) if best is not None else math.inf,
        best_step=int(p.get("best_step", -1)),
        bad_epochs=int(p.get("bad_epochs", 0)),
        lr_scale=float(p.get("lr_scale", 1.0)),
    )


def restore_weights(model: CharLSTM, store, name: str, saved_vocab_size: int) -> None:
    """Load the profile's latest weights; with a grown vocabulary, old rows and columns keep their values."""
    latest = store.load_tensors(name, "latest")
    if saved_vocab_size == model.config.vocab_size:
        checkpoint.load_weights(model, latest, name)
        return
    fresh = model.state_dict()
    for key, old in latest.items():
        new = fresh[key]
        if old.shape == new.shape:
            fresh[key] = old
            continue
        merged = new.clone()
        merged[tuple(slice(0, s) for s in old.shape)] = old
        fresh[key] = merged
    checkpoint.load_weights(model, fresh, name)


def restore_training_state(
    store,
    name: str,
    saved: SavedRun,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    epoch_step: int,
    device: torch.device,
) -> tuple[Hidden | None, Tensors | None]:
    """Load the optimizer, the RNG states, the carried hidden state and the best weights of an exact resume.

    Returns (hidden state to carry or None, best weights or None).
    """
    optim = store.load_tensors(name, "optim")
    checkpoint.optimizer_from_tensors(optimizer, optim, saved.meta.get("optim_groups", []))
    for group in optimizer.param_groups:
        # this session's decay, not the saved group's (profiles before AdamW saved Adam's, always 0)
        group["weight_decay"] = config.weight_decay
        if "decoupled_weight_decay" in group:
            group["decoupled_weight_decay"] = True
    state = store.load_tensors(name, "state")
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    hidden = None
    if "h" in state and carried_state_fits(state["h"].shape[1], config.batch, epoch_step):
        hidden = (state["h"].to(device), state["c"].to(device))
    checkpoint.restore_rng_json(saved.meta.get("rng", {}))
    try:
        best = store.load_tensors(name, "best")
    except ProfileError:
        best = None
    return hidden, best


def saved_weights(store, name: str) -> Tensors | None:
    """The profile's latest saved weights, or None when there are none to read."""
    from lstmtui.core.errors import LstmtuiError

    try:
        return store.load_tensors(name, "latest")
    except LstmtuiError:
        return None


def profile_tensors(latest: Tensors, best: Tensors | None, optim: Tensors, hidden: Hidden | None) -> dict[str, Tensors]:
    """The tensor groups of a save: weights, optimizer moments, carried state and the torch RNG."""
    state = {"torch_rng": torch.get_rng_state()}
    if hidden is not None:
        state["h"] = hidden[0].detach().to("cpu", copy=True).contiguous()
        state["c"] = hidden[1].detach().to("cpu", copy=True).contiguous()
    return {"latest": latest, "best": best or latest, "optim": optim, "state": state}


def profile_meta(
    *,
    model: ModelConfig,
    vocab: list[str],
    config: TrainConfig,
    progress: Progress,
    steps_per_epoch: int,
    elapsed: float,
    parameters: int,
    device: str,
    optim_groups: list[dict],
    history: LossLog,
    corpus: dict,
    previous: SavedRun | None,
) -> dict:
    """The metadata of a save; the store adds the format version, name and timestamps."""
    best = None if not progress.best_known else progress.best_val_loss
    train, val = history.points()
    meta = checkpoint.build_meta(
        model=model.to_dict(),
        vocab=vocab,
        train_config=config.to_dict(),
        progress={
            "epoch": progress.epoch,
            "epoch_step": progress.epoch_step,
            "steps_per_epoch": steps_per_epoch,
            "step": progress.step,
            "elapsed_s": round(elapsed, 3),
            "best_val_loss": best,
            "best_val_bpc": None if best is None else best / LN2,
            "best_step": progress.best_step,
            "bad_epochs": progress.bad_epochs,
            "base_lr": progress.base_lr,
            "lr_scale": progress.lr_scale,
            "hidden_policy": checkpoint.HIDDEN_POLICY,
            "finished": progress.epoch >= config.epochs,
            "parameters": parameters,
            "device": device,
        },
        optim_groups=optim_groups,
        rng=checkpoint.rng_json(),
        history={"train": train, "val": val, **({"events": list(history.events)} if history.events else {})},
        corpus=corpus,
    )
    if previous is not None:
        if previous.meta.get("sampling"):
            meta["sampling"] = previous.meta["sampling"]
        if previous.meta.get("created"):
            meta["created"] = previous.meta["created"]
    return meta
