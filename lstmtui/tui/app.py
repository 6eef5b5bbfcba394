"""The lstmtui Textual app: one screen of panels over a run it follows (RunControl) and a generator.

State flows one way: worker threads post typed messages (lstmtui.tui.messages), handlers compute
new values (lstmtui.tui.run_view) and assign them to reactive attributes, and the widgets bound to
those attributes redraw. Keys come from the key table (lstmtui.tui.keys), remapped by the user's
keys.toml (lstmtui.tui.keymap). AppOptions is re-exported here for launch() and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Static

from lstmtui.core.config import TrainConfig
from lstmtui.tui import keys
from lstmtui.tui.generator_worker import WeightsSource
from lstmtui.tui.keymap import LoadedKeymap, load_keymap
from lstmtui.tui.run_control import AppOptions, RunControl
from lstmtui.tui.screens.confirm import ConfirmScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.widgets.footer import Footer
from lstmtui.tui.widgets.generation import GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog
from lstmtui.tui.widgets.status import StatusView, TrainingStats
from lstmtui.tui.widgets.training import TrainingPanel

__all__ = ["AppOptions", "LstmtuiApp", "MainScreen"]

MIN_WIDTH, MIN_HEIGHT = 60, 16


class MainScreen(Screen[None]):
    """The screen of panels; its Tab keys come from the key table like every other key."""

    BINDINGS = list(keys.MAIN_SCREEN)


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
                self.notify(
                    f"keys.toml gives {binding.key} to another action: {binding.id} has no key there now",
                    title="keys.toml",
                    severity="warning",
                    timeout=10,
                )

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


def _default_corpus() -> str:
    from lstmtui.core.corpus import default_corpus_path

    return str(default_corpus_path())
