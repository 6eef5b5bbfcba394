"""The app's side of its run: start it or attach to one, follow it into reactive state, stop it; the training keys.

RunControl is the base of LstmtuiApp. The run itself belongs to a RunHost, in this process
(lstmtui.tui.run_client) or in another one the app is attached to (lstmtui.tui.remote_run); a
thread worker follows it and posts typed messages, and the handlers here turn them into new
TrainingStats values (lstmtui.tui.run_view) assigned to the reactive ``stats``, chart points and
samples. The panels it draws into (LossChart, SamplesLog) are composed by the subclass.

Detaching (``d``, or a hang-up) closes the app and leaves the run of this process training in its
host's thread (lstmtui.tui.launch trains on once the app has closed); an attached app detaching
or quitting only closes its connection.
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
from lstmtui.tui.remote_run import AttachRequest, follow_remote
from lstmtui.tui.run_client import STOP_GRACE_S, OverrideValue, RunLink, RunRequest, follow_run
from lstmtui.tui.run_view import ACTIVE_STATES
from lstmtui.tui.screens.confirm import PromptScreen, more_epochs, more_epochs_prompt
from lstmtui.tui.widgets.generation import GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import TrainingStats

if TYPE_CHECKING:
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.runhost import RunHost
    from lstmtui.service import RunRecord


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
    new_profile: str | None = None  # the name of the profile a new run creates (else one from the corpus)
    attach: RunRecord | None = None  # a run of another process to attach to instead of training


class RunControl(App[None]):
    """An app that trains: one run at a time, followed through messages, shown through reactives."""

    stats: reactive[TrainingStats] = reactive(TrainingStats, init=False)  # bound to the status panel
    profile_name: reactive[str | None] = reactive(None, init=False)
    weights_source: reactive[WeightsSource] = reactive(WeightsSource, init=False)  # bound to the generation panel

    def __init__(self, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        starting = self.options.start_training or self.options.attach is not None
        self.set_reactive(RunControl.stats, TrainingStats(state="starting" if starting else "idle"))
        attach_profile = self.options.attach.profile if self.options.attach is not None else None
        self.set_reactive(RunControl.profile_name, self.options.profile or self.options.new_profile or attach_profile)
        self.corpus_paths = list(self.options.corpus_paths)
        self.config = self.options.config
        self.run_link = RunLink()
        self.run_id = 0  # the current run; messages of earlier ones are dropped
        self.training_worker: Worker[None] | None = None
        self.host: RunHost | None = None
        self.store: ProfileStore | None = None
        self.recent_saves: list[str] = []  # reasons of the last checkpoints, newest last
        self.detached = False  # the app closed leaving its run training (launch trains on)
        self.hung_up = False  # ... because the terminal hung up

    def on_mount(self) -> None:
        # Runs after the subclass's on_mount (Textual calls each class's handler), which made the store.
        if self.options.attach is not None:
            self.attach_run(self.options.attach)

    @property
    def attached(self) -> bool:
        """Whether the app follows a run of another process."""
        return self.run_link.remote

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

    def attach_run(self, target: RunRecord | str | Path) -> None:
        """Follow a run of another process: its history, status and samples; the training keys act on it."""
        self.run_id += 1
        self.run_link, self.host = RunLink(remote=True), None
        request = AttachRequest(self.run_id, target, self.store)
        link = self.run_link
        self.training_worker = self.run_worker(
            lambda: follow_remote(self.post_message, link, request),
            name="attached",
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
        """Stop the run (it saves) and wait until it has ended and its follower has returned.

        An attached app leaves its run instead: the run goes on, only the connection closes.
        """
        worker = self.training_worker
        self.run_link.release()
        if self.stats.state in ACTIVE_STATES and worker is not None and not self.attached:
            self.stats = replace(self.stats, state="stopping")
        deadline = time.monotonic() + timeout
        if worker is not None:
            try:
                await asyncio.wait_for(worker.wait(), timeout=timeout)
            except Exception:  # failed, cancelled or slow: the follower is told to end either way
                worker.cancel()
        while self.run_link.alive and not self.attached and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def on_run_attached(self, message: RunAttached) -> None:
        if message.run != self.run_id:
            return
        snap = message.snapshot
        self.host = message.host
        if self.attached and snap.name:
            self.profile_name = snap.name
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
        if self.attached and not message.error and message.result is None and not self.run_link.left:
            self.notify("the connection to the run closed (the run ended or was killed)", severity="warning")
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
        self.query_one(SamplesLog).show_saved(meta.samples)  # the newest training samples it kept

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
        if not finished:
            self.notify(f"training {name} further")
            self.start_training([], self.config, profile=name, overrides=overrides)
            return

        def answered(text: str | None) -> None:  # a finished run: the dialog asks how many more epochs
            if text:
                overrides["epochs"] = more_epochs(text, epoch)
                self.notify(f"training {name} on, to {overrides['epochs']} epochs")
                self.start_training([], self.config, profile=name, overrides=overrides)

        self.push_screen(more_epochs_prompt(name, epoch, epochs), answered)

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

    def action_sample_now(self) -> None:
        """Have the run write a sample from its current weights (it appears in the samples)."""
        host = self.run_link.host
        if self.training_worker is not None and host is not None:
            host.sample()
            self.notify("sampling after this step…")
        else:
            self.notify("nothing to sample from: training is not running")

    def action_set_lr(self) -> None:
        """Ask for a new peak learning rate and set it from the run's next step on."""
        host = self.run_link.host
        if self.training_worker is None or host is None:
            self.notify("training is not running")
            return

        def done(text: str | None) -> None:
            if not text:
                return
            try:
                host.set_lr(float(text))
            except (ValueError, LstmtuiError) as exc:
                message = str(exc) if isinstance(exc, LstmtuiError) else f"not a number: {text}"
                self.notify(message, title="learning rate", severity="error")
                return
            self.notify(f"learning rate {float(text):g} from the next step")

        current = f"{self.stats.lr:g}" if self.stats.lr else ""
        self.push_screen(PromptScreen("Peak learning rate (the schedule scales from it):", current), done)

    # ----- detaching -----

    async def action_detach(self) -> None:
        """Close the screen and leave the run training (in this process, or in its own when attached)."""
        if self.attached:
            await self.shutdown()  # quitting an attached app only closes its connection
        elif self.training_worker is not None and self.run_link.alive:
            await self.detach_now()
        else:
            self.notify("nothing to detach: no run is training here (q quits)")

    async def detach_now(self, hung_up: bool = False) -> None:
        """Close the app, the run training on in its host's thread (launch waits for it to end)."""
        self.detached, self.hung_up = True, hung_up
        await self.query_one(GenerationPanel).finish()
        self.exit()

    def quit_question(self) -> tuple[str, str, str]:
        """The quit dialog's question and its two answers, while a run is followed."""
        if self.attached:
            name = self.profile_name or "the run"
            return f"Leave {name}? It keeps training (lstmtui attach to come back).", "Leave", "Stay"
        return "Training is running. Save the profile and quit?", "Save & quit", "Keep training"


def _safe_stem(stem: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "run"
    return keep[:48]
