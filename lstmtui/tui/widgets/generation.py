"""The generation panel: a seed input, the sampling settings, and the streamed output."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

METHODS = ("temperature", "top-k", "top-p", "greedy", "beam")
TOP_K_STEPS = (1, 2, 3, 5, 10, 20, 40, 80)
LENGTH_STEP = 100
MAX_OUTPUT_CHARS = 50_000  # older output scrolls out of memory; the file save keeps all of it


@dataclass
class GenSettings:
    """What the keys change: method, temperature, top-k, top-p, beam width and length."""

    method: str = "temperature"
    temperature: float = 0.8
    top_k: int = 10
    top_p: float = 0.9
    beam: int = 4
    length: int = 500

    def sampling_config(self):
        """The SamplingConfig these settings select (imported lazily: it loads torch)."""
        from lstmtui.core.sampling import SamplingConfig

        t = round(self.temperature, 2)
        if self.method == "greedy":
            return SamplingConfig(temperature=0.0, length=self.length)
        if self.method == "beam":
            return SamplingConfig(beam=self.beam, length=self.length)
        return SamplingConfig(
            temperature=t,
            top_k=self.top_k if self.method == "top-k" else 0,
            top_p=self.top_p if self.method == "top-p" else 1.0,
            length=self.length,
        )

    def describe(self) -> str:
        """One short line naming the method and its numbers."""
        if self.method == "greedy":
            head = "greedy"
        elif self.method == "beam":
            head = f"beam {self.beam}"
        else:
            head = f"T {self.temperature:.1f}"
            if self.method == "top-k":
                head += f" · top-k {self.top_k}"
            elif self.method == "top-p":
                head += f" · top-p {self.top_p:.2f}"
        return f"{head} · len {self.length}"


class GenerationOutput(VerticalScroll, can_focus=True):
    """The generated text; focus it to use the generation keys."""

    BINDINGS = [
        Binding("space", "app.gen_toggle", "stop/continue"),
        Binding("plus,equals_sign", "app.temperature(0.1)", "T+", key_display="+"),
        Binding("minus", "app.temperature(-0.1)", "T-", key_display="-"),
        Binding("m", "app.gen_method", "method"),
        Binding("k", "app.top_k(-1)", "k-", show=False),
        Binding("K", "app.top_k(1)", "k+", show=False),
        Binding("left_square_bracket", "app.top_p(-0.05)", "p-", show=False),
        Binding("right_square_bracket", "app.top_p(0.05)", "p+", show=False),
        Binding("comma", "app.gen_length(-1)", "len-", show=False),
        Binding("full_stop", "app.gen_length(1)", "len+", show=False),
        Binding("w", "app.save_output", "write file"),
        Binding("i", "app.focus_seed", "seed"),
    ]


class GenerationPanel(Vertical):
    """Seed input, a settings line and the output; Enter in the seed starts a new text."""

    DEFAULT_CSS = """
    GenerationPanel #seed { height: 1; border: none; padding: 0 1; background: $boost; }
    GenerationPanel #seed:focus { background: $primary 30%; }
    GenerationPanel #gen-settings { height: 1; color: $text-muted; }
    GenerationPanel GenerationOutput { height: 1fr; }
    GenerationPanel GenerationOutput:focus { background: $boost; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.settings = GenSettings()
        self.status = "idle"
        self.memorised: float | None = None  # share of the last output copied from the corpus
        self.text = ""  # the whole output of the current text (seed included)
        self.seed = ""
        self.updates = 0  # text messages shown since the last seed

    def compose(self) -> ComposeResult:
        yield Input(placeholder="seed text — Enter generates", id="seed")
        yield Static(id="gen-settings")
        with GenerationOutput(id="gen-scroll"):
            yield Static(id="gen-output")

    def on_mount(self) -> None:
        self.show_settings()

    def show_settings(self) -> None:
        """Redraw the settings line."""
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(self.settings.describe())
        style = {"generating": "bold green", "failed": "bold red"}.get(self.status, "dim")
        line.append(f" · {self.status}", style=style)
        if self.memorised is not None:
            line.append(f" · copied {self.memorised:.0%}")
        # One line of fixed height: no layout pass (it was most of a settings key's cost while training).
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
        self.show_settings()
