"""Typed messages the worker threads post to the app and its panels: the only way they talk to the UI.

The update rates are stated once, here (and in docs/tui.md): training metrics reach the UI at most
``METRIC_UPDATES_PER_S`` times a second, generated text at most ``TEXT_UPDATES_PER_S`` times.
Rare training events (state, evaluation, sample, save, warning, failure) are posted at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from lstmtui.core.events import Event, FailedEvent, FinishedEvent, StepEvent
    from lstmtui.core.runhost import RunHost, RunSnapshot

METRIC_UPDATES_PER_S = 2  # plenty to read, and the UI thread stays light while training runs
TEXT_UPDATES_PER_S = 30  # generated text looks continuous


class RunAttached(Message):
    """The run host is running and this client follows it; the snapshot is the run so far."""

    def __init__(self, run: int, host: RunHost, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.run = run  # which of the app's runs (a message of an earlier one is ignored)
        self.host = host
        self.snapshot = snapshot


class RunFacts(Message):
    """The run's model exists: the snapshot names its device and size (the history is not redrawn)."""

    def __init__(self, run: int, snapshot: RunSnapshot) -> None:
        super().__init__()
        self.run = run
        self.snapshot = snapshot


class TrainingUpdate(Message):
    """A coalesced batch of training events: the latest step, the loss points, and the rare events."""

    def __init__(self, run: int, step: StepEvent | None, losses: list[tuple[int, float]], events: list[Event]) -> None:
        super().__init__()
        self.run = run
        self.step = step
        self.losses = losses
        self.events = events


class TrainingEnded(Message):
    """The client stopped following: the run's final event, or the error that kept it from starting."""

    def __init__(self, run: int, result: FinishedEvent | FailedEvent | None = None, error: str | None = None) -> None:
        super().__init__()
        self.run = run
        self.result = result
        self.error = error


class GeneratedText(Message):
    """Characters produced by the generation worker since its last message."""

    def __init__(self, run: int, text: str) -> None:
        super().__init__()
        self.run = run
        self.text = text


class GenerationEnded(Message):
    """The generation worker stopped: finished its length, was stopped, or failed."""

    def __init__(
        self,
        run: int,
        reason: str,
        error: str | None = None,
        memorised: float | None = None,
        can_continue: bool = False,
    ) -> None:
        super().__init__()
        self.run = run
        self.reason = reason
        self.error = error
        self.memorised = memorised  # share of the text since the seed copied from the corpus, if known
        self.can_continue = can_continue  # a generator is kept: Space continues the same text
