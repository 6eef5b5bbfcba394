"""The TUI attached to a run of another process: the same messages as a local run, through its socket.

``RemoteRun`` stands where the app keeps a RunHost (``app.host``, ``run_link.host``, the generation
panel's WeightsSource): its commands go to the run as protocol commands (lstmtui.service), its
snapshot is the latest one the run sent. ``follow_remote`` is the thread worker that reads the run's
messages and posts what ``follow_run`` posts for a local run (RunAttached, RunFacts, TrainingUpdate,
TrainingEnded), so the app draws both alike. Leaving (quitting, ``d``) closes the connection only:
the run goes on.

Generation needs the run's weights, which live in the other process: ``weights()`` asks the run to
save, waits for its checkpoint event and loads the profile's ``latest`` weights read-only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.worker import get_current_worker

from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FinishedEvent,
    SampleEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)
from lstmtui.service import RunClient, RunRecord, ServiceError, event_from_dict, snapshot_from_dict
from lstmtui.tui.messages import RunAttached, RunFacts, TrainingEnded
from lstmtui.tui.run_client import POLL_S, Coalescer, Post, RunLink

if TYPE_CHECKING:
    from lstmtui.core.corpus import Vocab
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.runhost import RunSnapshot

CONNECT_TIMEOUT_S = 10.0
SAVE_WAIT_S = 30.0  # how long generation waits for the run's save before it takes the last one there is
READS_PER_PASS = 500  # messages taken at once before the coalescer may post (a burst is read in batches)
LIVE_STATES = ("training", "paused")  # a run in these states saves when asked


class RemoteRun:
    """A run in another process seen through a RunClient; the host-like side the app talks to.

    Commands may be sent from any thread; ``weights()`` runs on the generation thread and waits on
    the checkpoint events the follower thread notes.
    """

    def __init__(self, client: RunClient, store: ProfileStore | None) -> None:
        self.client = client
        self.store = store
        self.name = str(client.hello.get("run") or "")
        self.profile = client.hello.get("profile") or client.snapshot.get("name")
        self.pid = client.hello.get("pid")
        self.state = str(client.snapshot.get("state") or "")
        self._result: FinishedEvent | FailedEvent | None = None
        self._ended = threading.Event()
        self._saves = threading.Condition()
        self._checkpoints = 0
        self.weights_wait_s: float | None = None  # how long the last weights() waited for the run's save

    # ----- commands (any thread; each acts at the run's next step boundary) -----

    def _send(self, cmd: str, **fields: object) -> None:
        if self._ended.is_set():
            return
        try:
            self.client.send(cmd, **fields)
        except ServiceError:
            pass  # the connection is gone: the follower sees it and ends

    def pause(self) -> None:
        """Pause the run after its current step."""
        self._send("pause")

    def resume(self) -> None:
        """Resume the paused run."""
        self._send("resume")

    def stop(self) -> None:
        """Stop the run at its next step; it saves and ends."""
        self._send("stop")

    def save(self) -> None:
        """Save the run's profile after its current step."""
        self._send("save")

    def sample(self) -> None:
        """Have the run write a sample from its current weights."""
        self._send("sample")

    def set_lr(self, lr: float) -> None:
        """Set the run's peak learning rate (a refusal comes back as a warning)."""
        self._send("set_lr", value=float(lr))

    # ----- what the app reads -----

    def snapshot(self) -> RunSnapshot:
        """The latest snapshot the run sent."""
        return snapshot_from_dict(self.client.snapshot)

    @property
    def alive(self) -> bool:
        """Whether the run goes on and the connection is open."""
        return not self._ended.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the run ended or the connection closed; True when it has."""
        return self._ended.wait(timeout)

    @property
    def result(self) -> FinishedEvent | FailedEvent | None:
        """The run's final event, once it has ended."""
        return self._result

    def memorisation_index(self) -> None:
        """The corpus index lives in the run's process: no copied share is shown for an attached run."""
        return None

    def weights(self) -> tuple[CharLSTM, Vocab] | None:
        """The run's latest weights: ask it to save, wait for the checkpoint, load them (generation thread)."""
        if self.store is None or not self.profile:
            return None
        started = time.monotonic()
        if self.alive and self.state in LIVE_STATES:
            with self._saves:
                seen = self._checkpoints
            self.save()
            with self._saves:
                self._saves.wait_for(lambda: self._checkpoints > seen or not self.alive, SAVE_WAIT_S)
        self.weights_wait_s = time.monotonic() - started
        if not self.store.exists(self.profile):
            return None
        from lstmtui.core.checkpoint import load_model

        model, vocab, _ = load_model(self.store, self.profile, "latest")
        return model, vocab

    # ----- the follower's side -----

    def note(self, event: Event) -> None:
        """Keep what the commands and weights() depend on (follower thread)."""
        if isinstance(event, StateEvent):
            self.state = event.state
        elif isinstance(event, CheckpointEvent):
            with self._saves:
                self._checkpoints += 1
                self._saves.notify_all()
        elif isinstance(event, (FinishedEvent, FailedEvent)):
            self._result = event

    def end(self, result: Event | None = None) -> None:
        """The run ended or the connection closed (follower thread)."""
        if isinstance(result, (FinishedEvent, FailedEvent)):
            self._result = result
        self._ended.set()
        with self._saves:
            self._saves.notify_all()
        self.client.close()


