"""The new-run form: name, corpus and training settings, every one checked before the run starts.

The form opens filled from what is open (the corpus being trained, the open profile's settings).
Start (Ctrl+S, Enter or the button) checks every field: each problem is shown under its field,
worded by the field's label, and the form scrolls to the first one; nothing starts until none is left.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lstmtui.core.config import INPUT_MODES, SETTING_NAMES, TrainConfig
from lstmtui.core.errors import ConfigError, LstmtuiError
from lstmtui.core.profiles import validate_name
from lstmtui.core.units import parse_duration
from lstmtui.tui import keys


def _whole(text: str) -> int:
    return int(text)


def _seconds(text: str) -> float:
    return parse_duration(text)


# (field, label, parser, what a parse failure asks for); the order is the form's
FIELDS: list[tuple[str, str, Callable[[str], object], str]] = [
    ("hidden", "hidden size", _whole, "a whole number"),
    ("layers", "layers", _whole, "a whole number"),
    ("seq_len", "sequence length", _whole, "a whole number"),
    ("batch", "batch size", _whole, "a whole number"),
    ("epochs", "epochs", _whole, "a whole number"),
    ("lr", "learning rate", float, "a number such as 0.002"),
    ("dropout", "dropout", float, "a number such as 0.1"),
    ("time_budget_s", "time budget", _seconds, "a duration such as 15m, 90s or 0 (off)"),
]
LABELS = {"name": "name", "corpus": "corpus", "input": "input encoding"} | {f: label for f, label, _, _ in FIELDS}


@dataclass(frozen=True)
class NewRun:
    """What a submitted form asks for: the profile's name, the corpus paths and the settings."""

    name: str
    corpus_paths: list[str]
    config: TrainConfig


def form_overrides(before: TrainConfig, after: TrainConfig) -> dict:
    """The settings a submitted form changed, plus its time budget when set: what the engine treats
    as typed (a budget is planned for, and the planner keeps the changed fields)."""
    changed = {k: v for k, v in after.to_dict().items() if getattr(before, k) != v}
    if after.time_budget_s > 0:
        changed["time_budget_s"] = after.time_budget_s
    return changed


