"""What a training session writes into its profile and reads back to resume (tensors and ProfileMeta).

The carried hidden state is saved whole, (layers, batch, hidden) over every stream whatever the
number of processes, so a profile resumes on any number of them: each takes its own rows. A
distributed run also saves each rank's torch generator ("torch_rng_ranks"), which a resume on the
same number of processes restores; rank 0's is "torch_rng", as for one process.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import torch

from lstmtui.core import checkpoint
from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.corpus import CleaningOptions
from lstmtui.core.distributed import World, rank_seed
from lstmtui.core.errors import LstmtuiError, ProfileError
from lstmtui.core.events import SampleEvent
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import CorpusProvenance, ProfileMeta, ProfileStore, SamplingDefaults
from lstmtui.core.profiles import Progress as SavedProgress
from lstmtui.core.profiles.jsonfields import JsonObject
from lstmtui.core.profiles.parts import MAX_SAMPLE_TEXT, MAX_SAVED_SAMPLES, SavedSample, read_corpus
from lstmtui.core.training.progress import LossLog
from lstmtui.core.training.resolve import carried_state_fits

Hidden = tuple[torch.Tensor, torch.Tensor]
Tensors = dict[str, torch.Tensor]


def open_profile(store: ProfileStore, name: str, stack: ExitStack) -> ProfileMeta | None:
    """Lock the profile for this session (released when ``stack`` closes); its metadata, or None if new."""
    stack.enter_context(store.lock(name))
    if not store.exists(name):
        return None
    meta = store.load_meta(name)
    if "latest" in meta.files:  # its weights file's real size and shapes, before any model is built
        checkpoint.check_model_fits(meta, name, "latest", store)
    return meta


def read_profile(store: ProfileStore, name: str) -> ProfileMeta | None:
    """The profile's metadata without locking it (another rank of the run holds the lock), or None if new."""
    return store.load_meta(name) if store.exists(name) else None


def saved_cleaning(meta: ProfileMeta) -> CleaningOptions:
    """The cleaning options the profile's corpus was read with (the defaults if it records none)."""
    record = meta.corpus.cleaning if meta.corpus is not None else None
    return CleaningOptions.from_dict(record.options() if record is not None else {})


def saved_corpus_paths(meta: ProfileMeta) -> list[str]:
    """The corpus files the profile was trained on."""
    return list(meta.corpus.paths) if meta.corpus is not None else []


def saved_corpus_sha(meta: ProfileMeta) -> str | None:
    """The hash of the text the profile was trained on, if recorded."""
    return meta.corpus.sha256 if meta.corpus is not None else None


def restore_weights(model: CharLSTM, store: ProfileStore, name: str, saved_vocab_size: int) -> None:
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
    store: ProfileStore,
    name: str,
    meta: ProfileMeta,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    epoch_step: int,
    device: torch.device,
    world: World | None = None,
) -> tuple[Hidden | None, Tensors | None]:
    """Load the optimizer, the RNG states, the carried hidden state and the best weights of an exact resume.

    Returns (hidden state to carry or None, best weights or None); in a distributed run, this rank's rows
    of the hidden state and its own generator.
    """
    world = world or World()
    optim = store.load_tensors(name, "optim")
    checkpoint.optimizer_from_tensors(optimizer, optim, list(meta.optim_groups), name)
    for group in optimizer.param_groups:
        # this session's decay, not the saved group's (profiles before AdamW saved Adam's, always 0)
        group["weight_decay"] = config.weight_decay
        if "decoupled_weight_decay" in group:
            group["decoupled_weight_decay"] = True
    state = store.load_tensors(name, "state")
    checkpoint.check_state_group(state, meta.model, name)
    if "torch_rng" in state:
        checkpoint.restore_torch_rng(state["torch_rng"], name)
    ranks = state.get("torch_rng_ranks")
    if world.rank > 0 and ranks is not None and ranks.shape[0] == world.size:
        torch.set_rng_state(ranks[world.rank].clone())
    elif world.rank > 0:  # saved by another number of processes: a generator of its own from here
        torch.manual_seed(rank_seed(config.seed, world.rank, meta.progress.step))
    hidden = None
    if "h" in state and carried_state_fits(state["h"].shape[1], config.batch, epoch_step):
        rows = world.rows(config.batch)
        hidden = (state["h"][:, rows].contiguous().to(device), state["c"][:, rows].contiguous().to(device))
    checkpoint.restore_rng(meta.rng, name)
    try:
        best = store.load_tensors(name, "best")
    except ProfileError:
        best = None
    return hidden, best


def saved_weights(store: ProfileStore, name: str) -> Tensors | None:
    """The profile's latest saved weights, or None when there are none to read."""
    try:
        return store.load_tensors(name, "latest")
    except LstmtuiError:
        return None


def profile_tensors(
    latest: Tensors,
    best: Tensors | None,
    optim: Tensors,
    hidden: Hidden | None,
    rank_rngs: torch.Tensor | None = None,
) -> dict[str, Tensors]:
    """The tensor groups of a save: weights, optimizer moments, carried state (every stream's) and the torch RNG
    (``rank_rngs``: every rank's, in a distributed run)."""
    state = {"torch_rng": torch.get_rng_state()}
    if rank_rngs is not None:
        state["torch_rng_ranks"] = rank_rngs.contiguous()
    if hidden is not None:
        state["h"] = hidden[0].detach().to("cpu", copy=True).contiguous()
        state["c"] = hidden[1].detach().to("cpu", copy=True).contiguous()
    return {"latest": latest, "best": best or latest, "optim": optim, "state": state}


def saved_sample(event: SampleEvent) -> SavedSample:
    """A training sample as the profile keeps it (its text cut to what a profile holds)."""
    memorised = event.memorised if event.memorised is not None and 0.0 <= event.memorised <= 1.0 else None
    return SavedSample(
        step=event.step,
        epoch=event.epoch,
        temperature=event.temperature,
        text=event.text[:MAX_SAMPLE_TEXT],
        prime=event.prime[:4096],
        memorised=memorised,
    )


def corpus_provenance(name: str, provenance: dict) -> CorpusProvenance:
    """A loaded corpus's provenance as profile metadata records it (checked like a profile's own)."""
    return read_corpus(JsonObject(f"profile {name}", "corpus", json.loads(json.dumps(provenance))))


def profile_meta(
    *,
    model: ModelConfig,
    vocab: list[str],
    config: TrainConfig,
    progress: SavedProgress,
    optim_groups: list[dict],
    history: LossLog,
    corpus: CorpusProvenance,
    previous: ProfileMeta | None,
    samples: tuple[SavedSample, ...] = (),
) -> ProfileMeta:
    """The metadata of a save; the store adds the format version, name, files, versions and timestamps.

    ``samples`` are this session's newest; the profile keeps the newest MAX_SAVED_SAMPLES of its own and these.
    """
    kept = ((previous.samples if previous is not None else ()) + tuple(samples))[-MAX_SAVED_SAMPLES:]
    return ProfileMeta(
        model=model,
        vocab=tuple(vocab),
        train_config=config,
        progress=progress,
        corpus=corpus,
        sampling=previous.sampling if previous is not None else SamplingDefaults(),
        history=history.history(),
        samples=kept,
        optim_groups=tuple(optim_groups),
        rng=checkpoint.rng_state(),
        created=previous.created if previous is not None else None,
    )
