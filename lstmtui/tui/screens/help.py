"""The help screen: every key of the key table, grouped by where it works, as the keymap binds it now."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lstmtui.tui import keys


def keys_table(keymap: keys.Keymap) -> Table:
    """The key table shown by the help screen."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
    table.add_column("where", style="dim")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    for row in keys.help_rows(keymap):
        table.add_row(row.where, row.keys, row.does)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; any of its close keys (escape, q, ? or f1) closes it."""

    BINDINGS = list(keys.HELP_SCREEN)

    def __init__(self, keymap: keys.Keymap | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("lstmtui — keys", style="bold"))
            yield Static(keys_table(self.keymap), id="help-keys")
            yield Static(Text("Mouse: click a panel to focus it, scroll with the wheel. Esc closes.", style="dim"))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