def duration_text(seconds: float) -> str:
    """A time budget as the form shows it: 0, 90s, 15m, 2h."""
    if not seconds or not math.isfinite(seconds):
        return "0"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def field_text(config: TrainConfig, field: str) -> str:
    """A setting's value as the form shows it."""
    value = getattr(config, field)
    if field == "time_budget_s":
        return duration_text(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def worded(field: str, message: str) -> str:
    """A core message worded by the form's label for the field (the core names settings in words too)."""
    core = SETTING_NAMES.get(field)
    label = LABELS.get(field)
    if core and label and core != label and message.startswith(core):
        return label + message[len(core) :]
    return message


class SettingsScreen(ModalScreen[NewRun | None]):
    """Dismisses with a NewRun (a valid name, an existing corpus, checked settings), or None when cancelled."""

    BINDINGS = list(keys.NEW_RUN_FORM)

    def __init__(
        self,
        corpus: str,
        config: TrainConfig,
        name: str = "",
        exists: Callable[[str], bool] | None = None,
        suggest: Callable[[str], str] | None = None,
        corpus_paths: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.corpus = corpus
        self.config = config
        self.name_value = name
        self.exists = exists or (lambda _name: False)
        self.suggest = suggest  # a unique profile name made from a corpus path
        self._name_typed = False  # the user changed the name: a new corpus no longer renames the run
        # the open run's files when it has several: kept while the corpus field is left as it is
        self.corpus_paths = corpus_paths if corpus_paths and len(corpus_paths) > 1 else None

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog settings"):
            yield Static("New training run", classes="question")
            yield from self._row("name", Input(self.name_value, id="f-name", compact=True))
            yield from self._row("corpus", Input(self.corpus, id="f-corpus", compact=True))
            for name, _label, _parse, _what in FIELDS:
                yield from self._row(name, Input(field_text(self.config, name), id=f"f-{name}", compact=True))
            options = [(m, m) for m in INPUT_MODES]
            select = Select(options, value=self.config.input, allow_blank=False, id="f-input", compact=True)
            yield from self._row("input", select)
            yield Label("", id="settings-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="start", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _row(self, field: str, widget: Input | Select) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(LABELS[field], classes="field")
            yield widget
        yield Label("", id=f"err-{field}", classes="error field-error")

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "f-name" and event.input.has_focus:
            self._name_typed = True
        elif event.input.id == "f-corpus" and self.suggest is not None and not self._name_typed:
            corpus = event.value.strip()
            if corpus:
                self.query_one("#f-name", Input).value = self.suggest(corpus)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_start(self) -> None:
        """Check the form; start the run, or show every problem beside its field and scroll to the first."""
        result, problems = self.read_form()
        self.show_problems(problems)
        if result is not None:
            self.dismiss(result)
            return
        count = len(problems)
        self.notify(f"{count} field{'s' if count > 1 else ''} to correct before the run starts", severity="warning")

    def show_problems(self, problems: dict[str, str]) -> None:
        """Show each problem under its field (a problem with no field under the form), the first in view."""
        first: str | None = None
        for field in LABELS:
            label = self.query_one(f"#err-{field}", Label)
            problem = problems.get(field, "")
            label.update(f"✖ {problem}" if problem else "")
            label.set_class(bool(problem), "-shown")
            if problem and first is None:
                first = field
        general = problems.get("", "")
        error = self.query_one("#settings-error", Label)
        error.update(f"✖ {general}" if general else "")
        error.set_class(bool(general), "-shown")
        if first is not None:
            widget = self.query_one(f"#f-{first}")
            widget.focus()
            self.call_after_refresh(self._reveal, first)
        elif general:
            self.call_after_refresh(self.query_one("#settings-error").scroll_visible, animate=False)

    def _reveal(self, field: str) -> None:
        """Scroll so the field's row and its error line are both in view."""
        self.query_one(f"#err-{field}").scroll_visible(animate=False)
        self.query_one(f"#f-{field}").scroll_visible(animate=False)

    def read_form(self) -> tuple[NewRun | None, dict[str, str]]:
        """The new run the form describes, or None and the problems by field ('' for the form as a whole)."""
        problems: dict[str, str] = {}
        name = self._text("name")
        try:
            validate_name(name)
            if self.exists(name):
                problems["name"] = f"a profile named {name} exists already: choose another name"
        except LstmtuiError as exc:
            problems["name"] = "give the run a name" if not name else str(exc)
        corpus = self._text("corpus")
        if not corpus:
            problems["corpus"] = "give a text file or a directory to train on"
        elif not Path(corpus).expanduser().exists():
            problems["corpus"] = f"{corpus} does not exist"
        values: dict[str, object] = {"input": self.query_one("#f-input", Select).value}
        for field, label, parse, what in FIELDS:
            text = self._text(field)
            try:
                values[field] = parse(text)
            except ValueError:
                problems[field] = f"{label} must be {what}, not {text!r}" if text else f"give the {label}"
                continue
            try:
                replace(self.config, **{field: values[field]}).validate()
            except ConfigError as exc:
                where = exc.field if exc.field in LABELS else field
                problems.setdefault(where, worded(where, str(exc)))
        if problems:
            return None, problems
        try:
            config = replace(self.config, **values).validate()
        except ConfigError as exc:
            where = exc.field if exc.field in LABELS else ""
            return None, {where: worded(where, str(exc))}
        paths = self.corpus_paths if self.corpus_paths and corpus == self.corpus else [corpus]
        return NewRun(name, [str(Path(p).expanduser()) for p in paths], config), {}

    def _text(self, field: str) -> str:
        return self.query_one(f"#f-{field}", Input).value.strip()
