"""The help screen: every key of the key table, grouped by where it works, as the keymap binds it now.

The close hint is docked above the list, so it shows at any size; the list takes two columns where
the terminal is wide enough (the whole list fits 100x30) and scrolls where it does not fit.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widgets import Static

from lstmtui.tui import keys

# The sections of each column when there are two: about the same number of lines in each.
LEFT = ("anywhere", "profiles")
RIGHT = ("generation", "seed box", "samples", "dialogs")
TWO_COLUMNS_FROM = 96  # terminal columns
CLOSE_HINT = "Esc closes"


def keys_table(keymap: keys.Keymap, where: tuple[str, ...] | None = None) -> Table:
    """The key table of the given sections (all by default): a heading line a section, then its keys."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True, padding=(0, 1, 0, 0))
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does", ratio=1)
    section = None
    for row in keys.help_rows(keymap):
        if where is not None and row.where not in where:
            continue
        if row.where != section:
            section = row.where
            table.add_row(Text(section, style="bold underline"), Text(""))
        table.add_row(Text(row.keys.replace(" / ", "/")), Text(row.does))
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; any of its close keys (escape, q, ? or f1) closes it."""

    BINDINGS = list(keys.HELP_SCREEN)
    DEFAULT_CSS = """
    HelpScreen #help-head { dock: top; height: 1; width: 1fr; }
    HelpScreen #help-cols { height: auto; }
    HelpScreen #help-cols Static { width: 1fr; height: auto; }
    HelpScreen #help-right { margin-left: 2; }
    HelpScreen .-narrow #help-cols { layout: vertical; }
    HelpScreen .-narrow #help-right { margin-left: 0; }
    HelpScreen #help-mouse { color: $text-muted; }
    """

    def __init__(self, keymap: keys.Keymap | None = None) -> None:
        super().__init__()
        self.keymap = keymap or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help", id="help-box"):
            yield Static(id="help-head")
            with Horizontal(id="help-cols"):
                yield Static(id="help-left")
                yield Static(id="help-right")
            yield Static("Mouse: click a panel to focus it, scroll with the wheel.", id="help-mouse")

    def on_mount(self) -> None:
        self._lay_out(self.app.size.width)

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        narrow = width < TWO_COLUMNS_FROM
        self.query_one("#help-box").set_class(narrow, "-narrow")
        left = self.query_one("#help-left", Static)
        right = self.query_one("#help-right", Static)
        if narrow:
            left.update(keys_table(self.keymap))
            right.display = False
        else:
            left.update(keys_table(self.keymap, LEFT))
            right.update(keys_table(self.keymap, RIGHT))
            right.display = True
        head = Text.assemble(("lstmtui — keys", "bold"), "   ", (CLOSE_HINT, "bold reverse"))
        if narrow:
            head.append("  ·  ↑↓ scroll", style="dim")
        self.query_one("#help-head", Static).update(head)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
