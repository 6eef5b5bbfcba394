"""TrainingSession: prepares a corpus and a model, trains them (TrainingLoop) and saves them as a profile.

``run()`` locks the profile, prepares (settings, corpus, model, resumed state), then trains. Events
go to listeners on the training thread; commands (pause, resume, stop, set_lr, request_sample,
save_now) may come from any thread: they are queued and take effect at the next step boundary.
A RunHost runs a session in a thread of its own for applications. It never imports user-interface code.

In a distributed run (``world``, lstmtui.core.distributed) every rank runs a session: rank 0 locks
the profile, prepares first and shares its resolved settings; it alone validates, samples and writes
the profile, after every rank has sent it its carried hidden state.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import torch

from lstmtui.core import checkpoint
from lstmtui.core.config import TrainConfig
from lstmtui.core.corpus import CleaningOptions, Corpus, Vocab
from lstmtui.core.distributed import World
from lstmtui.core.errors import ConfigError, LstmtuiError
from lstmtui.core.events import (
    CheckpointEvent,
    Event,
    FailedEvent,
    FinishedEvent,
    PrepareEvent,
    SampleEvent,
    StateEvent,
    WarningEvent,
)
from lstmtui.core.memorisation import MemorisationIndex
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import CorpusProvenance, ProfileMeta, ProfileStore, SavedSample, TrainPoint, ValPoint
from lstmtui.core.profiles.parts import MAX_SAVED_SAMPLES
from lstmtui.core.training import profile_io, resolve
from lstmtui.core.training.commands import Command, Commands
from lstmtui.core.training.evaluation import training_sample
from lstmtui.core.training.loop import TrainingLoop
from lstmtui.core.training.prepare import Request, prepare, prepare_ranks
from lstmtui.core.training.profile_io import Hidden, Tensors
from lstmtui.core.training.progress import LossLog, Progress, RunState
from lstmtui.core.training.setup import Setup

# Largest corpus indexed for the live memorisation figure: the index is built inside the training
# thread (tinyshakespeare, 1.1M chars: 0.24 s and +24 MB peak), so a 50M-char corpus would stall
# training ~11 s and add ~1 GB; above this the figure is shown as unavailable.
LIVE_MEMO_MAX_CHARS = 5_000_000


class TrainingSession:
    """Trains a CharLSTM on a corpus, saving it as a profile; see the module docstring."""

    def __init__(
        self,
        corpus_paths: Sequence[str | Path] | None = None,
        config: TrainConfig | None = None,
        *,
        profile: str | None = None,
        store: ProfileStore | None = None,
        cleaning: CleaningOptions | None = None,
        extend_vocab: bool = False,
        corpus: Corpus | None = None,
        overrides: Mapping[str, object] | None = None,
        world: World | None = None,
        sync_every: int | None = None,
    ) -> None:
        self.world = world or World()  # this process's place in a distributed run (one process by default)
        self.sync_every = sync_every  # steps between reads of the device (None: by device, see deferred.py)
        self.corpus_paths = [str(p) for p in (corpus_paths or [])]
        self.config = (config or TrainConfig()).validate()  # replaced by the resolved settings when prepared
        self.overrides = dict(overrides or {})  # the settings typed this time (kept over a profile's)
        self.profile_name = profile
        self.store = store
        self.cleaning = cleaning
        self.extend_vocab = extend_vocab
        self.corpus = corpus
        self.state = "created"
        self.device_name = ""
        self.parameter_count = 0
        self.result: FinishedEvent | FailedEvent | None = None
        self.saved: ProfileMeta | None = None  # the profile's previous save, when resuming
        self.setup: Setup | None = None  # device, data, model, optimizer: set once preparation has succeeded
        self.run_state = RunState(Progress(base_lr=self.config.lr))
        self._vocab: Vocab | None = None
        self._provenance: CorpusProvenance | None = None  # the corpus as a save records it
        self._samples: deque[SavedSample] = deque(maxlen=MAX_SAVED_SAMPLES)  # this session's newest samples
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._commands = Commands()
        # other threads copy the weights (generation, snapshots) while training goes on
        self._model_lock = threading.Lock()
        self._memo_lock = threading.Lock()  # the training and generation threads may both ask for the index
        self._memo_built = False
        self._memo_index: MemorisationIndex | None = None
        self._thread: threading.Thread | None = None

    # ----- listeners and commands (any thread) -----

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback(event)`` for every event; it runs on the training thread, which waits for it."""
        self._listeners = (*self._listeners, callback)

    def pause(self) -> None:
        """Pause after the current step."""
        self._commands.send(Command.PAUSE)

    def resume(self) -> None:
        """Resume a paused session."""
        self._commands.send(Command.RESUME)

    def stop(self) -> None:
        """Stop at the next step boundary, saving what was trained (safe to call from a signal handler)."""
        self._commands.send(Command.STOP)

    def set_lr(self, lr: float) -> None:
        """Change the peak learning rate (the schedule scales from it) from the next step on."""
        self._commands.send(Command.SET_LR, lr)

    def request_sample(self) -> None:
        """Emit a sample from the current weights after the current step."""
        self._commands.send(Command.SAMPLE)

    def save_now(self) -> None:
        """Save the profile after the current step."""
        self._commands.send(Command.SAVE)

    # ----- what other threads may read -----

    @property
    def paused(self) -> bool:
        """Whether a pause is asked for (it takes effect at the next step boundary)."""
        return self._commands.pause_requested

    @property
    def ready(self) -> bool:
        """Whether preparation is done: the settings are resolved and the model exists."""
        return self.setup is not None

    @property
    def progress(self) -> Progress:
        """Where the run stands (written by the training thread)."""
        return self.run_state.progress

    @property
    def step(self) -> int:
        """Steps trained in all sessions of this profile."""
        return self.run_state.progress.step

    @property
    def best_val_loss(self) -> float:
        """The best validation loss so far (inf before any)."""
        return self.run_state.progress.best_val_loss

    @property
    def history(self) -> LossLog:
        """The run's loss curve."""
        return self.run_state.history

    @property
    def model(self) -> CharLSTM | None:
        """The model being trained (None before preparation); copy it with weights() from other threads."""
        return None if self.setup is None else self.setup.model

    def weights(self) -> tuple[CharLSTM, Vocab] | None:
        """A CPU copy of the latest weights in eval mode with the vocabulary, or None before the model exists."""
        with self._model_lock:
            if self.setup is None or self._vocab is None:
                return None
            # deepcopy, not a fresh CharLSTM: building one would draw from the global RNG
            # and make the training run differ from an uninterrupted one.
            model = copy.deepcopy(self.setup.model).to("cpu")
        return model.eval(), self._vocab

    def loss_history(self) -> tuple[list[TrainPoint], list[ValPoint]]:
        """Copies of the loss curve's training and validation points (see LossLog)."""
        return self.run_state.history.points()

    def memorisation_index(self) -> MemorisationIndex | None:
        """The corpus's MemorisationIndex, built once on first use (None: no corpus yet, or too large)."""
        with self._memo_lock:
            if not self._memo_built and self.corpus is not None:
                self._memo_index = MemorisationIndex.from_corpus(self.corpus, max_chars=LIVE_MEMO_MAX_CHARS)
                self._memo_built = True
            return self._memo_index

    def start(self) -> threading.Thread:
        """Run the session in a daemon thread and return it (applications use a RunHost instead)."""
        self._thread = threading.Thread(target=self.run, name="lstmtui-training", daemon=True)
        self._thread.start()
        return self._thread

    # ----- the run -----

    def run(self) -> FinishedEvent | FailedEvent:
        """Prepare, train and save; return the FinishedEvent or FailedEvent (also emitted)."""
        with ExitStack() as stack:  # holds the profile lock until the last save is done
            try:
                self._set_state("preparing")
                self._prepare(stack)
                self._set_state("training")
                result: FinishedEvent | FailedEvent = self._train()
            except LstmtuiError as exc:
                result = self._fail(str(exc), exc.field)
            except Exception as exc:  # any engine failure becomes an event, never a dead thread
                result = self._fail(f"{type(exc).__name__}: {exc}")
        self.result = result
        return result

    def _prepare(self, stack: ExitStack) -> None:
        """Lock and read the profile, then prepare; ``setup`` is set last, once everything has succeeded."""
        if self.store is not None and self.profile_name:
            if self.world.is_main:
                self.saved = profile_io.open_profile(self.store, self.profile_name, stack)
            else:  # rank 0 holds the lock and writes nothing before every rank has read
                self.saved = profile_io.read_profile(self.store, self.profile_name)
        request = Request(
            self.corpus_paths,
            self.config,
            self.overrides,
            self.profile_name,
            self.store,
            self.cleaning,
            self.extend_vocab,
            self.corpus,
        )
        if self.world.joined:
            ready = prepare_ranks(request, self.saved, self._report_progress, self.world)
        else:
            ready = prepare(request, self.saved, self._report_progress)
        if ready.fine_tune is not None:
            self._emit(ready.fine_tune)
        self.config, self.device_name, self.cleaning = ready.config, ready.device_name, ready.cleaning
        self.corpus, self._vocab = ready.corpus, ready.corpus.vocab
        run = self.run_state
        run.progress, run.history, run.hidden, run.best_weights = (
            ready.progress,
            ready.history,
            ready.hidden,
            ready.best_weights,
        )
        if self.store is not None and self.profile_name:
            self._provenance = profile_io.corpus_provenance(self.profile_name, ready.corpus.provenance)
        run.tally.started_at = time.perf_counter()
        self.parameter_count = ready.setup.model.parameter_count()
        self.setup = ready.setup

    def _train(self) -> FinishedEvent:
        if self.setup is None:
            raise RuntimeError("the session is not prepared")
        if self.run_state.progress.epoch >= self.config.epochs:
            raise ConfigError(
                f"profile {self.profile_name} has finished its {self.config.epochs} epochs; "
                f"raise the number of epochs to train further",
                "epochs",
            )
        loop = TrainingLoop(
            self.config,
            self.setup,
            self.run_state,
            self._commands,
            emit=self._emit,
            set_state=self._set_state,
            model_lock=self._model_lock,
            save=self._save,
            sample=self._sample,
            saved_weights=self._saved_weights,
            sync_every=self.sync_every,
        )
        return loop.train()

    def _fail(self, message: str, setting: str | None = None) -> FailedEvent:
        # A distributed run's save needs every rank, which a failure may have left behind: it keeps its last save.
        if self.setup is not None and self.store is not None and self.profile_name and not self.world.joined:
            try:
                self._save("failed")
            except Exception:  # the original failure is the one to report
                pass
        event = FailedEvent(message=message, step=self.run_state.progress.step, setting=setting)
        self._set_state("failed", message)
        self._emit(event)
        return event

    def _emit(self, event: Event) -> None:
        for callback in self._listeners:
            callback(event)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self._emit(StateEvent(state=state, detail=detail))

    def _report_progress(self, stage: str, done: int, total: int) -> None:
        self._emit(PrepareEvent(stage=stage, done=done, total=total))

    # ----- samples and saves, for the loop -----

    def _sample(self) -> None:
        """Emit a sample from a copy of the current weights."""
        cfg, p = self.config, self.run_state.progress
        self.world.solo()  # rank 0 samples alone
        copied = self.weights() if cfg.sample_length > 0 and self.world.is_main else None
        if copied is None:
            return
        prime, text = training_sample(*copied, cfg, p.step)
        index = self.memorisation_index()
        memorised = None if index is None else index.share(text, prime)
        event = SampleEvent(
            step=p.step,
            epoch=p.epoch_number(),
            temperature=cfg.sample_temperature,
            prime=prime,
            text=text,
            memorised=memorised,
        )
        self._samples.append(profile_io.saved_sample(event))  # the profile keeps the newest few
        self._emit(event)

    def _saved_weights(self) -> Tensors | None:
        if self.store is None or not self.profile_name:
            return None
        return profile_io.saved_weights(self.store, self.profile_name)

    def _save(self, reason: str) -> None:
        """Save the profile (every rank takes part; rank 0 writes); a failed save warns and leaves the previous
        version untouched."""
        setup, run, name, provenance = self.setup, self.run_state, self.profile_name, self._provenance
        if self.store is None or not name or setup is None or provenance is None or self._vocab is None:
            return
        world = self.world
        hidden = run.hidden
        if world.joined and hidden is not None:
            hidden = (world.gather_rows(hidden[0], dim=1), world.gather_rows(hidden[1], dim=1))
        rank_rngs = world.gather_rows(torch.get_rng_state()[None], dim=0) if world.size > 1 else None
        world.solo()  # rank 0 writes alone
        written = self._write(reason, hidden, rank_rngs) if world.is_main else True
        if world.joined:
            written = world.share([float(written)])[0] > 0
        if written:
            run.saved_step = run.progress.step

    def _write(self, reason: str, hidden: Hidden | None, rank_rngs: torch.Tensor | None) -> bool:
        """Write the profile with the run's whole carried state; False (and a warning) when it was not written."""
        setup, run, name, provenance = self.setup, self.run_state, self.profile_name, self._provenance
        assert self.store is not None and name and setup is not None and provenance is not None and self._vocab
        step, t0 = run.progress.step, time.perf_counter()
        try:
            with self._model_lock:
                latest = checkpoint.cpu_state_dict(setup.model)
                optim, groups = checkpoint.optimizer_to_tensors(setup.optimizer)
            if not all(torch.isfinite(v).all() for v in latest.values() if v.is_floating_point()):
                self._emit(WarningEvent(step=step, message="weights are not finite: not saved"))
                return False
            progress = resolve.saved_progress(
                run.progress, self.config, setup.batcher.steps, run.elapsed(), self.parameter_count, self.device_name
            )
            meta = profile_io.profile_meta(
                model=setup.model.config,
                vocab=self._vocab.to_list(),
                config=self.config,
                progress=progress,
                optim_groups=groups,
                history=run.history,
                corpus=provenance,
                previous=self.saved,
                samples=tuple(self._samples),
            )
            tensors = profile_io.profile_tensors(latest, run.best_weights, optim, hidden, rank_rngs)
            path = self.store.save(name, meta, tensors)
        except LstmtuiError as exc:
            self._emit(WarningEvent(step=step, message=str(exc)))
            return False
        except OSError as exc:
            self._emit(WarningEvent(step=step, message=f"could not save profile {name}: {exc.strerror or exc}"))
            return False
        seconds = time.perf_counter() - t0
        self._emit(
            CheckpointEvent(
                step=step,
                epoch=run.progress.epoch_number(),
                reason=reason,
                profile=name,
                path=str(path),
                seconds=seconds,
            )
        )
        return True
