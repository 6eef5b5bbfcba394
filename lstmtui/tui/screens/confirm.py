"""Small modal dialogs: a yes/no question, a one-line text prompt, and how many more epochs to train."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from lstmtui.core.config import TrainConfig
from lstmtui.core.errors import ConfigError
from lstmtui.tui import keys


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; y/Enter says yes, n/Escape says no."""

    BINDINGS = list(keys.CONFIRM)

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="primary", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text; Enter accepts, Escape cancels.

    With ``check``, Enter first asks it about the text (empty text too): a message back is shown under
    the box and the dialog stays open for the user to correct it; None accepts. Without, an empty
    answer is a cancel.
    """

    BINDINGS = list(keys.PROMPT)

    def __init__(self, question: str, value: str = "", check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.question, self.value, self.check = question, value, check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(value=self.value, id="prompt")
            yield Label("", id="prompt-error", classes="error")
            yield Label("Enter accepts · Esc cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        problem = self.check(text) if self.check is not None else None
        error = self.query_one("#prompt-error", Label)
        if problem:
            error.update(f"✖ {problem}")
            return
        error.update("")
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def more_epochs(text: str, done: int) -> int:
    """The epoch count to train to after ``text`` more epochs (ConfigError, worded for the dialog, if it is not one)."""
    if not text:
        raise ConfigError("give the number of epochs to train on (Esc cancels)", "epochs")
    try:
        more = int(text)
    except ValueError:
        raise ConfigError(f"give a whole number of epochs, not {text!r}", "epochs") from None
    if more < 1:
        raise ConfigError("give at least 1 more epoch", "epochs")
    total = done + more
    TrainConfig(epochs=total).validate()
    return total


def more_epochs_prompt(name: str, done: int, planned: int) -> PromptScreen:
    """Ask how many more epochs to train a finished profile; the default is its run's epochs again (or 1)."""

    def check(text: str) -> str | None:
        try:
            more_epochs(text, done)
        except ConfigError as exc:
            return str(exc)
        return None

    of = f" of {planned}" if planned else ""
    question = f"{name} finished ({done}{of} epochs). Train it on for how many more epochs?"
    return PromptScreen(question, str(planned or 1), check=check)
