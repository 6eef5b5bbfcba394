"""The samples panel: training's periodic samples, labelled, newest visible, bounded in memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import RichLog

from lstmtui.tui import keys

if TYPE_CHECKING:
    from lstmtui.core.profiles import SavedSample

MAX_LINES = 600


class SamplesLog(RichLog):
    """A scrollable log of samples; old lines fall off past MAX_LINES."""

    BINDINGS = list(keys.SAMPLES)
    DEFAULT_CSS = """
    SamplesLog { height: 1fr; background: $surface; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    def __init__(self, **kwargs: str) -> None:
        super().__init__(
            max_lines=MAX_LINES, min_width=10, wrap=True, markup=False, highlight=False, auto_scroll=True, **kwargs
        )
        self.count = 0
        self.last_step = -1  # the newest sample's step: a snapshot's samples up to it are already shown

    def add_sample(
        self, epoch: int, step: int, temperature: float, prime: str, text: str, memorised: float | None = None
    ) -> None:
        """Append one sample under a dim label line, then the share copied from the corpus if known."""
        self.count += 1
        self.last_step = max(self.last_step, step)
        self.write(Text(f"── epoch {epoch} · step {step:,} · T {temperature:g} ──", style="bold dim"))
        body = Text()
        if prime.strip():
            body.append(prime, style="dim italic")
        body.append(text)
        self.write(body)
        if memorised is not None:
            # a line of its own: in the label it would wrap at 80x24
            self.write(Text(f"copied {memorised:.0%} from the corpus", style="dim"))

    def show_saved(self, samples: Iterable[SavedSample]) -> None:
        """Show a reopened profile's kept samples in place of what is shown."""
        self.clear()
        for s in samples:
            self.add_sample(s.epoch, s.step, s.temperature, s.prime, s.text, s.memorised)

    def clear(self) -> SamplesLog:
        """Remove every sample."""
        self.count = 0
        self.last_step = -1
        return super().clear()
