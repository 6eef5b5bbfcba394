"""Preparing a session: from what was asked (and the profile's last save) to a model ready to train.

The order is part of exact resumption: seed, read the corpus, plan, build the model (which draws
from the seeded generator), then load the saved weights and random-generator states over it.

A distributed run prepares on rank 0 first (which plans a --time-budget run), then on the other
ranks with rank 0's resolved settings (``prepare_ranks``); each rank builds a batcher of its own
streams, and the model is wrapped in DDP once every rank has succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from lstmtui.core.batching import StreamBatcher
from lstmtui.core.budget import plan
from lstmtui.core.config import TrainConfig
from lstmtui.core.corpus import CleaningOptions, Corpus, Vocab, check_trainable, load_corpus
from lstmtui.core.device import describe, pick_device, set_threads
from lstmtui.core.distributed import DistributedError, World, check_batch, rank_seed
from lstmtui.core.errors import ProfileError
from lstmtui.core.events import FineTuneEvent
from lstmtui.core.heap import keep_step_buffers
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileMeta, ProfileStore
from lstmtui.core.training import profile_io, resolve
from lstmtui.core.training.deferred import sync_interval
from lstmtui.core.training.profile_io import Tensors
from lstmtui.core.training.progress import LossLog, Progress
from lstmtui.core.training.setup import Setup, check_memory, optimizer_for, seed_everything
from lstmtui.core.training.step import Hidden


@dataclass(frozen=True)
class Request:
    """What a session was asked to train: corpus, settings (those typed in ``overrides``), profile."""

    corpus_paths: list[str]
    config: TrainConfig
    overrides: dict[str, object]
    profile: str | None
    store: ProfileStore | None
    cleaning: CleaningOptions | None
    extend_vocab: bool
    corpus: Corpus | None  # already loaded (benchmarks), else read from corpus_paths
    sync_every: int | None = None  # steps between reads of the device (None: by device)
    planned: TrainConfig | None = None  # rank 0's resolved settings, which the other ranks train with as they are


@dataclass(frozen=True)
class Prepared:
    """A session ready to train: resolved settings, data, model, and where the run stands."""

    config: TrainConfig
    device_name: str
    corpus: Corpus
    cleaning: CleaningOptions
    setup: Setup
    progress: Progress
    history: LossLog
    hidden: Hidden | None
    best_weights: Tensors | None
    fine_tune: FineTuneEvent | None = None  # set when the profile trains on another corpus


def prepare(
    request: Request, saved: ProfileMeta | None, report: Callable[[str, int, int], None], world: World | None = None
) -> Prepared:
    """Resolve the settings, read the corpus, build (or restore) the model and the run's state."""
    world = world or World()
    config, cleaning, paths = _settings(request, saved)
    device = world.device(pick_device(config.device))
    set_threads(config.threads)
    device_name = describe(device) + world.label()
    seed_everything(config.seed)
    corpus = request.corpus
    if corpus is None:
        vocab = Vocab.from_list(list(saved.vocab)) if saved is not None else None
        corpus = load_corpus(paths, cleaning, vocab=vocab, extend_vocab=request.extend_vocab, progress=report)
    keep_step_buffers()  # before the planner times steps: it should time the real thing
    if request.planned is None and resolve.wants_time_plan(config, request.overrides, saved is not None):
        config = plan(
            config,
            resolve.training_chars(len(corpus), config.val_fraction),
            config.time_budget_s,
            device,
            vocab_size=len(corpus.vocab),
            fixed=set(request.overrides),
        )
        if "batch" not in request.overrides and config.batch % world.size:
            config = replace(config, batch=-(-config.batch // world.size) * world.size)  # the planner's, split evenly
        set_threads(config.threads)
        device_name = describe(device) + world.label()
    check_batch(config.batch, world.size)
    check_trainable(corpus, config.batch, config.seq_len, config.val_fraction)
    setup = _build(config, corpus, device, request, saved, world)
    progress, history = resolve.fresh_progress(config), LossLog()
    hidden = best = fine_tune = None
    if saved is not None:
        history = LossLog(saved.history)
        saved_sha = profile_io.saved_corpus_sha(saved)
        if resolve.continues_exactly(
            saved_sha, corpus.provenance.get("sha256"), saved.model.vocab_size, len(corpus.vocab)
        ):
            progress = resolve.resumed_progress(saved.progress, config, request.overrides, setup.batcher.steps)
            hidden, best = profile_io.restore_training_state(
                request.store, request.profile, saved, setup.optimizer, config, progress.epoch_step, device, world
            )
        else:
            # Fine-tuning: the weights carry over, the schedule and optimizer start afresh.
            paths = corpus.provenance.get("paths")
            history.add_event(saved.progress.step, "fine-tune", tuple(paths) if paths is not None else None)
            fine_tune = _fine_tune_event(request.profile, saved, corpus)
    if world.rank > 0 and (saved is None or fine_tune is not None):
        torch.manual_seed(rank_seed(config.seed, world.rank, progress.step))  # dropout masks of its own streams
    return Prepared(
        config,
        resolve.device_label(device_name, config.precision),
        corpus,
        cleaning,
        setup,
        progress,
        history,
        hidden,
        best,
        fine_tune,
    )


def _fine_tune_event(profile: str | None, saved: ProfileMeta, corpus: Corpus) -> FineTuneEvent:
    """What a fine-tune changes: the corpus (old and new paths) and the characters the vocabulary gained."""
    return FineTuneEvent(
        profile=profile or "",
        step=saved.progress.step,
        old_corpus=tuple(profile_io.saved_corpus_paths(saved)),
        new_corpus=tuple(corpus.provenance.get("paths") or ()),
        added=tuple(corpus.vocab.chars[saved.model.vocab_size :]),
    )


def _settings(request: Request, saved: ProfileMeta | None) -> tuple[TrainConfig, CleaningOptions, list[str]]:
    """The settings, cleaning and corpus paths: a resumed profile's own unless given this time."""
    if saved is None:
        return request.planned or request.config, request.cleaning or CleaningOptions(), request.corpus_paths
    config = request.planned or resolve.resumed_config(saved.train_config, saved.model, request.overrides)
    cleaning = request.cleaning or profile_io.saved_cleaning(saved)
    paths = request.corpus_paths
    if not paths and request.corpus is None:
        paths = profile_io.saved_corpus_paths(saved)
        if not paths:
            raise ProfileError(f"profile {request.profile} records no corpus; give one to train on")
    return config, cleaning, paths


def _build(
    config: TrainConfig,
    corpus: Corpus,
    device: torch.device,
    request: Request,
    saved: ProfileMeta | None,
    world: World,
) -> Setup:
    """Split the corpus, check memory, build the model (restoring saved weights) and its optimizer."""
    train, val = corpus.split(config.val_fraction)
    # a staging buffer for each step queued ahead of a read, so none is refilled while it is copied
    staging = sync_interval(device, world, request.sync_every) + 1 if device.type == "cuda" else 0
    rows = world.rows(config.batch)
    batcher = StreamBatcher(train, config.batch, config.seq_len, device, rows=rows, staging=staging)
    model_config = config.model_config(len(corpus.vocab))
    check_memory(model_config, config.batch // world.size, config.seq_len, device)
    model = CharLSTM(model_config)
    if saved is not None:
        profile_io.restore_weights(model, request.store, request.profile, saved.model.vocab_size)
    model.to(device).train()
    optimizer = optimizer_for(model, config.lr, config.weight_decay, device)
    return Setup(device, batcher, val, model, optimizer, total_steps=batcher.steps * config.epochs, world=world)


def prepare_ranks(
    request: Request, saved: ProfileMeta | None, report: Callable[[str, int, int], None], world: World
) -> Prepared:
    """prepare() on every rank of a distributed run: rank 0 first, then the others with its resolved settings;
    the model is wrapped in DDP once all of them have succeeded (else every rank fails, with rank 0's error)."""
    world.solo()  # the ranks prepare one after another; the others wait at a barrier, not in a collective
    ready, error = _attempt(lambda: prepare(request, saved, report, world)) if world.is_main else (None, None)
    settings = world.share_text(json.dumps(ready.config.to_dict()) if ready is not None else "")
    if not settings:
        raise error or DistributedError("rank 0 of the distributed run could not prepare; see its message")
    world.solo()
    if not world.is_main:
        planned = replace(request, planned=TrainConfig.from_dict(json.loads(settings)))
        ready, error = _attempt(lambda: prepare(planned, saved, report, world))
    if not world.agree(ready is not None) or ready is None:
        raise error or DistributedError("another process of the distributed run could not prepare; see its message")
    setup = replace(ready.setup, trainer=world.wrap(ready.setup.model, ready.setup.device))
    return replace(ready, setup=setup)


def _attempt(call: Callable[[], Prepared]) -> tuple[Prepared | None, Exception | None]:
    try:
        return call(), None
    except Exception as exc:  # shared with the other ranks first, then raised
        return None, exc
