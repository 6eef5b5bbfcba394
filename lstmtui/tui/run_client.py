"""The TUI as a client of a run host: build the run, follow its events, post coalesced messages.

The host (lstmtui.core.runhost) owns the training thread; the app only follows it. A Textual thread
worker builds the session and its host (torch is imported there, never on the UI thread), starts
the host, serves it on the run's socket (lstmtui.service: `lstmtui ps`, `attach`, `stop` reach it),
subscribes, and turns the event stream into typed messages: the latest step and the loss points at
most ``METRIC_UPDATES_PER_S`` times a second, the rare events at once. It checks for cancellation on
every pass of its loop. A run in another process is followed the same way by lstmtui.tui.remote_run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import get_current_worker

from lstmtui.core.config import TrainConfig
from lstmtui.core.events import Event, PrepareEvent, StateEvent, StepEvent, WarningEvent
from lstmtui.tui.messages import METRIC_UPDATES_PER_S, RunAttached, RunFacts, TrainingEnded, TrainingUpdate

if TYPE_CHECKING:
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.runhost import RunHost, Subscription
    from lstmtui.service import RunServer

Post = Callable[[Message], object]
OverrideValue = int | float | str | bool | None

METRIC_INTERVAL_S = 1 / METRIC_UPDATES_PER_S
POLL_S = 0.1  # how long the follower waits for an event before it looks at the clock and at cancellation
STOP_GRACE_S = 15.0  # how long quitting waits for the run's final save


class Coalescer:
    """Batches a run's events into TrainingUpdate messages: one per interval, rare events at once."""

    def __init__(
        self, post: Post, run: int = 0, interval: float = METRIC_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.post = post
        self.run = run
        self.interval = interval
        self.clock = clock
        self.last_post = -1e9
        self.step: StepEvent | None = None
        self.prepare: PrepareEvent | None = None
        self.losses: list[tuple[int, float]] = []
        self.events: list[Event] = []
        self.posted = 0

    def __call__(self, event: Event) -> None:
        """Take one event; post when it is rare or the interval has passed."""
        if self.take(event):
            self.flush()
        else:
            self.post_if_due()

    def take(self, event: Event) -> bool:
        """Keep one event for the next message; True when it is rare (to be posted at once)."""
        if isinstance(event, StepEvent):
            self.step = event
            if not event.skipped:
                self.losses.append((event.step, event.loss))
            return False
        if isinstance(event, PrepareEvent):
            self.prepare = event
            return False
        self.events.append(event)
        return True

    def post_if_due(self) -> None:
        """Post what is pending when the interval since the last message has passed."""
        now = self.clock()
        if now - self.last_post >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Post whatever is pending."""
        if self.step is None and self.prepare is None and not self.losses and not self.events:
            return
        events = ([self.prepare] if self.prepare is not None else []) + self.events
        self.post(TrainingUpdate(self.run, self.step, self.losses, events))
        self.posted += 1
        self.step, self.prepare, self.losses, self.events = None, None, [], []
        self.last_post = self.clock() if now is None else now


@dataclass(frozen=True)
class RunRequest:
    """What to train: the app builds one per run and the worker turns it into a running host."""

    run: int
    corpus_paths: tuple[str, ...]
    config: TrainConfig
    profile: str
    home: Path | None = None
    cleaning: CleaningOptions | None = None
    overrides: Mapping[str, OverrideValue] = field(default_factory=dict)
    serve: bool = True  # make the run reachable on its socket (ps, attach, stop, detaching)

    def build_host(self) -> RunHost:
        """A TrainingSession for this request inside a RunHost, not started (imports torch)."""
        from lstmtui.core.profiles import ProfileStore
        from lstmtui.core.runhost import RunHost
        from lstmtui.core.training import TrainingSession

        session = TrainingSession(
            list(self.corpus_paths) or None,
            self.config,
            profile=self.profile,
            store=ProfileStore(self.home),
            cleaning=self.cleaning,
            overrides=dict(self.overrides),
        )
        return RunHost(session)


class RunLink:
    """The app's line to its run: the host once a worker has built it, and a stop that may come first.

    ``host`` is a RunHost for a run of this process, or a RemoteRun (``remote``) for one the app is
    attached to. ``stop()`` stops the run (it saves); ``leave()`` only stops following it. The signal
    handlers use the link too, from outside the event loop, hence the lock: reentrant, because a
    handler runs on the main thread and may interrupt that thread while it holds the lock.
    """

    def __init__(self, remote: bool = False) -> None:
        self.remote = remote
        self.server: RunServer | None = None  # the run's socket, while this process serves it
        self._lock = threading.RLock()
        self._host: RunHost | None = None
        self._stopped = False
        self._left = threading.Event()

    @property
    def host(self) -> RunHost | None:
        """The run's host, once built and started (a RemoteRun when ``remote``)."""
        with self._lock:
            return self._host

    def attach(self, host: RunHost) -> bool:
        """Record the built host; False when a stop or leave came first (the host is then never started)."""
        with self._lock:
            if self._stopped or self._left.is_set():
                return False
            self._host = host
            return True

    def stop(self) -> None:
        """Stop the run (it saves what was trained); safe before the host exists."""
        with self._lock:
            self._stopped = True
            host = self._host
        if host is not None:
            host.stop()

    def leave(self) -> None:
        """Stop following the run and leave it be (an attached app quitting); the follower ends soon after."""
        self._left.set()

    @property
    def left(self) -> bool:
        """Whether ``leave()`` was called."""
        return self._left.is_set()

    def release(self) -> None:
        """What quitting does to the run: stop one of this process, leave one it is attached to."""
        if self.remote:
            self.leave()
        else:
            self.stop()

    @property
    def alive(self) -> bool:
        """Whether the run is going on (its thread runs, or its connection is open)."""
        host = self.host
        return host is not None and host.alive

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True when it has (or never started)."""
        host = self.host
        return host is None or host.join(timeout)

    @property
    def run_name(self) -> str | None:
        """The name other terminals reach the run by (None while it is not served)."""
        server = self.server
        return server.name if server is not None else None


def follow_run(post: Post, link: RunLink, request: RunRequest) -> None:
    """Body of the training thread worker: build and start the run, then follow it until it ends."""
    worker = get_current_worker()
    try:
        host = request.build_host()
    except Exception as exc:  # a bad corpus or setting is shown in the UI; the app goes on
        post(TrainingEnded(request.run, error=str(exc) or type(exc).__name__))
        return
    sub = host.subscribe()  # before start: no event of the run is missed
    if worker.is_cancelled or not link.attach(host):
        host.unsubscribe(sub)
        post(TrainingEnded(request.run))
        return
    host.start()
    if request.serve:
        link.server = serve_run(post, host, request)
    post(RunAttached(request.run, host, host.snapshot()))
    coalescer = Coalescer(post, request.run)
    while not worker.is_cancelled:
        sub = follow_once(post, host, sub, coalescer, request.run)
        if sub.closed:
            break
    coalescer.flush()
    host.unsubscribe(sub)
    post(TrainingEnded(request.run, result=host.result))  # None while the run goes on (the app was closed)
    from lstmtui.core.heap import release_free_heap

    release_free_heap()


def serve_run(post: Post, host: RunHost, request: RunRequest) -> RunServer | None:
    """Serve the run on its socket; a run that cannot be served trains on unreachable, with a warning."""
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.service import ServiceError, serve
    from lstmtui.service.detach import log_path

    def warn(message: str) -> None:
        post(TrainingUpdate(request.run, None, [], [WarningEvent(step=0, message=message)]))

    store = ProfileStore(request.home)
    try:
        return serve(host, request.profile, home=store.home, log=log_path(store.root, request.profile), on_error=warn)
    except ServiceError as exc:
        warn(f"other terminals cannot reach this run: {exc}")
        return None


def follow_once(post: Post, host: RunHost, sub: Subscription, coalescer: Coalescer, run: int) -> Subscription:
    """Wait a moment for events, hand them to the coalescer; re-subscribe when the host dropped us."""
    event = sub.get(timeout=POLL_S)
    events = [event, *sub.drain()] if event is not None else []
    rare = False
    for each in events:
        rare = coalescer.take(each) or rare
    if rare:
        coalescer.flush()
    coalescer.post_if_due()
    if any(isinstance(e, StateEvent) and e.state == "training" for e in events):
        post(RunFacts(run, host.snapshot()))  # the model is built: its device and size are known now
    if sub.dropped:
        # the UI fell 10,000 events behind: start again from a fresh snapshot
        coalescer.flush()
        sub = host.subscribe()
        post(RunAttached(run, host, host.snapshot()))
    return sub
