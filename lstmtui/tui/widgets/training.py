"""The training panel: the loss chart beside the status lines; focus it for the training keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal

from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.status import StatusView, TrainingStats


class TrainingPanel(Horizontal, can_focus=True):
    """Chart and status side by side."""

    BINDINGS = [
        Binding("p", "app.pause", "pause/resume"),
        Binding("x", "app.stop_training", "stop"),
        Binding("s", "app.save", "save"),
        Binding("n", "app.new_run", "new run"),
        Binding("o", "app.profiles", "profiles"),
    ]

    def __init__(self, stats: TrainingStats, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stats = stats

    def compose(self) -> ComposeResult:
        yield LossChart(id="chart")
        yield StatusView(self.stats, id="status")
