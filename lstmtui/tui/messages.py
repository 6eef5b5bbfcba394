"""Typed messages the worker threads post to the app (the only way they talk to the UI)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class SessionReady(Message):
    """The training worker built its session (torch is imported by now)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session


class TrainingUpdate(Message):
    """A coalesced batch of training events: the latest step, loss points, and the rare events."""

    def __init__(self, step: Any, losses: list[tuple[int, float]], events: list[Any]) -> None:
        super().__init__()
        self.step = step
        self.losses = losses
        self.events = events


class TrainingEnded(Message):
    """The training worker returned (its session's result event, or the error that stopped it)."""

    def __init__(self, result: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.result = result
        self.error = error


class ProfileLoaded(Message):
    """An existing profile's meta was read (to redraw its history)."""

    def __init__(self, name: str, meta: dict) -> None:
        super().__init__()
        self.name = name
        self.meta = meta


class GeneratedText(Message):
    """Characters produced by the generation worker since its last message."""

    def __init__(self, run: int, text: str) -> None:
        super().__init__()
        self.run = run
        self.text = text


class GenerationEnded(Message):
    """The generation worker stopped: finished its length, was stopped, or failed."""

    def __init__(self, run: int, reason: str, error: str | None = None, memorised: float | None = None) -> None:
        super().__init__()
        self.run = run
        self.reason = reason
        self.error = error
        self.memorised = memorised  # share of the text since the seed copied from the corpus, if known
