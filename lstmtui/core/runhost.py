"""RunHost: runs one TrainingSession in a thread of its own and fans its events out to subscribers.

The host, not a user interface, owns the training thread, so a run outlives whichever client
watches it (the TUI today, a socket client later). Clients subscribe through bounded queues: the
training thread only appends to them and never waits, and a subscriber whose queue overflows is
dropped and flagged, so it re-subscribes and reads a fresh ``snapshot()``. Commands (pause, stop,
save, ...) go to the session's command queue and act at the next step boundary.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstmtui.core.config import TrainConfig
from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FinishedEvent,
    PrepareEvent,
    SampleEvent,
    StateEvent,
    StepEvent,
)

if TYPE_CHECKING:
    from lstmtui.core.corpus import Vocab
    from lstmtui.core.memorisation import MemorisationIndex
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.training import TrainingSession

DEFAULT_QUEUE_SIZE = 10_000
RECENT_SAMPLES = 10  # samples a snapshot carries, enough to fill a freshly attached samples pane

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True)
class LossPoint:
    """One point of a loss curve: the step, the loss in nats per character, the training time (if recorded)."""

    step: int
    loss: float
    elapsed_s: float | None


@dataclass(frozen=True)
class LossHistory:
    """A run's whole loss curve as its profile keeps it: training points (merged when long) and validations."""

    train: tuple[LossPoint, ...] = ()
    val: tuple[LossPoint, ...] = ()


@dataclass(frozen=True)
class RunSnapshot:
    """Everything a client needs to draw a run it attaches to; the event stream continues from here."""

    name: str | None
    state: str
    detail: str
    config: TrainConfig | None  # the resolved settings (resumed, planned); None while preparing
    parameters: int
    device: str
    precision: str
    history: LossHistory
    last_step: StepEvent | None
    last_eval: EvalEvent | EpochEvent | None
    last_checkpoint: CheckpointEvent | None
    prepare: PrepareEvent | None
    samples: tuple[SampleEvent, ...]
    best_val_loss: float | None
    paused: bool
    result: FinishedEvent | FailedEvent | None

    def to_dict(self) -> dict[str, JsonValue]:
        """A JSON-ready dict (events as their ``--log-jsonl`` dicts; non-finite floats as None)."""

        def event(value: Event | None) -> JsonValue:
            return None if value is None else _json(value.to_dict())

        return {
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "config": None if self.config is None else _json(self.config.to_dict()),
            "parameters": self.parameters,
            "device": self.device,
            "precision": self.precision,
            "history": {
                "train": [[p.step, _finite(p.loss), p.elapsed_s] for p in self.history.train],
                "val": [[p.step, _finite(p.loss), p.elapsed_s] for p in self.history.val],
            },
            "last_step": event(self.last_step),
            "last_eval": event(self.last_eval),
            "last_checkpoint": event(self.last_checkpoint),
            "prepare": event(self.prepare),
            "samples": [event(s) for s in self.samples],
            "best_val_loss": _finite(self.best_val_loss),
            "paused": self.paused,
            "result": event(self.result),
        }


class Subscription:
    """A bounded queue of events for one client; the training thread appends and never waits."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"a subscription holds at least one event, not {maxsize}")
        self.maxsize = maxsize
        self._items: deque[Event] = deque()
        self._cond = threading.Condition()
        self._dropped = False
        self._ended = False

    def offer(self, event: Event) -> bool:
        """Queue an event (training thread); False, and the subscription is dropped, when full."""
        with self._cond:
            if self._dropped:
                return False
            if len(self._items) >= self.maxsize:
                self._dropped = True
                self._items.clear()  # stale now: the client re-subscribes and re-reads a snapshot
                self._cond.notify_all()
                return False
            self._items.append(event)
            self._cond.notify()
        return True

    def end(self, discard: bool = False) -> None:
        """No more events will come (the run ended; with ``discard``, the client unsubscribed)."""
        with self._cond:
            self._ended = True
            if discard:
                self._items.clear()
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None when none came within ``timeout`` seconds or none will come."""
        with self._cond:
            if not self._items and not self._ended and not self._dropped:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def drain(self) -> list[Event]:
        """Every queued event, oldest first (possibly none); never waits."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
        return items

    @property
    def dropped(self) -> bool:
        """Whether the host dropped this subscriber because its queue overflowed."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True once no event will ever be returned: dropped, or ended with the queue read empty."""
        with self._cond:
            return self._dropped or (self._ended and not self._items)


@dataclass
class _Seen:
    """What the host remembers of the event stream for snapshots (written on the training thread)."""

    last_step: StepEvent | None = None
    last_eval: EvalEvent | EpochEvent | None = None
    last_checkpoint: CheckpointEvent | None = None
    prepare: PrepareEvent | None = None
    detail: str = ""
    samples: deque[SampleEvent] = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES))


