"""The lstmtui Textual app: one screen of panels over a run it follows (RunControl) and a generator.

State flows one way: worker threads post typed messages (lstmtui.tui.messages), handlers compute
new values (lstmtui.tui.run_view) and assign them to reactive attributes, and the widgets bound to
those attributes redraw. Keys come from the key table (lstmtui.tui.keys), remapped by the user's
keys.toml (lstmtui.tui.keymap). AppOptions is re-exported here for launch() and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.events import Resize
from textual.markup import escape
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static

from lstmtui.core.config import TrainConfig
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.units import UNITS, loss_unit, other_unit, unit_label
from lstmtui.tui import keys, run_view
from lstmtui.tui.generator_worker import WeightsSource
from lstmtui.tui.keymap import LoadedKeymap, load_keymap
from lstmtui.tui.run_control import AppOptions, RunControl
from lstmtui.tui.screens.confirm import ConfirmScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.screens.profiles import ProfilesScreen
from lstmtui.tui.widgets.footer import Footer
from lstmtui.tui.widgets.generation import GenerationOutput, GenerationPanel, SeedInput
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import StatusView, TrainingStats
from lstmtui.tui.widgets.training import TrainingPanel

if TYPE_CHECKING:
    from lstmtui.core.profiles import ProfileMeta

__all__ = ["AppOptions", "LstmtuiApp", "MainScreen"]

MIN_WIDTH, MIN_HEIGHT = 60, 16


class MainScreen(Screen[None]):
    """The screen of panels; its Tab keys come from the key table like every other key."""

    BINDINGS = list(keys.MAIN_SCREEN)

    def get_focusable_widget_at(self, x: int, y: int) -> Widget | None:
        """What a click focuses: a click into the generation panel from outside it goes to the seed box."""
        widget = super().get_focusable_widget_at(x, y)
        if isinstance(widget, GenerationOutput):
            panel = widget.query_ancestor(GenerationPanel)
            focused = self.focused
            if focused is None or panel not in focused.ancestors_with_self:
                return panel.query_one(SeedInput)
        return widget


class LstmtuiApp(RunControl):
    """Train a character LSTM, watch its loss and samples, and generate from it."""

    CSS_PATH = "app.tcss"
    TITLE = "lstmtui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = list(keys.APP)

    def __init__(self, options: AppOptions | None = None, keymap: LoadedKeymap | None = None) -> None:
        super().__init__(options)
        self.loaded_keymap = keymap if keymap is not None else load_keymap()
        self.first_paint_at: float | None = None
        self.units = _starting_units()  # of every loss shown; the units key switches it
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
                yield StatusView(id="status").data_bind(RunControl.stats)
            with Horizontal(id="bottom"):
                with Vertical(id="samples-box"):
                    yield SamplesLog(id="samples")
                yield GenerationPanel(id="generation").data_bind(source=RunControl.weights_source)
        yield Static("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        from lstmtui.core.profiles import ProfileStore

        self._apply_keymap()
        self._show_units(self.units)
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

    def watch_stats(self, old: TrainingStats, new: TrainingStats) -> None:
        if old.fine_tune != new.fine_tune:
            self._title()
            if new.fine_tune:
                self.notify(new.fine_tune, title=self.profile_name or "training")

    def _title(self) -> None:
        name = self.profile_name or "—"
        panel = self.query_one("#training")
        fine_tune = self.stats.fine_tune
        panel.border_title = f"Training · {name}" + (f" · {escape(fine_tune)}" if fine_tune else "")
        panel.border_subtitle = f"[cyan]━ train[/] [yellow]━ val[/] loss ({unit_label(self.units)})"
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
                self.notify(
                    f"keys.toml gives {binding.key} to another action: {binding.id} has no key there now",
                    title="keys.toml",
                    severity="warning",
                    timeout=10,
                )

    def action_toggle_units(self) -> None:
        """Show the losses in the other unit (bits or nats per character)."""
        self._show_units(other_unit(self.units))

    def _show_units(self, unit: str) -> None:
        self.units = unit
        self.query_one(StatusView).unit = unit
        self.query_one(LossChart).unit = unit
        self._title()

    def action_help(self) -> None:
        """Show every key."""
        self.push_screen(HelpScreen(self.keymap))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The focus keys stand aside (keys.STAND_ASIDE) for a text field and for screens over the panels."""
        if action == "focus_panel":
            return isinstance(self.screen, MainScreen) and not isinstance(self.screen.focused, Input)
        return super().check_action(action, parameters)

    def action_focus_panel(self, which: str) -> None:
        """Move the focus to a panel."""
        target = {"training": "#training", "samples": "#samples", "generation": "#seed"}[which]
        # set_focus, not focus(): keys of the same burst must already go to the new panel
        self.screen.set_focus(self.query_one(target))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        panel = self.query_one(GenerationPanel)
        moves_focus = {b.action for b in keys.every_binding() if b.id in keys.STAND_ASIDE}
        for entry in keys.palette_entries(self.keymap):
            namespace = panel if entry.where == "generation" else None
            run = partial(self.run_action, entry.action, namespace)
            if entry.action in moves_focus:  # from the palette a focus key acts even from a text field
                run = partial(self._unfocused, run)
            yield SystemCommand(entry.title, f"key {entry.keys}", run)

    async def _unfocused(self, run: Callable[[], Awaitable[object]]) -> None:
        self.screen.set_focus(None)
        await run()

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

    def action_new_run(self) -> None:
        """Open the new-run form, filled from what is open; on Start stop the current run and start the new one."""
        from lstmtui.tui.screens.settings import NewRun, SettingsScreen, form_overrides

        paths, config = run_view.form_defaults(
            self._open_meta(), self._running_config(), self.corpus_paths, self.config
        )
        corpus = paths[0] if paths else _default_corpus()

        async def done(run: NewRun | None) -> None:
            if run is None:
                return
            await self.stop_training()
            self.query_one(LossChart).clear()
            self.query_one(SamplesLog).clear()
            self.query_one(GenerationPanel).clear()
            self.stats = TrainingStats()
            self.notify(f"starting {run.name}")
            self.start_training(
                run.corpus_paths, run.config, profile=run.name, overrides=form_overrides(config, run.config)
            )

        form = SettingsScreen(
            corpus,
            config,
            name=self._suggest_name(corpus),
            exists=self.store.exists,
            suggest=self._suggest_name,
            corpus_paths=paths,
        )
        self.push_screen(form, done)

    def _open_meta(self) -> ProfileMeta | None:
        """The open profile's saved metadata, if it has been saved and reads."""
        name = self.profile_name
        try:
            return self.store.load_meta(name) if name and self.store.exists(name) else None
        except LstmtuiError:
            return None

    def _running_config(self) -> TrainConfig | None:
        """The settings of the run being followed (as resolved), while there is one."""
        host = self.run_link.host
        if self.training_worker is None or host is None:
            return None
        try:
            return host.snapshot().config
        except Exception:  # a run that just ended or a lost connection: the profile's settings serve
            return None

    def _suggest_name(self, corpus: str) -> str:
        """An unused profile name made from a corpus path."""
        try:
            return self.store.unique_name(Path(corpus).stem or "run")
        except LstmtuiError:
            return self.store.unique_name("run")

    def on_profiles_screen_renamed(self, message: ProfilesScreen.Renamed) -> None:
        """The open profile was renamed: follow it under its new name."""
        if self.profile_name == message.old:
            self.profile_name = message.new
            self.weights_source = replace(self.weights_source, profile=message.new)
            self.stats = replace(self.stats, profile=message.new)

    def action_profiles(self) -> None:
        """Open the profiles screen."""

        async def done(name: str | None) -> None:
            if not name or name == self.profile_name:
                return
            await self.stop_training()
            self.open_profile(name)

        self.push_screen(ProfilesScreen(self.store, self.profile_name, self.units), done)

    # ----- quitting -----

    async def action_quit(self) -> None:
        """Quit; asks first while training runs (the profile is saved either way)."""
        if not self.training_active():
            await self.shutdown()
            return

        async def done(yes: bool | None) -> None:
            if yes:
                await self.shutdown()

        question = ConfirmScreen(*self.quit_question())  # an attached app's run goes on: it says so
        self.push_screen(question, done)

    async def action_quit_now(self) -> None:
        """Save and quit without asking (Ctrl+C, SIGTERM, SIGHUP)."""
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop generation and the run (it saves the profile), wait for both, then exit."""
        if self._quitting:
            return
        self._quitting = True
        if self.training_worker is not None and not self.attached:
            self.notify("saving the profile and quitting…", timeout=10)
        await self.query_one(GenerationPanel).finish()
        await self.stop_training()
        self.exit()


def _starting_units() -> str:
    """The unit losses start in: $LSTMTUI_UNITS, else (or when it holds neither unit) bits."""
    try:
        return loss_unit()
    except LstmtuiError:
        return UNITS[0]


def _default_corpus() -> str:
    from lstmtui.core.corpus import default_corpus_path

    return str(default_corpus_path())