@dataclass(frozen=True)
class AttachRequest:
    """Which run to attach to: a record from the runs directory, a run name or a socket path."""

    run: int
    target: RunRecord | str | Path
    store: ProfileStore | None = None


class _Watermark:
    """What a snapshot already holds, so events the run repeats right after it are not drawn twice."""

    def __init__(self, snap: RunSnapshot) -> None:
        self.step = snap.last_step.step if snap.last_step is not None else -1
        self.val = snap.history.val[-1].step if snap.history.val else -1
        self.samples = set(snap.samples)

    def seen(self, event: Event) -> bool:
        if isinstance(event, StepEvent):
            return event.step <= self.step
        if isinstance(event, (EvalEvent, EpochEvent)):
            return event.step <= self.val
        if isinstance(event, SampleEvent):
            return event in self.samples
        return False


class RemoteFollower:
    """Reads a run's messages and posts the app's messages for them (the body of follow_remote)."""

    def __init__(self, post: Post, remote: RemoteRun, run: int) -> None:
        self.post = post
        self.remote = remote
        self.run = run
        self.coalescer = Coalescer(post, run)
        self.watermark: _Watermark | None = None
        self.facts_asked = False
        self.facts_known = False

    def attached(self, snap: RunSnapshot) -> None:
        """Post the run as a snapshot shows it: the whole history, status and samples."""
        self.coalescer.flush()
        self.watermark = _Watermark(snap)
        self.facts_known = bool(snap.device)
        self.remote.state = snap.state
        if snap.result is not None:
            self.remote.note(snap.result)
        self.post(RunAttached(self.run, self.remote, snap))  # type: ignore[arg-type]

    def pump(self, timeout: float = POLL_S) -> bool:
        """Handle what arrives within ``timeout``; False once the run has ended or the connection closed."""
        client = self.remote.client
        message = client.read(timeout)
        rare = False
        for _ in range(READS_PER_PASS):
            if message is None:
                break
            kind = message.get("type")
            if kind == "end":
                self.coalescer.flush()
                self.remote.end(event_from_dict(message.get("result")))
                return False
            rare = self._handle(kind, message) or rare
            message = client.read(0)
        if rare:
            self.coalescer.flush()
        self.coalescer.post_if_due()
        if client.closed:
            self.coalescer.flush()
            self.remote.end()
            return False
        return True

    def _handle(self, kind: object, message: dict) -> bool:
        """One message; True when it carried a rare event (posted at once)."""
        if kind == "event":
            event = event_from_dict(message.get("data"))
            if event is None or (self.watermark is not None and self.watermark.seen(event)):
                return False
            self.remote.note(event)
            if isinstance(event, StateEvent) and event.state == "training" and not self.facts_known:
                self._ask_facts()
            return self.coalescer.take(event)
        if kind == "snapshot":
            snap = snapshot_from_dict(message.get("snapshot") or {})
            if self.facts_asked:  # the answer to _ask_facts: the model is built, its device known
                self.facts_asked = False
                self.facts_known = bool(snap.device)
                self.post(RunFacts(self.run, snap))
            else:  # the run resynchronised its clients: the snapshot replaces everything before it
                self.attached(snap)
            return False
        if kind == "error":
            text = f"the run refused a command: {message.get('message')}"
            return self.coalescer.take(WarningEvent(step=0, message=text))
        return False

    def _ask_facts(self) -> None:
        try:
            self.remote.client.send("snapshot")
            self.facts_asked = True
        except ServiceError:
            pass


def follow_remote(post: Post, link: RunLink, request: AttachRequest) -> None:
    """Body of the attached app's thread worker: connect, post the snapshot, follow until the run ends or we leave."""
    worker = get_current_worker()
    try:
        client = RunClient.connect(request.target, timeout=CONNECT_TIMEOUT_S)
    except ServiceError as exc:
        post(TrainingEnded(request.run, error=str(exc)))
        return
    remote = RemoteRun(client, request.store)
    if worker.is_cancelled or not link.attach(remote):  # type: ignore[arg-type]
        remote.end()
        post(TrainingEnded(request.run))
        return
    follower = RemoteFollower(post, remote, request.run)
    follower.attached(remote.snapshot())
    try:
        while not worker.is_cancelled and not link.left and follower.pump():
            pass
    finally:
        follower.coalescer.flush()
        remote.end()  # closes the connection; the run goes on
    post(TrainingEnded(request.run, result=remote.result))