class RunHost:
    """Owns a TrainingSession's thread, its command path and the fan-out of its events."""

    def __init__(self, session: TrainingSession) -> None:
        self.session = session
        self._lock = threading.Lock()
        # Replaced, never mutated, so the training thread reads it without taking the lock.
        self._subscribers: tuple[Subscription, ...] = ()
        self._seen = _Seen()
        self._thread: threading.Thread | None = None
        self._result: FinishedEvent | FailedEvent | None = None
        self._ended = False
        session.subscribe(self._on_event)

    # ----- the run -----

    def start(self) -> None:
        """Run the session in the host's own thread ("lstmtui-run"); return at once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this run host has already started its session")
            # A daemon thread: a session stuck inside torch must not keep the process alive at exit.
            self._thread = threading.Thread(target=self._run, name="lstmtui-run", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            result = self.session.run()
            self._result = result if isinstance(result, (FinishedEvent, FailedEvent)) else None
        finally:
            with self._lock:
                self._ended = True
                subscribers, self._subscribers = self._subscribers, ()
            for sub in subscribers:
                sub.end()

    @property
    def alive(self) -> bool:
        """Whether the run's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    @property
    def result(self) -> FinishedEvent | FailedEvent | None:
        """The run's final event once it has ended."""
        return self._result

    # ----- subscribers -----

    def subscribe(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        """A new subscription to every event from now on; read ``snapshot()`` right after for the past."""
        sub = Subscription(maxsize)
        with self._lock:
            if self._ended:
                sub.end()
            else:
                self._subscribers = (*self._subscribers, sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering events to ``sub``; the run goes on."""
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)
        sub.end(discard=True)

    def _on_event(self, event: Event) -> None:
        """The session's listener, on the training thread: remember, then hand to every subscriber."""
        if type(event) is StepEvent:
            self._seen.last_step = event
        else:
            self._remember(event)
        overflowed = False
        for sub in self._subscribers:
            if not sub.offer(event):
                overflowed = True
        if overflowed:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if not s.dropped)

    def _remember(self, event: Event) -> None:
        seen = self._seen
        if isinstance(event, (EvalEvent, EpochEvent)):
            seen.last_eval = event
        elif isinstance(event, SampleEvent):
            seen.samples.append(event)
        elif isinstance(event, CheckpointEvent):
            seen.last_checkpoint = event
        elif isinstance(event, PrepareEvent):
            seen.prepare = event
        elif isinstance(event, StateEvent):
            seen.detail = event.detail

    # ----- commands: thread-safe, never blocking, applied at the next step boundary -----

    def pause(self) -> None:
        """Pause after the current step."""
        self.session.pause()

    def resume(self) -> None:
        """Resume a paused run."""
        self.session.resume()

    def stop(self) -> None:
        """Stop at the next step boundary, saving what was trained."""
        self.session.stop()

    def save(self) -> None:
        """Save the profile after the current step."""
        self.session.save_now()

    def sample(self) -> None:
        """Emit a sample from the current weights after the current step."""
        self.session.request_sample()

    def set_lr(self, lr: float) -> None:
        """Set the peak learning rate from the next step on (ConfigError for an impossible value)."""
        self.session.set_lr(lr)

    # ----- state -----

    def snapshot(self) -> RunSnapshot:
        """The run as it stands: settings, model facts, loss history, latest events and samples."""
        session = self.session
        seen = self._seen
        config = session.config if session.ready else None
        best = session.best_val_loss
        train, val = session.loss_history()
        return RunSnapshot(
            name=session.profile_name,
            state=session.state,
            detail=seen.detail,
            config=config,
            parameters=session.parameter_count,
            device=session.device_name,
            precision=config.precision if config is not None else "",
            history=LossHistory(
                train=tuple(LossPoint(p.step, p.loss, p.elapsed_s) for p in train),
                val=tuple(LossPoint(p.step, p.loss, p.elapsed_s) for p in val),
            ),
            last_step=seen.last_step,
            last_eval=seen.last_eval,
            last_checkpoint=seen.last_checkpoint,
            prepare=seen.prepare,
            samples=tuple(seen.samples),
            best_val_loss=best if math.isfinite(best) else None,
            paused=session.paused,
            result=self._result,
        )

    def weights(self) -> tuple[CharLSTM, Vocab] | None:
        """A CPU eval-mode copy of the latest weights with the vocabulary, or None before the model exists."""
        return self.session.weights()

    def memorisation_index(self) -> MemorisationIndex | None:
        """The corpus's index for the copied-share figure (None: no corpus yet, or too large)."""
        return self.session.memorisation_index()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _json(value: object) -> JsonValue:
    """A JSON-ready copy: tuples as lists, non-finite floats as None."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
