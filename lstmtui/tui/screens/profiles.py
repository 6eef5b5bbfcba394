"""The profiles screen: the same list as `lstmtui profiles list`, with open, rename and delete."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from lstmtui.core.errors import LstmtuiError
from lstmtui.core.profile_labels import best_label, corpus_label, epochs_label, parameters_label, time_label
from lstmtui.core.units import unit_label
from lstmtui.tui import keys
from lstmtui.tui.screens.confirm import ConfirmScreen, PromptScreen
from lstmtui.tui.widgets.footer import Footer


class ProfilesScreen(Screen[str | None]):
    """A table of profiles; dismisses with the name to open, or None."""

    BINDINGS = list(keys.PROFILES)

    class Renamed(Message):
        """A profile was renamed (the app follows when it is the open one)."""

        def __init__(self, old: str, new: str) -> None:
            super().__init__()
            self.old, self.new = old, new

    def __init__(self, store, current: str | None = None, unit: str = "bits") -> None:
        super().__init__()
        self.store = store
        self.current = current
        self.unit = unit  # of the best validation column: bits or nats per character

    def compose(self) -> ComposeResult:
        with Vertical(id="profiles-box"):
            yield Static(Text(f"profiles in {self.store.root}", style="bold"), id="profiles-title")
            yield DataTable(id="profiles-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="profiles-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("name", "corpus", "parameters", "epochs", "best bpc", "updated"):
            table.add_column("best" if col == "best bpc" else col, key=col)  # its unit is named in the note
        self.reload()
        table.focus()

    def reload(self, select: str | None = None) -> None:
        """Read the profile list again and redraw it."""
        table = self.query_one(DataTable)
        table.clear()
        infos = self.store.list()
        for info in infos:
            name = Text(info.name, style="bold" if info.name == self.current else "")
            if info.meta is None:
                table.add_row(name, Text(info.error or "unreadable", style="red"), "", "", "", "", key=info.name)
                continue
            m = info.meta
            try:
                best = best_label(m, self.unit)
                row = (corpus_label(m), parameters_label(m), epochs_label(m), best, time_label(m.updated))
            except Exception as exc:  # one odd profile must not hide the others
                row = (f"unreadable: {exc}", "", "", "", "")
            table.add_row(name, *row, key=info.name)
        keys = f"best in {unit_label(self.unit)} · enter open · r rename · d delete · esc back"
        note = keys if infos else "no profiles yet: train one with n"
        self.query_one("#profiles-note", Static).update(Text(note, style="dim"))
        if select is not None:
            names = [i.name for i in infos]
            if select in names:
                table.move_cursor(row=names.index(select))

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def action_open(self) -> None:
        name = self._selected()
        if name is not None:
            self.dismiss(name)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        name = self._selected()
        if name is None:
            return

        def rename(new: str) -> str | None:
            """Rename now; a refusal (a bad or taken name) is shown in the dialog, which stays open."""
            if new == name:
                return None
            if not new:
                return "give the new name (Esc cancels)"
            try:
                self.store.rename(name, new)
            except LstmtuiError as exc:
                return str(exc)
            return None

        def done(new: str | None) -> None:
            if not new or new == name:
                return
            if self.current == name:
                self.current = new
            self.app.post_message(self.Renamed(name, new))
            self.app.notify(f"renamed {name} to {new}")
            self.reload(select=new)

        self.app.push_screen(PromptScreen(f"Rename profile {name} to:", name, check=rename), done)

    def action_delete(self) -> None:
        name = self._selected()
        if name is None:
            return
        if name == self.current:
            self.app.notify("that profile is open: open another one first", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.remove(name)
            except LstmtuiError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify(f"deleted {name}")
            self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete profile {name}? This cannot be undone.", "Delete", "Keep"), done)
