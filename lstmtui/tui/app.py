"""The lstmtui Textual app: one screen of panels over a training session and a generator."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from lstmtui.core.config import TrainConfig
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    FailedEvent,
    FinishedEvent,
    PrepareEvent,
    SampleEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)
from lstmtui.tui import bridge
from lstmtui.tui.messages import (
    GeneratedText,
    GenerationEnded,
    SessionReady,
    TrainingEnded,
    TrainingUpdate,
)
from lstmtui.tui.screens.confirm import ConfirmScreen, PromptScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.widgets.footer import Footer
from lstmtui.tui.widgets.generation import METHODS, TOP_K_STEPS, GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import StatusView, TrainingStats
from lstmtui.tui.widgets.training import TrainingPanel

MIN_WIDTH, MIN_HEIGHT = 60, 16
LN2 = math.log(2)
ACTIVE_STATES = ("starting", "preparing", "training", "paused", "stopping")


@dataclass
class AppOptions:
    """What the app starts with; launch() builds it from the command line."""

    corpus_paths: list[str] = field(default_factory=list)
    config: TrainConfig = field(default_factory=TrainConfig)
    cleaning: Any = None
    profile: str | None = None  # an existing profile to open
    home: Path | None = None
    overrides: dict = field(default_factory=dict)
    start_training: bool = True


class LstmtuiApp(App):
    """Train a character LSTM, watch its loss and samples, and generate from it."""

    CSS_PATH = "app.tcss"
    TITLE = "lstmtui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("ctrl+c", "quit_now", "save & quit", priority=True, show=False),
        Binding("ctrl+q", "quit", "quit", priority=True, show=False),
        Binding("q", "quit", "quit"),
        Binding("question_mark,f1", "help", "help", key_display="?"),
        Binding("p", "pause", "pause/resume", show=False),
        Binding("x", "stop_training", "stop", show=False),
        Binding("s", "save", "save", show=False),
        Binding("n", "new_run", "new run", show=False),
        Binding("o,f2", "profiles", "profiles", show=False),
        Binding("1", "focus_panel('training')", "training", show=False),
        Binding("2", "focus_panel('samples')", "samples", show=False),
        Binding("3", "focus_panel('generation')", "generation", show=False),
        Binding("escape", "gen_stop", "stop generating", show=False),
    ]

    def __init__(self, options: AppOptions | None = None) -> None:
        super().__init__()
        self.options = options or AppOptions()
        self.stats = TrainingStats(state="starting" if self.options.start_training else "idle")
        self.handle = bridge.TrainingHandle()
        self.training_worker = None
        self.session: Any = None
        self.profile_name: str | None = self.options.profile
        self.corpus_paths = list(self.options.corpus_paths)
        self.config = self.options.config
        self.gen_state = bridge.GenerationState()
        self.gen_run = 0
        self.gen_worker = None
        self.gen_stop: threading.Event | None = None
        self._gen_pending: tuple | None = None
        self._quitting = False
        self.first_paint_at: float | None = None
        self.store = None
        self.recent_saves: list[str] = []  # reasons of the last checkpoints, newest last

    # ----- layout -----

    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            yield TrainingPanel(self.stats, id="training")
            with Horizontal(id="bottom"):
                with Vertical(id="samples-box"):
                    yield SamplesLog(id="samples")
                yield GenerationPanel(id="generation")
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        from lstmtui.core.profiles import ProfileStore

        self.store = ProfileStore(self.options.home)
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

    def _title(self) -> None:
        name = self.profile_name or "—"
        self.query_one("#training").border_title = f"Training · {name}"
        self.query_one("#training").border_subtitle = "[cyan]━ train[/] [yellow]━ val[/] loss (nats/char)"
        self.sub_title = name

    # ----- too small -----

    def on_resize(self, event) -> None:
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

    # ----- training -----

    def training_active(self) -> bool:
        """Whether a training worker is running."""
        return self.training_worker is not None and self.stats.state in ACTIVE_STATES

    def start_training(self, corpus_paths: list[str], config: TrainConfig, profile: str | None = None,
                       overrides: dict | None = None) -> None:
        """Start a training worker: a new profile when ``profile`` is None or absent, else train it on."""
        if profile is None:
            stem = Path(corpus_paths[0]).stem if corpus_paths else "sample"
            try:
                profile = self.store.unique_name(_safe_stem(stem))
            except LstmtuiError:
                profile = self.store.unique_name("run")
        self.profile_name = profile
        self.corpus_paths, self.config = list(corpus_paths), config
        self.handle = bridge.TrainingHandle()
        self.session = None
        self.stats.state, self.stats.error, self.stats.detail = "starting", "", ""
        self.stats.profile = profile
        self._title()
        self.training_worker = self.run_worker(
            lambda handle=self.handle: bridge.train_worker(
                self.post_message, handle, self.corpus_paths, config, profile, self.options.home,
                self.options.cleaning, overrides if overrides is not None else self.options.overrides,
            ),
            name="training",
            group="training",
            thread=True,
            exit_on_error=False,
        )
        self.status_refresh()

    async def stop_training(self, timeout: float = bridge.STOP_GRACE_S + 2) -> None:
        """Stop the running session (it saves) and wait for its worker to end."""
        worker = self.training_worker
        self.handle.stop()
        if worker is None:
            return
        if self.stats.state in ACTIVE_STATES:
            self.stats.state = "stopping"
            self.status_refresh()
        worker.cancel()
        try:
            await asyncio.wait_for(worker.wait(), timeout=timeout)
        except Exception:  # noqa: BLE001 - cancelled, failed or slow: we leave either way
            pass

    def on_session_ready(self, message: SessionReady) -> None:
        self.session = message.session

    def on_training_update(self, message: TrainingUpdate) -> None:
        self.apply_update(message.step, message.losses, message.events)

    def apply_update(self, step: StepEvent | None, losses: list, events: list) -> None:
        """Show one coalesced batch of engine events (also used by tests to feed fixed data)."""
        s = self.stats
        chart = self.query_one("#chart", LossChart)
        if step is not None:
            s.step, s.epoch, s.epoch_step = step.step, step.epoch, step.epoch_step
            s.steps_per_epoch, s.total_steps = step.steps_per_epoch, step.total_steps
            s.loss, s.lr, s.chars_per_s = step.loss, step.lr, step.chars_per_s
            s.elapsed_s, s.eta_s = step.elapsed_s, step.eta_s
            if s.steps_per_epoch:
                s.epochs = max(1, round(s.total_steps / s.steps_per_epoch))
            if self.session is not None and not s.device:
                s.device = getattr(self.session, "device_name", "") or ""
                s.params = getattr(self.session, "parameter_count", 0) or 0
        if losses:
            chart.add_losses(losses)
        for event in events:
            self.apply_event(event)
        self.status_refresh()

    def apply_event(self, event: Any) -> None:
        """Show one engine event."""
        s = self.stats
        if isinstance(event, PrepareEvent):
            pct = f" {event.done / event.total:.0%}" if event.total else ""
            s.prepare = f"{event.stage}{pct}"
        elif isinstance(event, StateEvent):
            s.state, s.detail = event.state, event.detail
            if event.state == "failed" and event.detail:
                s.error = event.detail
            if event.state == "training" and self.session is not None and self.profile_name is None:
                self.profile_name = self.session.profile_name
        elif isinstance(event, (EvalEvent, EpochEvent)):
            self.query_one("#chart", LossChart).add_val(event.step, event.val_loss)
            s.val_bpc = event.val_bpc
            if math.isfinite(event.best_val_loss):
                s.best_bpc = event.best_val_loss / LN2
        elif isinstance(event, SampleEvent):
            self.query_one("#samples", SamplesLog).add_sample(event.epoch, event.step, event.temperature, event.prime, event.text,
                                                                  event.memorised)
        elif isinstance(event, CheckpointEvent):
            s.saved = f"step {event.step:,} ({event.reason})"
            self.recent_saves = (self.recent_saves + [event.reason])[-20:]
        elif isinstance(event, WarningEvent):
            self.notify(event.message, title="training warning", severity="warning")
        elif isinstance(event, FinishedEvent):
            if event.message:
                self.notify(event.message, title=f"training {event.reason}")
            if math.isfinite(event.best_val_bpc):
                s.best_bpc = event.best_val_bpc
        elif isinstance(event, FailedEvent):
            s.state, s.error = "failed", event.message
            self.notify(event.message, title="training failed", severity="error", timeout=15)

    def on_training_ended(self, message: TrainingEnded) -> None:
        self.training_worker = None
        if message.error:
            self.stats.state, self.stats.error = "failed", message.error
            self.notify(message.error, title="training failed", severity="error", timeout=15)
        elif self.stats.state in ACTIVE_STATES:
            self.stats.state = "stopped"
        self.status_refresh()

    def on_worker_state_changed(self, event) -> None:
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed", severity="error", timeout=15)
            if event.worker is self.training_worker:
                self.training_worker = None
                self.stats.state, self.stats.error = "failed", str(error)
                self.status_refresh()

    def status_refresh(self) -> None:
        """Redraw the status lines."""
        self.query_one("#status", StatusView).refresh()

    def open_profile(self, name: str) -> None:
        """Show a saved profile: its whole history, its progress; ready to generate or train on."""
        try:
            meta = self.store.load_meta(name)
        except LstmtuiError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.profile_name = name
        self.gen_state = bridge.GenerationState()
        chart = self.query_one("#chart", LossChart)
        chart.load_history(meta.get("history") or {})
        progress = meta.get("progress") or {}
        train_config = meta.get("train_config") or {}
        s = self.stats
        s.profile, s.state, s.error, s.detail = name, "idle", "", ""
        s.step = int(progress.get("step") or 0)
        s.epoch = int(progress.get("epoch") or 0)
        s.epochs = int(train_config.get("epochs") or 0)
        s.epoch_step = int(progress.get("epoch_step") or 0)
        s.elapsed_s = float(progress.get("elapsed_s") or 0.0)
        s.eta_s = math.nan
        s.chars_per_s, s.loss, s.lr = 0.0, math.nan, math.nan
        best = progress.get("best_val_loss")
        s.best_bpc = best / LN2 if isinstance(best, (int, float)) and math.isfinite(best) else math.nan
        val = (meta.get("history") or {}).get("val") or []
        s.val_bpc = val[-1][2] if val and len(val[-1]) > 2 else math.nan
        s.saved = f"{meta.get('updated', '')}"[:19].replace("T", " ")
        s.device = ""
        try:
            from lstmtui.core.config import ModelConfig

            s.params = ModelConfig.from_dict(meta["model"]).parameter_count()
        except Exception:  # noqa: BLE001 - the count is decoration
            s.params = 0
        self.query_one("#samples", SamplesLog).clear()
        self._title()
        self.status_refresh()

    # ----- training actions -----

    def action_pause(self) -> None:
        """Pause or resume training; train a stopped or opened profile further."""
        state = self.stats.state
        if self.training_worker is not None and state == "training":
            self.handle.command("pause")
            self.notify("pausing after this step")
        elif self.training_worker is not None and state == "paused":
            self.handle.command("resume")
        elif self.training_worker is not None:
            self.notify(f"training is {state}: wait a moment")
        elif self.profile_name and self.store.exists(self.profile_name):
            # training on from the UI lifts the run's step and time limits
            overrides: dict = {"max_steps": 0, "time_budget_s": 0.0}
            if self._profile_finished():
                epochs = max(1, self.stats.epochs or self.config.epochs)
                overrides["epochs"] = epochs * 2  # a finished run: as many epochs again
                self.notify(f"training {self.profile_name} on, to {overrides['epochs']} epochs")
            else:
                self.notify(f"training {self.profile_name} further")
            self.start_training([], self.config, profile=self.profile_name, overrides=overrides)
        else:
            self.notify("nothing to train: press n for a new run", severity="warning")

    def _profile_finished(self) -> bool:
        try:
            meta = self.store.load_meta(self.profile_name)
        except LstmtuiError:
            return False
        progress = meta.get("progress") or {}
        epochs = int((meta.get("train_config") or {}).get("epochs") or 0)
        self.stats.epoch = int(progress.get("epoch") or 0)
        self.stats.epochs = epochs
        return bool(progress.get("finished")) or (epochs > 0 and self.stats.epoch >= epochs)

    async def action_stop_training(self) -> None:
        """Stop training; the session saves what was trained."""
        if self.training_worker is None:
            self.notify("training is not running")
            return
        self.handle.stop()
        self.stats.state = "stopping"
        self.status_refresh()

    def action_save(self) -> None:
        """Save the profile now."""
        if self.training_worker is not None and self.handle.command("save_now"):
            self.notify("saving the profile…")
        else:
            self.notify("nothing to save: training is not running")

    def action_new_run(self) -> None:
        """Open the new-run form; on success stop the current run and start the new one."""
        from lstmtui.tui.screens.settings import SettingsScreen, form_overrides

        corpus = self.corpus_paths[0] if self.corpus_paths else _default_corpus()

        async def done(result) -> None:
            if not result:
                return
            paths, config = result
            await self.stop_training()
            self.query_one("#chart", LossChart).clear()
            self.query_one("#samples", SamplesLog).clear()
            self.stats = TrainingStats()
            self.query_one("#status", StatusView).stats = self.stats
            self.query_one("#training", TrainingPanel).stats = self.stats
            self.gen_state = bridge.GenerationState()
            self.start_training(paths, config, overrides=form_overrides(self.config, config))

        self.push_screen(SettingsScreen(corpus, self.config), done)

    def action_profiles(self) -> None:
        """Open the profiles screen."""
        from lstmtui.tui.screens.profiles import ProfilesScreen

        async def done(name: str | None) -> None:
            if not name or name == self.profile_name:
                return
            await self.stop_training()
            self.stats = TrainingStats()
            self.query_one("#status", StatusView).stats = self.stats
            self.query_one("#training", TrainingPanel).stats = self.stats
            self.open_profile(name)

        self.push_screen(ProfilesScreen(self.store, self.profile_name), done)

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen())

    def action_focus_panel(self, which: str) -> None:
        """Move the focus to a panel."""
        target = {"training": "#training", "samples": "#samples", "generation": "#gen-scroll"}[which]
        self._focus_now(self.query_one(target))

    # ----- generation -----

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "seed":
            self.generate(seed=event.value)
            self._focus_now(self.query_one("#gen-scroll"))

    def generate(self, seed: str | None) -> None:
        """Start generating: from a seed with fresh weights, or (seed None) continue the last text."""
        panel = self.query_one("#generation", GenerationPanel)
        if self.gen_worker is not None:
            # one generator at a time: this request runs once the current one has stopped
            self._gen_pending = (seed,)
            if self.gen_stop is not None:
                self.gen_stop.set()
            return
        if seed is None and self.gen_state.generator is None:
            seed = panel.query_one("#seed", Input).value
        self.gen_run += 1
        self.gen_stop = threading.Event()
        if seed is not None:
            panel.start_text(seed)
        panel.set_status("generating")
        load = self._model_source() if seed is not None else None
        run, stop, settings, state = self.gen_run, self.gen_stop, replace(panel.settings), self.gen_state
        session = self.session
        memo = session.memorisation_index if session is not None else None
        self.gen_worker = self.run_worker(
            lambda: bridge.generate_worker(self.post_message, run, state, stop, load, seed, settings, memo),
            name="generation",
            group="generation",
            thread=True,
            exit_on_error=False,
        )

    def _model_source(self):
        """A function (run on the generation thread) returning (model, vocab) to generate from."""
        session, store, name = self.session, self.store, self.profile_name

        def load():
            if session is not None:
                snap = session.snapshot()
                if snap is not None:
                    return snap
            if name and store.exists(name):
                from lstmtui.core.checkpoint import load_model

                model, vocab, _ = load_model(store, name, "latest")
                return model, vocab
            return None

        return load

    def on_generated_text(self, message: GeneratedText) -> None:
        if message.run == self.gen_run:
            self.query_one("#generation", GenerationPanel).append(message.text)

    def on_generation_ended(self, message: GenerationEnded) -> None:
        if message.run != self.gen_run:
            return
        self.gen_worker = None
        panel = self.query_one("#generation", GenerationPanel)
        if message.error:
            self.notify(message.error, title="generation", severity="error")
        panel.set_status(message.reason, message.memorised)
        if self._gen_pending is not None and not self._quitting:
            (seed,) = self._gen_pending
            self._gen_pending = None
            self.generate(seed)

    def action_gen_toggle(self) -> None:
        """Stop generating, or continue from where it stopped."""
        if self.gen_worker is not None:
            self.action_gen_stop()
        else:
            self.generate(seed=None)

    def action_gen_stop(self) -> None:
        """Stop generating (the state is kept for continuing)."""
        self._gen_pending = None
        if self.gen_stop is not None:
            self.gen_stop.set()

    def _settings_changed(self) -> None:
        panel = self.query_one("#generation", GenerationPanel)
        panel.show_settings()
        if self.gen_worker is not None:
            # apply at once: stop and continue the same text under the new settings
            self._gen_pending = (None,)
            if self.gen_stop is not None:
                self.gen_stop.set()

    def action_temperature(self, delta: float) -> None:
        """Change the temperature by delta (0 to 5)."""
        st = self.query_one("#generation", GenerationPanel).settings
        st.temperature = min(5.0, max(0.0, round(st.temperature + delta, 1)))
        if st.method in ("greedy", "beam"):
            st.method = "temperature"
        self._settings_changed()

    def action_gen_method(self) -> None:
        """Cycle the sampling method."""
        st = self.query_one("#generation", GenerationPanel).settings
        st.method = METHODS[(METHODS.index(st.method) + 1) % len(METHODS)]
        self._settings_changed()

    def action_top_k(self, direction: int) -> None:
        """Make top-k smaller or larger (and select the top-k method)."""
        st = self.query_one("#generation", GenerationPanel).settings
        i = min(range(len(TOP_K_STEPS)), key=lambda j: abs(TOP_K_STEPS[j] - st.top_k))
        st.top_k = TOP_K_STEPS[min(len(TOP_K_STEPS) - 1, max(0, i + direction))]
        st.method = "top-k"
        self._settings_changed()

    def action_top_p(self, delta: float) -> None:
        """Change top-p by delta (and select the top-p method)."""
        st = self.query_one("#generation", GenerationPanel).settings
        st.top_p = min(1.0, max(0.05, round(st.top_p + delta, 2)))
        st.method = "top-p"
        self._settings_changed()

    def action_gen_length(self, direction: int) -> None:
        """Change the length of each generation by 100 characters."""
        st = self.query_one("#generation", GenerationPanel).settings
        st.length = min(100_000, max(100, st.length + 100 * direction))
        self.query_one("#generation", GenerationPanel).show_settings()

    def action_focus_seed(self) -> None:
        """Focus the seed input."""
        self._focus_now(self.query_one("#seed", Input))

    def _focus_now(self, widget) -> None:
        # widget.focus() is deferred: keys that arrive in the same burst (a fast typist, a paste,
        # an SSH packet) would still go to the old widget
        self.screen.set_focus(widget)

    def action_save_output(self) -> None:
        """Write the generated text to a file (asks for the name)."""
        panel = self.query_one("#generation", GenerationPanel)
        if not panel.text:
            self.notify("nothing generated yet", severity="warning")
            return
        default = f"{self.profile_name or 'lstmtui'}-{time.strftime('%Y%m%d-%H%M%S')}.txt"

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                target = Path(path).expanduser()
                target.write_text(panel.text, encoding="utf-8")
            except OSError as exc:
                self.notify(f"cannot write {path}: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"wrote {len(panel.text):,} characters to {target}")

        self.push_screen(PromptScreen("Save the generated text to:", default), done)

    # ----- quitting -----

    async def action_quit(self) -> None:
        """Quit; asks first while training runs (the profile is saved either way)."""
        if self.training_active():
            async def done(yes: bool | None) -> None:
                if yes:
                    await self.shutdown()

            self.push_screen(ConfirmScreen("Training is running. Save the profile and quit?", "Save & quit", "Keep training"), done)
        else:
            await self.shutdown()

    async def action_quit_now(self) -> None:
        """Save and quit without asking (Ctrl+C, SIGTERM, SIGHUP)."""
        await self.shutdown()


    async def shutdown(self) -> None:
        """Stop generation and training (saving the profile), then exit."""
        if self._quitting:
            return
        self._quitting = True
        self._gen_pending = None
        if self.gen_stop is not None:
            self.gen_stop.set()
        if self.training_worker is not None:
            self.notify("saving the profile and quitting…", timeout=10)
            await self.stop_training()
        if self.gen_worker is not None:
            try:
                await asyncio.wait_for(self.gen_worker.wait(), timeout=5)
            except Exception:  # noqa: BLE001 - stopping either way
                pass
        self.exit()

    # ----- command palette -----

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause / resume training", "Pause, resume, or train a stopped profile further (p)", self.action_pause)
        yield SystemCommand("Stop training", "Stop and save the profile (x)", self.action_stop_training)
        yield SystemCommand("Save profile now", "Save the profile after this step (s)", self.action_save)
        yield SystemCommand("New training run", "Settings form for a new run (n)", self.action_new_run)
        yield SystemCommand("Profiles", "List, open, rename, delete profiles (o)", self.action_profiles)
        yield SystemCommand("Generate from seed", "Focus the seed input (i)", self.action_focus_seed)
        yield SystemCommand("Stop / continue generating", "Toggle generation (space)", self.action_gen_toggle)
        yield SystemCommand("Next sampling method", "temperature, top-k, top-p, greedy, beam (m)", self.action_gen_method)
        yield SystemCommand("Save generated text", "Write the output to a file (w)", self.action_save_output)
        yield SystemCommand("Keys", "Every key (?)", self.action_help)
        yield SystemCommand("Save and quit", "Stop, save and exit (ctrl+c)", self.action_quit_now)


def _safe_stem(stem: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip("-.") or "run"
    return keep[:48]


def _default_corpus() -> str:
    from lstmtui.core.corpus import default_corpus_path

    return str(default_corpus_path())
