"""The lstmtui Textual app: one screen of panels, a client of the run host that trains, and a generator.

State flows one way: worker threads post typed messages (lstmtui.tui.messages), the handlers here
compute new values (lstmtui.tui.run_view) and assign them to reactive attributes, and the widgets
bound to those attributes redraw. Keys come from the key table (lstmtui.tui.keys), remapped by the
user's keys.toml (lstmtui.tui.keymap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static
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
from lstmtui.tui import keys, run_view
from lstmtui.tui.generator_worker import WeightsSource
from lstmtui.tui.keymap import LoadedKeymap, load_keymap
from lstmtui.tui.messages import RunAttached, RunFacts, TrainingEnded, TrainingUpdate
from lstmtui.tui.run_client import STOP_GRACE_S, OverrideValue, RunLink, RunRequest, follow_run
from lstmtui.tui.run_view import ACTIVE_STATES
from lstmtui.tui.screens.confirm import ConfirmScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.widgets.footer import Footer
from lstmtui.tui.widgets.generation import GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import StatusView, TrainingStats
from lstmtui.tui.widgets.training import TrainingPanel

if TYPE_CHECKING:
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.runhost import RunHost

MIN_WIDTH, MIN_HEIGHT = 60, 16


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


class MainScreen(Screen[None]):
    """The screen of panels; its Tab keys come from the key table like every other key."""

    BINDINGS = list(keys.MAIN_SCREEN)


class LstmtuiApp(App[None]):
    """Train a character LSTM, watch its loss and samples, and generate from it."""

    CSS_PATH = "app.tcss"
    TITLE = "lstmtui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = list(keys.APP)

    stats: reactive[TrainingStats] = reactive(TrainingStats, init=False)  # bound to the status panel
    profile_name: reactive[str | None] = reactive(None, init=False)
    weights_source: reactive[WeightsSource] = reactive(WeightsSource, init=False)  # bound to the generation panel

    def __init__(self, options: AppOptions | None = None, keymap: LoadedKeymap | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self.loaded_keymap = keymap if keymap is not None else load_keymap()
        self.set_reactive(LstmtuiApp.stats, TrainingStats(state="starting" if self.options.start_training else "idle"))
        self.set_reactive(LstmtuiApp.profile_name, self.options.profile)
        self.corpus_paths = list(self.options.corpus_paths)
        self.config = self.options.config
        self.run_link = RunLink()
        self.run_id = 0  # the current run; messages of earlier ones are dropped
        self.training_worker: Worker[None] | None = None
        self.host: RunHost | None = None
        self.store: ProfileStore | None = None
        self.first_paint_at: float | None = None
        self.recent_saves: list[str] = []  # reasons of the last checkpoints, newest last
        self._quitting = False
        self._reported_clashes: set[str] = set()

    @property
    def keymap(self) -> keys.Keymap:
        """The user's remapped keys (binding id -> keys)."""
        return self.loaded_keymap.keymap

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(id="_default")

    # ----- layout -----

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            with TrainingPanel(id="training"):
                yield LossChart(id="chart")
                yield StatusView(id="status").data_bind(LstmtuiApp.stats)
            with Horizontal(id="bottom"):
                with Vertical(id="samples-box"):
                    yield SamplesLog(id="samples")
                yield GenerationPanel(id="generation").data_bind(source=LstmtuiApp.weights_source)
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        from lstmtui.core.profiles import ProfileStore

        self._apply_keymap()
        self.store = ProfileStore(self.options.home)
        self.weights_source = WeightsSource(None, self.store, self.profile_name)
        self.query_one("#samples-box").border_title = "Samples"
        self.query_one("#generation").border_title = "Generate"
        self._check_size(self.size.width, self.size.height)
        if self.options.profile:
            self.open_profile(self.options.profile)
        if self.options.start_training:
            self.start_training(self.corpus_paths, self.config, profile=self.profile_name)
        self._title()
        self.query_one("#training").focus()
        self.call_after_refresh(self._painted)

    def _painted(self) -> None:
        self.first_paint_at = time.monotonic()

    def watch_profile_name(self) -> None:
        self._title()

    def _title(self) -> None:
        name = self.profile_name or "—"
        panel = self.query_one("#training")
        panel.border_title = f"Training · {name}"
        panel.border_subtitle = "[cyan]━ train[/] [yellow]━ val[/] loss (nats/char)"
        self.sub_title = name

    # ----- keys -----

    def _apply_keymap(self) -> None:
        loaded = self.loaded_keymap
        if loaded.keymap:
            self.set_keymap(loaded.keymap)
        for problem in loaded.problems:
            self.notify(problem, title="keys.toml: entry skipped", severity="error", timeout=15)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: DOMNode) -> None:
        """Say once that a keys.toml entry took a key another binding had (that one keeps no key there)."""
        for binding in clashed_bindings:
            if binding.id and binding.id not in self._reported_clashes:
                self._reported_clashes.add(binding.id)
                self.notify(f"{binding.id} lost its key {binding.key}: keys.toml gives it to another key",
                            title="keys.toml", severity="warning", timeout=10)

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen(self.keymap))

    def action_focus_panel(self, which: str) -> None:
        """Move the focus to a panel."""
        target = {"training": "#training", "samples": "#samples", "generation": "#gen-scroll"}[which]
        # set_focus, not focus(): keys of the same burst must already go to the new panel
        self.screen.set_focus(self.query_one(target))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        panel = self.query_one(GenerationPanel)
        for entry in keys.palette_entries(self.keymap):
            namespace = panel if entry.where == "generation" else None
            yield SystemCommand(entry.title, f"key {entry.keys}", partial(self.run_action, entry.action, namespace))

    # ----- too small -----

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        if small:
            self.query_one("#too-small", Static).update(
                f"Terminal too small: {width}x{height}\n"
                f"lstmtui needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
                "Enlarge the window; training goes on meanwhile."
            )
        screen.set_class(small, "-too-small")

    # ----- the run: start, follow, stop -----

    def training_active(self) -> bool:
        """Whether a run is being followed and has not ended."""
        return self.training_worker is not None and self.stats.state in ACTIVE_STATES

    def start_training(self, corpus_paths: list[str], config: TrainConfig, profile: str | None = None,
                       overrides: dict[str, OverrideValue] | None = None) -> None:
        """Start a run: a new profile when ``profile`` is None, else train that profile further."""
        if profile is None:
            profile = self._new_profile_name(corpus_paths)
        self.run_id += 1
        self.profile_name = profile
        self.corpus_paths, self.config = list(corpus_paths), config
        self.run_link, self.host = RunLink(), None
        self.weights_source = WeightsSource(None, self.store, profile)
        self.stats = run_view.restarted(self.stats, profile)
        request = RunRequest(self.run_id, tuple(self.corpus_paths), config, profile, self.options.home,
                             self.options.cleaning, dict(self.options.overrides if overrides is None else overrides))
        link = self.run_link
        self.training_worker = self.run_worker(
            lambda: follow_run(self.post_message, link, request),
            name="training", group="training", thread=True, exit_on_error=False,
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
            self.query_one(LossChart).load([(p.step, p.loss) for p in snap.history.train],
                                           [(p.step, p.loss) for p in snap.history.val])
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
            self.query_one(SamplesLog).add_sample(event.epoch, event.step, event.temperature, event.prime,
                                                  event.text, event.memorised)
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
        self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed", severity="error",
                    timeout=15)
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

    # ----- training keys (keys.APP) -----

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

    def action_new_run(self) -> None:
        """Open the new-run form; on success stop the current run and start the new one."""
        from lstmtui.tui.screens.settings import SettingsScreen, form_overrides

        corpus = self.corpus_paths[0] if self.corpus_paths else _default_corpus()

        async def done(result: tuple[list[str], TrainConfig] | None) -> None:
            if not result:
                return
            paths, config = result
            await self.stop_training()
            self.query_one(LossChart).clear()
            self.query_one(SamplesLog).clear()
            self.stats = TrainingStats()
            self.start_training(paths, config, overrides=form_overrides(self.config, config))

        self.push_screen(SettingsScreen(corpus, self.config), done)

    def action_profiles(self) -> None:
        """Open the profiles screen."""
        from lstmtui.tui.screens.profiles import ProfilesScreen

        async def done(name: str | None) -> None:
            if not name or name == self.profile_name:
                return
            await self.stop_training()
            self.open_profile(name)

        self.push_screen(ProfilesScreen(self.store, self.profile_name), done)

    # ----- quitting -----

    async def action_quit(self) -> None:
        """Quit; asks first while training runs (the profile is saved either way)."""
        if not self.training_active():
            await self.shutdown()
            return

        async def done(yes: bool | None) -> None:
            if yes:
                await self.shutdown()

        question = ConfirmScreen("Training is running. Save the profile and quit?", "Save & quit", "Keep training")
        self.push_screen(question, done)

    async def action_quit_now(self) -> None:
        """Save and quit without asking (Ctrl+C, SIGTERM, SIGHUP)."""
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop generation and the run (it saves the profile), wait for both, then exit."""
        if self._quitting:
            return
        self._quitting = True
        if self.training_worker is not None:
            self.notify("saving the profile and quitting…", timeout=10)
        await self.query_one(GenerationPanel).finish()
        await self.stop_training()
        self.exit()


def _safe_stem(stem: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "run"
    return keep[:48]


def _default_corpus() -> str:
    from lstmtui.core.corpus import default_corpus_path

    return str(default_corpus_path())
