"""Worker bodies: training and generation run in Textual thread workers and only post messages.

The session's subscriber runs on the training thread at every step; ``Coalescer`` keeps the latest
step and the loss points and posts at most ``1/interval`` (5) updates a second, so a fast model never
floods the UI. Rare events (state, eval, samples, saves, failures) are posted at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from textual.worker import get_current_worker

from lstmtui.core.events import PrepareEvent, StepEvent
from lstmtui.core.heap import release_free_heap
from lstmtui.tui.messages import GeneratedText, GenerationEnded, SessionReady, TrainingEnded, TrainingUpdate

METRIC_INTERVAL_S = 0.5  # at most 2 metric updates a second: plenty to read, and the UI thread stays light
TEXT_INTERVAL_S = 1 / 30  # at most ~30 text updates a second
STOP_GRACE_S = 15.0  # how long a cancelled worker waits for the session's final save


class Coalescer:
    """Subscriber for a TrainingSession that batches events into TrainingUpdate messages."""

    def __init__(self, post: Callable[[Any], Any], interval: float = METRIC_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.post = post
        self.interval = interval
        self.clock = clock
        self.last_post = -1e9
        self.step: StepEvent | None = None
        self.prepare: PrepareEvent | None = None
        self.losses: list[tuple[int, float]] = []
        self.events: list[Any] = []
        self.posted = 0

    def __call__(self, event: Any) -> None:
        """Take one event (on the training thread); post when due."""
        urgent = False
        if isinstance(event, StepEvent):
            self.step = event
            if not event.skipped:
                self.losses.append((event.step, event.loss))
        elif isinstance(event, PrepareEvent):
            self.prepare = event
        else:
            self.events.append(event)
            urgent = True
        now = self.clock()
        if urgent or now - self.last_post >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Post whatever is pending."""
        if self.step is None and self.prepare is None and not self.losses and not self.events:
            return
        events = ([self.prepare] if self.prepare is not None else []) + self.events
        self.post(TrainingUpdate(self.step, self.losses, events))
        self.posted += 1
        self.step, self.prepare, self.losses, self.events = None, None, [], []
        self.last_post = self.clock() if now is None else now


class TrainingHandle:
    """Shared by the UI and the training worker: the session, once built, and a stop request."""

    def __init__(self) -> None:
        # reentrant: the signal handler runs on the main thread and may interrupt a holder of it
        self._lock = threading.RLock()
        self.session: Any = None
        self.stop_requested = False
        self.thread: threading.Thread | None = None

    def attach(self, session: Any) -> bool:
        """Record the session; False when a stop came first (the worker then does not run it)."""
        with self._lock:
            self.session = session
            return not self.stop_requested

    def command(self, name: str, *args: Any) -> bool:
        """Send a command (pause, resume, save_now, ...) to the session; False before it exists."""
        with self._lock:
            session = self.session
        if session is None:
            return False
        getattr(session, name)(*args)
        return True

    def stop(self) -> None:
        """Ask the session to stop (it saves what was trained); safe before it exists."""
        with self._lock:
            self.stop_requested = True
            session = self.session
        if session is not None:
            session.stop()

    def alive(self) -> bool:
        """Whether the training thread is still running."""
        return self.thread is not None and self.thread.is_alive()


