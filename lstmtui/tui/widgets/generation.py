"""The generation panel: a seed box, the sampling settings, the streamed output, and the keys that drive them.

The panel runs its own generation worker (lstmtui.tui.generator_worker) and shows what it posts.
Its settings and status are reactive: a key replaces the settings, the watcher redraws the line
and, while a stream runs, restarts it under the new settings on the same text.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Static
from textual.worker import Worker

from lstmtui.tui import keys
from lstmtui.tui.generator_worker import (
    METHODS,
    TOP_K_STEPS,
    GenerationJob,
    GenerationState,
    GenSettings,
    WeightsSource,
    generate,
)
from lstmtui.tui.messages import GeneratedText, GenerationEnded
from lstmtui.tui.screens.confirm import PromptScreen

LENGTH_STEP = 100
MAX_OUTPUT_CHARS = 50_000  # older output scrolls out of memory; the file save keeps all of it


class SeedInput(Input):
    """The seed box: every key that types a character is text; Enter generates, Escape leaves for the controls."""

    BINDINGS = list(keys.SEED)
    FOOTER_MODE = "typing seed"

    def action_controls(self) -> None:
        """Leave the box: the panel's single-key controls act from now on."""
        self.screen.set_focus(self.screen.query_one("#gen-scroll"))


class GenerationOutput(VerticalScroll, can_focus=True):
    """The generated text; while it has the focus the panel's single keys are controls (Escape in the seed box)."""

    FOOTER_MODE = "controls"


