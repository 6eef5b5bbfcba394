"""The app's side of its run: start it, follow it into reactive state, stop it; the training keys.

RunControl is the base of LstmtuiApp. The run itself belongs to a RunHost; a thread worker
(lstmtui.tui.run_client) follows it and posts typed messages, and the handlers here turn them into
new TrainingStats values (lstmtui.tui.run_view) assigned to the reactive ``stats``, chart points
and samples. The panels it draws into (LossChart, SamplesLog) are composed by the subclass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from lstmtui.core.config import TrainConfig
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FinishedEvent,
    SampleEvent,
    StepEvent,
    WarningEvent,
)
from lstmtui.tui import run_view
from lstmtui.tui.generator_worker import WeightsSource
from lstmtui.tui.messages import RunAttached, RunFacts, TrainingEnded, TrainingUpdate
from lstmtui.tui.run_client import STOP_GRACE_S, OverrideValue, RunLink, RunRequest, follow_run
from lstmtui.tui.run_view import ACTIVE_STATES
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import TrainingStats

if TYPE_CHECKING:
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.runhost import RunHost


@dataclass
class AppOptions:
    """What the app starts with; launch() builds it from the command line."""

    corpus_paths: list[str] = field(default_factory=list)
    config: TrainConfig = field(default_factory=TrainConfig)
    cleaning: CleaningOptions | None = None
    profile: str | None = None  # an existing profile to open
    home: Path | None = None
    overrides: dict[str, OverrideValue] = field(default_factory=dict)
    start_training: bool = True


class RunControl(App[None]):
    """An app that trains: one run at a time, followed through messages, shown through reactives."""

    stats: reactive[TrainingStats] = reactive(TrainingStats, init=False)  # bound to the status panel
    profile_name: reactive[str | None] = reactive(None, init=False)
    weights_source: reactive[WeightsSource] = reactive(WeightsSource, init=False)  # bound to the generation panel

    def __init__(self, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self.set_reactive(RunControl.stats, TrainingStats(state="starting" if self.options.start_training else "idle"))
        self.set_reactive(RunControl.profile_name, self.options.profile)
        self.corpus_paths = list(self.options.corpus_paths)
        self.config = self.options.config
        self.run_link = RunLink()
        self.run_id = 0  # the current run; messages of earlier ones are dropped
        self.training_worker: Worker[None] | None = None
        self.host: RunHost | None = None
        self.store: ProfileStore | None = None
        self.recent_saves: list[str] = []  # reasons of the last checkpoints, newest last

    def training_active(self) -> bool:
        """Whether a run is being followed and has not ended."""
        return self.training_worker is not None and self.stats.state in ACTIVE_STATES

    def start_training(
        self,
        corpus_paths: list[str],
        config: TrainConfig,
        profile: str | None = None,
        overrides: dict[str, OverrideValue] | None = None,
    ) -> None:
        """Start a run: a new profile when ``profile`` is None, else train that profile further."""
        if profile is None:
            profile = self._new_profile_name(corpus_paths)
        self.run_id += 1
        self.profile_name = profile
        self.corpus_paths, self.config = list(corpus_paths), config
        self.run_link, self.host = RunLink(), None
        self.weights_source = WeightsSource(None, self.store, profile)
        self.stats = run_view.restarted(self.stats, profile)
        request = RunRequest(
            self.run_id,
            tuple(self.corpus_paths),
            config,
            profile,
            self.options.home,
            self.options.cleaning,
            dict(self.options.overrides if overrides is None else overrides),
        )
        link = self.run_link
        self.training_worker = self.run_worker(
            lambda: follow_run(self.post_message, link, request),
            name="training",
            group="training",
            thread=True,
            exit_on_error=False,
        )

    def _new_profile_name(self, corpus_paths: list[str]) -> str:
        stem = Path(corpus_paths[0]).stem if corpus_paths else "sample"
        try:
            return self.store.unique_name(_safe_stem(stem))
        except LstmtuiError:
            return self.store.unique_name("run")

    async def stop_training(self, timeout: float = STOP_GRACE_S + 2) -> None:
        """Stop the run (it saves) and wait until it has ended and its follower has returned."""
        worker = self.training_worker
        self.run_link.stop()
        if self.stats.state in ACTIVE_STATES and worker is not None:
            self.stats = replace(self.stats, state="stopping")
        deadline = time.monotonic() + timeout
        if worker is not None:
            try:
                await asyncio.wait_for(worker.wait(), timeout=timeout)
            except Exception:  # failed, cancelled or slow: the follower is told to end either way
                worker.cancel()
        while self.run_link.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def on_run_attached(self, message: RunAttached) -> None:
        if message.run != self.run_id:
            return
        snap = message.snapshot
        self.host = message.host
        self.weights_source = WeightsSource(message.host, self.store, self.profile_name)
        stats = run_view.with_snapshot(self.stats, snap)
        if snap.state == "created":  # the host's thread has not begun the run yet
            stats = replace(stats, state=self.stats.state)
        self.stats = stats
        if snap.history.train or snap.history.val:
            self.query_one(LossChart).load(
                [(p.step, p.loss) for p in snap.history.train], [(p.step, p.loss) for p in snap.history.val]
            )
        samples = self.query_one(SamplesLog)
        for sample in snap.samples:
            if sample.step > samples.last_step:
                self._show_event(sample)

    def on_run_facts(self, message: RunFacts) -> None:
        if message.run == self.run_id:
            self.stats = run_view.with_facts(self.stats, message.snapshot)

    def on_training_update(self, message: TrainingUpdate) -> None:
        if message.run == self.run_id:
            self.apply_update(message.step, message.losses, message.events)

    def apply_update(self, step: StepEvent | None, losses: list[tuple[int, float]], events: list[Event]) -> None:
        """Show one coalesced batch of run events (tests and the TUI benchmark feed it fixed data too)."""
        stats = run_view.with_step(self.stats, step) if step is not None else self.stats
        if losses:
            self.query_one(LossChart).add_losses(losses)
        for event in events:
            stats = run_view.with_event(stats, event)
            self._show_event(event)
        self.stats = stats

    def _show_event(self, event: Event) -> None:
        """What a rare event shows besides the status lines: a chart point, a sample, a notification."""
        if isinstance(event, (EvalEvent, EpochEvent)):
            self.query_one(LossChart).add_val(event.step, event.val_loss)
        elif isinstance(event, SampleEvent):
            self.query_one(SamplesLog).add_sample(
                event.epoch, event.step, event.temperature, event.prime, event.text, event.memorised
            )
        elif isinstance(event, CheckpointEvent):
            self.recent_saves = [*self.recent_saves, event.reason][-20:]
        elif isinstance(event, WarningEvent):
            self.notify(event.message, title="training warning", severity="warning")
        elif isinstance(event, FinishedEvent) and event.message:
            self.notify(event.message, title=f"training {event.reason}")
        elif isinstance(event, FailedEvent):
            self.notify(event.message, title="training failed", severity="error", timeout=15)

    def on_training_ended(self, message: TrainingEnded) -> None:
        if message.run != self.run_id:
            return
        self.training_worker = None
        if message.error:
            self.stats = replace(self.stats, state="failed", error=message.error)
            self.notify(message.error, title="training failed", severity="error", timeout=15)
        else:
            self.stats = run_view.stopped(self.stats)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        self.notify(
            f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed", severity="error", timeout=15
        )
        if event.worker is self.training_worker:
            self.training_worker = None
            self.stats = replace(self.stats, state="failed", error=str(error))

    def open_profile(self, name: str) -> None:
        """Show a saved profile: its whole history, its progress; ready to generate or train on."""
        try:
            meta = self.store.load_meta(name)
        except LstmtuiError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.profile_name = name
        self.weights_source = WeightsSource(None, self.store, name)
        self.query_one(LossChart).load(*run_view.history_from_meta(meta))
        self.stats = run_view.from_meta(name, meta)
        self.query_one(SamplesLog).clear()

    # ----- the training keys (keys.APP) -----

    def action_pause(self) -> None:
        """Pause or resume training; train a stopped or opened profile further."""
        state, host = self.stats.state, self.run_link.host
        if self.training_worker is not None and host is not None and state in ("training", "paused"):
            if state == "training":
                host.pause()
                self.notify("pausing after this step")
            else:
                host.resume()
        elif self.training_worker is not None:
            self.notify(f"training is {state}: wait a moment")
        elif self.profile_name and self.store.exists(self.profile_name):
            self._train_further(self.profile_name)
        else:
            self.notify("nothing to train: press n for a new run", severity="warning")

    def _train_further(self, name: str) -> None:
        # training on from the UI lifts the run's step and time limits
        overrides: dict[str, OverrideValue] = {"max_steps": 0, "time_budget_s": 0.0}
        try:
            finished, epoch, epochs = run_view.finished_in_meta(self.store.load_meta(name))
        except LstmtuiError:
            finished, epoch, epochs = False, self.stats.epoch, self.stats.epochs
        self.stats = replace(self.stats, epoch=epoch, epochs=epochs)
        if finished:
            overrides["epochs"] = max(1, epochs or self.config.epochs) * 2  # a finished run: as many epochs again
            self.notify(f"training {name} on, to {overrides['epochs']} epochs")
        else:
            self.notify(f"training {name} further")
        self.start_training([], self.config, profile=name, overrides=overrides)

    def action_stop_training(self) -> None:
        """Stop training; the run saves what was trained."""
        if self.training_worker is None:
            self.notify("training is not running")
            return
        self.run_link.stop()
        self.stats = replace(self.stats, state="stopping")

    def action_save(self) -> None:
        """Save the profile now."""
        host = self.run_link.host
        if self.training_worker is not None and host is not None:
            host.save()
            self.notify("saving the profile…")
        else:
            self.notify("nothing to save: training is not running")


def _safe_stem(stem: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "run"
    return keep[:48]