def train_worker(post: Callable[[Any], Any], handle: TrainingHandle, corpus_paths: list[str], config: Any,
                 profile: str | None, home: Path | None, cleaning: Any, overrides: dict | None) -> None:
    """Body of the training thread worker: build the session, run it, watch for cancellation."""
    worker = get_current_worker()
    try:
        # torch loads here, off the UI thread, so the first screen never waits for it
        from lstmtui.core.profiles import ProfileStore
        from lstmtui.core.training import TrainingSession

        session = TrainingSession(corpus_paths or None, config, profile=profile, store=ProfileStore(home),
                                  cleaning=cleaning, overrides=overrides)
    except Exception as exc:  # noqa: BLE001 - shown in the UI; the app goes on
        post(TrainingEnded(error=str(exc) or type(exc).__name__))
        return
    coalescer = Coalescer(post)

    def on_event(event: Any) -> None:
        coalescer(event)
        if worker.is_cancelled:
            session.stop()

    session.subscribe(on_event)
    if not handle.attach(session) or worker.is_cancelled:
        post(TrainingEnded(error=None))
        return
    post(SessionReady(session))
    thread = session.start()
    handle.thread = thread
    while thread.is_alive():
        thread.join(0.2)
        if worker.is_cancelled or handle.stop_requested:
            handle.stop()
            # the session saves at its next step boundary; a stuck one is a daemon thread
            thread.join(STOP_GRACE_S)
            break
    coalescer.flush()
    post(TrainingEnded(result=session.result))
    release_free_heap()


class GenerationState:
    """What generation keeps between runs so a stopped stream can continue where it stopped."""

    def __init__(self) -> None:
        self.generator: Any = None
        self.config: Any = None
        self.context = ""  # seed + everything generated, to rebuild the state under new settings
        self.seed = ""


def generate_worker(post: Callable[[Any], Any], run: int, state: GenerationState, stop: threading.Event,
                    load_model: Callable[[], Any] | None, seed: str | None, settings: Any,
                    memo: Callable[[], Any] | None = None) -> None:
    """Body of the generation thread worker: stream characters, batched to ~30 messages a second.

    ``seed`` None continues the last text; ``settings`` is the panel's GenSettings (the
    SamplingConfig is built here, where importing torch costs the UI nothing). ``memo`` returns
    the corpus's MemorisationIndex (or None): the share of the text copied from the corpus is
    reported when the stream ends.
    """
    worker = get_current_worker()
    try:
        from lstmtui.core.sampling import CharGenerator

        config = settings.sampling_config()
        if seed is not None:
            loaded = load_model() if load_model is not None else None
            if loaded is None:
                post(GenerationEnded(run, "failed", "no model yet: wait for training to start"))
                return
            model, vocab = loaded[0], loaded[1]
            gen = CharGenerator(model, vocab, config)
            gen.prime(seed, drop_unknown=True)
            state.generator, state.config, state.context, state.seed = gen, settings, seed, seed
        elif state.generator is None:
            post(GenerationEnded(run, "failed", "nothing to continue: type a seed and press Enter"))
            return
        elif _settings(state.config) != _settings(settings):
            # new settings: a fresh generator primed with everything so far continues the same text
            old = state.generator
            gen = CharGenerator(old.model, old.vocab, config)
            gen.prime(state.context, drop_unknown=True)
            state.generator, state.config = gen, settings
        gen = state.generator
        buf: list[str] = []
        last = time.monotonic()
        reason = "done"
        for ch in gen.stream(config.length):
            buf.append(ch)
            if worker.is_cancelled or stop.is_set():
                reason = "stopped"
                break
            now = time.monotonic()
            if now - last >= TEXT_INTERVAL_S:
                text = "".join(buf)
                state.context += text
                post(GeneratedText(run, text))
                buf.clear()
                last = now
        if buf:
            text = "".join(buf)
            state.context += text
            post(GeneratedText(run, text))
        post(GenerationEnded(run, reason, memorised=_copied_share(memo, state)))
    except Exception as exc:  # noqa: BLE001 - a generation failure is shown, the app goes on
        post(GenerationEnded(run, "failed", str(exc) or type(exc).__name__))
    finally:
        release_free_heap()


def _copied_share(memo: Callable[[], Any] | None, state: GenerationState) -> float | None:
    """Share of everything generated since the seed that is copied verbatim from the corpus."""
    index = memo() if memo is not None else None
    generated = state.context[len(state.seed):]
    return index.share(generated, state.seed) if index is not None and generated else None


def _settings(config: Any) -> Any:
    """The sampling settings that need a new generator (the length does not)."""
    from dataclasses import replace

    return replace(config, length=0)