class GenerationPanel(Vertical):
    """Seed box, a settings line and the output; Enter in the seed box starts a new text."""

    BINDINGS = list(keys.GENERATION)
    DEFAULT_CSS = """
    GenerationPanel #seed { height: 1; border: none; padding: 0 1; background: $boost; }
    GenerationPanel #seed:focus { background: $primary 30%; }
    GenerationPanel #gen-settings { height: 1; color: $text-muted; }
    GenerationPanel GenerationOutput { height: 1fr; }
    GenerationPanel GenerationOutput:focus { background: $boost; }
    """

    settings: reactive[GenSettings] = reactive(GenSettings, repaint=False, init=False)
    status: reactive[str] = reactive("idle", repaint=False, init=False)
    memorised: reactive[float | None] = reactive(None, repaint=False, init=False)  # share copied from the corpus
    source: reactive[WeightsSource] = reactive(WeightsSource, repaint=False, init=False)  # bound to the app's

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.text = ""  # the whole output of the current text (seed included)
        self.seed = ""
        self.updates = 0  # text messages shown since the last seed
        self.gen_run = 0  # the current generation run; messages of earlier ones are dropped
        self._cleared_run = -1  # a run whose output was cleared: its text is dropped too
        self.gen_worker: Worker[None] | None = None
        self._stop_event: threading.Event | None = None
        self._gen_state = GenerationState()
        self._can_continue = False
        self._queued: tuple[str | None] | None = None  # a request waiting for the current run to stop
        self._finished = False

    def compose(self) -> ComposeResult:
        yield SeedInput(placeholder="type a seed — Enter generates", id="seed", select_on_focus=False)
        yield Static(id="gen-settings")
        with GenerationOutput(id="gen-scroll"):
            yield Static(id="gen-output")

    def on_mount(self) -> None:
        self.show_settings()

    # ----- the view -----

    def watch_settings(self, old: GenSettings, new: GenSettings) -> None:
        self.show_settings()
        if self.gen_worker is not None and not old.same_sampling(new):
            # apply at once: stop and continue the same text under the new settings
            self._request(None)

    def watch_status(self) -> None:
        self.show_settings()

    def watch_memorised(self) -> None:
        self.show_settings()

    def watch_source(self, old: WeightsSource, new: WeightsSource) -> None:
        if old.profile != new.profile:
            self.clear()  # another profile: its text is not this one's

    def show_settings(self) -> None:
        """Redraw the settings line."""
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(self.settings.describe())
        style = {"generating": "bold green", "failed": "bold red"}.get(self.status, "dim")
        line.append(f" · {self.status}", style=style)
        if self.memorised is not None:
            line.append(f" · copied {self.memorised:.0%}")
        # One line of fixed height: no layout pass, which would be most of a settings key's cost while training.
        self.query_one("#gen-settings", Static).update(line, layout=False)

    def start_text(self, seed: str) -> None:
        """Clear the output and show the seed."""
        self.seed = seed
        self.text = seed
        self.updates = 0
        self._redraw()

    def append(self, text: str) -> None:
        """Add generated characters and keep the newest visible."""
        self.text += text
        self.updates += 1
        self._redraw()

    def _redraw(self) -> None:
        shown = self.text[-MAX_OUTPUT_CHARS:]
        body = Text()
        seed_len = len(self.seed) - (len(self.text) - len(shown))
        if seed_len > 0:
            body.append(shown[:seed_len], style="dim italic")
            body.append(shown[seed_len:])
        else:
            body.append(shown)
        self.query_one("#gen-output", Static).update(body)
        self.query_one("#gen-scroll", GenerationOutput).scroll_end(animate=False)

    def set_status(self, status: str, memorised: float | None = None) -> None:
        """Show idle / generating / stopped / done / failed, and the share copied once known."""
        self.status = status
        self.memorised = memorised

    def reset(self) -> None:
        """Forget the generator (another profile's weights are shown from now on)."""
        self._gen_state = GenerationState()
        self._can_continue = False

    def clear(self) -> None:
        """Stop generating, forget the generator and empty the output (a new run or another profile)."""
        self.action_stop()
        self._cleared_run = self.gen_run  # what the stopped run still posts is not shown
        self.reset()
        self.start_text("")
        self.set_status("idle")

    # ----- running the worker -----

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "seed":
            event.stop()
            self.generate(seed=event.value)
            self.screen.set_focus(self.query_one("#gen-scroll"))

    def generate(self, seed: str | None) -> None:
        """Start generating: from a seed with fresh weights, or (seed None) continue the last text."""
        if self._finished:
            return
        if self.gen_worker is not None:
            self._request(seed)  # one generator at a time: this runs once the current one has stopped
            return
        if seed is None and not self._can_continue:
            seed = self.query_one("#seed", Input).value
        self.gen_run += 1
        self._stop_event = threading.Event()
        if seed is not None:
            self.start_text(seed)
        self.set_status("generating")
        job = GenerationJob(self.gen_run, seed, self.settings, self.source, self._gen_state, self._stop_event)
        self.gen_worker = self.run_worker(
            lambda: generate(self.post_message, job),
            name="generation",
            group="generation",
            thread=True,
            exit_on_error=False,
        )

    def _request(self, seed: str | None) -> None:
        self._queued = (seed,)
        if self._stop_event is not None:
            self._stop_event.set()

    def on_generated_text(self, message: GeneratedText) -> None:
        message.stop()
        if message.run == self.gen_run and message.run != self._cleared_run:
            self.append(message.text)

    def on_generation_ended(self, message: GenerationEnded) -> None:
        message.stop()
        if message.run != self.gen_run:
            return
        self.gen_worker = None
        if message.run == self._cleared_run:
            self.reset()
        else:
            self._can_continue = message.can_continue
            if message.error:
                self.notify(message.error, title="generation", severity="error")
            self.set_status(message.reason, message.memorised)
        if self._queued is not None and not self._finished:
            (seed,) = self._queued
            self._queued = None
            self.generate(seed)

    async def finish(self, timeout: float = 5.0) -> None:
        """Stop generating for good and wait for the worker (the app is quitting)."""
        self._finished = True
        self.action_stop()
        worker = self.gen_worker
        if worker is not None:
            try:
                await asyncio.wait_for(worker.wait(), timeout=timeout)
            except Exception:  # cancelled, failed or slow: the app leaves either way
                pass

    # ----- the panel's keys (keys.GENERATION) -----

    def action_toggle(self) -> None:
        """Stop generating, or continue from where it stopped."""
        if self.gen_worker is not None:
            self.action_stop()
        else:
            self.generate(seed=None)

    def action_stop(self) -> None:
        """Stop generating (the state is kept for continuing)."""
        self._queued = None
        if self._stop_event is not None:
            self._stop_event.set()

    def action_temperature(self, delta: float) -> None:
        """Change the temperature by delta (0 to 5)."""
        st = self.settings
        method = "temperature" if st.method in ("greedy", "beam") else st.method
        self.settings = replace(st, temperature=min(5.0, max(0.0, round(st.temperature + delta, 1))), method=method)

    def action_method(self) -> None:
        """Cycle the sampling method."""
        st = self.settings
        self.settings = replace(st, method=METHODS[(METHODS.index(st.method) + 1) % len(METHODS)])

    def action_top_k(self, direction: int) -> None:
        """Make top-k smaller or larger (and select the top-k method)."""
        st = self.settings
        i = min(range(len(TOP_K_STEPS)), key=lambda j: abs(TOP_K_STEPS[j] - st.top_k))
        self.settings = replace(st, top_k=TOP_K_STEPS[min(len(TOP_K_STEPS) - 1, max(0, i + direction))], method="top-k")

    def action_top_p(self, delta: float) -> None:
        """Change top-p by delta (and select the top-p method)."""
        st = self.settings
        self.settings = replace(st, top_p=min(1.0, max(0.05, round(st.top_p + delta, 2))), method="top-p")

    def action_length(self, direction: int) -> None:
        """Change the length of each generation by LENGTH_STEP characters."""
        st = self.settings
        self.settings = replace(st, length=min(100_000, max(100, st.length + LENGTH_STEP * direction)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``i`` is a priority key (keys.STAND_ASIDE): in the seed box it is a letter."""
        if action == "focus_seed":
            return not isinstance(self.screen.focused, Input)
        return True

    def action_focus_seed(self) -> None:
        """Put the cursor in the seed box."""
        # set_focus, not focus(): focus() is deferred, and keys that arrive in the same burst (a fast
        # typist, a paste, an SSH packet) would still go to the old widget
        self.screen.set_focus(self.query_one("#seed", Input))

    def action_save_output(self) -> None:
        """Write the generated text to a file (asks for the name)."""
        if not self.text:
            self.notify("nothing generated yet", severity="warning")
            return
        text = self.text
        default = f"{self.source.profile or 'lstmtui'}-{time.strftime('%Y%m%d-%H%M%S')}.txt"

        def done(path: str | None) -> None:
            if not path:
                return
            try:
                target = Path(path).expanduser()
                target.write_text(text, encoding="utf-8")
            except OSError as exc:
                self.notify(f"cannot write {path}: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"wrote {len(text):,} characters to {target}")

        self.app.push_screen(PromptScreen("Save the generated text to:", default), done)
