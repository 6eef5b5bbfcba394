"""The new-run form: corpus and training settings, validated before the run starts."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lstmtui.core.config import INPUT_MODES, TrainConfig
from lstmtui.core.errors import ConfigError
from lstmtui.core.units import parse_duration
from lstmtui.tui import keys

# (field, label, parser); the order is the form's
FIELDS = [
    ("hidden", "hidden size", int),
    ("layers", "layers", int),
    ("seq_len", "sequence length", int),
    ("batch", "batch", int),
    ("epochs", "epochs", int),
    ("lr", "learning rate", float),
    ("dropout", "dropout", float),
    ("time_budget_s", "time budget (e.g. 15m, 0 off)", parse_duration),
]


def form_overrides(before: TrainConfig, after: TrainConfig) -> dict:
    """The settings a submitted form changed, plus its time budget when set: what the engine treats
    as typed (a budget is planned for, and the planner keeps the changed fields)."""
    changed = {k: v for k, v in after.to_dict().items() if getattr(before, k) != v}
    if after.time_budget_s > 0:
        changed["time_budget_s"] = after.time_budget_s
    return changed


class SettingsScreen(ModalScreen[tuple[list[str], TrainConfig] | None]):
    """Dismisses with (corpus paths, validated TrainConfig), or None when cancelled."""

    BINDINGS = list(keys.NEW_RUN_FORM)

    def __init__(self, corpus: str, config: TrainConfig) -> None:
        super().__init__()
        self.corpus = corpus
        self.config = config

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog settings"):
            yield Static("New training run", classes="question")
            with Horizontal(classes="row"):
                yield Label("corpus", classes="field")
                yield Input(self.corpus, id="f-corpus")
            for name, label, _ in FIELDS:
                value = getattr(self.config, name)
                with Horizontal(classes="row"):
                    yield Label(label, classes="field")
                    yield Input(f"{value:g}" if isinstance(value, float) else str(value), id=f"f-{name}")
            with Horizontal(classes="row"):
                yield Label("input encoding", classes="field")
                yield Select([(m, m) for m in INPUT_MODES], value=self.config.input, allow_blank=False, id="f-input")
            yield Label("", id="settings-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#f-corpus", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_start(self) -> None:
        try:
            result = self.read_form()
        except ConfigError as exc:
            self.query_one("#settings-error", Label).update(f"✖ {exc}")
            return
        self.dismiss(result)

    def read_form(self) -> tuple[list[str], TrainConfig]:
        """Parse and validate the form; ConfigError names the first bad field."""
        corpus = self.query_one("#f-corpus", Input).value.strip()
        if not corpus:
            raise ConfigError("corpus: give a text file or a directory")
        if not Path(corpus).expanduser().exists():
            raise ConfigError(f"corpus: {corpus} does not exist")
        values = {}
        for name, label, parse in FIELDS:
            text = self.query_one(f"#f-{name}", Input).value.strip()
            try:
                values[name] = parse(text)
            except (ValueError, argparse.ArgumentTypeError):
                raise ConfigError(f"{label}: not a valid value: {text!r}") from None
        values["input"] = self.query_one("#f-input", Select).value
        config = replace(self.config, **values).validate()
        return [str(Path(corpus).expanduser())], config
