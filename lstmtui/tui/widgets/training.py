"""The training panel: the loss chart beside the status lines; focus it for the training keys."""

from __future__ import annotations

from textual.containers import Horizontal

from lstmtui.tui import keys


class TrainingPanel(Horizontal, can_focus=True):
    """Chart and status side by side; the footer shows the training keys while it has the focus."""

    BINDINGS = list(keys.TRAINING_PANEL)
