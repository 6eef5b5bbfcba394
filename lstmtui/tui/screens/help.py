"""The help screen: every key of the app, grouped by where it works."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

# (where, key, what); the app's bindings are listed from the same table so they cannot drift
KEYS = [
    ("anywhere", "p", "pause / resume training (train further when stopped)"),
    ("anywhere", "x", "stop training (saves the profile)"),
    ("anywhere", "s", "save the profile now"),
    ("anywhere", "n", "new training run (settings form)"),
    ("anywhere", "o", "profiles: open, rename, delete"),
    ("anywhere", "tab / shift+tab", "move focus between panels"),
    ("anywhere", "1 2 3", "focus training / samples / generation"),
    ("anywhere", "ctrl+p", "command palette (every action)"),
    ("anywhere", "? / f1", "this help"),
    ("anywhere", "q / ctrl+q", "quit (saves; asks while training)"),
    ("anywhere", "ctrl+c", "save and quit at once"),
    ("seed input", "enter", "generate from the seed (fresh weights)"),
    ("seed input", "escape", "stop generating"),
    ("generation", "space", "stop / continue where it stopped"),
    ("generation", "+ / -", "temperature ± 0.1"),
    ("generation", "m", "method: temperature, top-k, top-p, greedy, beam"),
    ("generation", "k / K", "top-k smaller / larger"),
    ("generation", "[ / ]", "top-p − / + 0.05"),
    ("generation", ", / .", "length − / + 100"),
    ("generation", "w", "write the output to a file"),
    ("generation", "i", "back to the seed input"),
    ("samples", "↑ ↓ pgup pgdn", "scroll the samples"),
    ("profiles", "enter / r / d", "open / rename / delete (asks first)"),
]


def keys_table() -> Table:
    """The key table shown by the help screen."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
    table.add_column("where", style="dim")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    for where, key, what in KEYS:
        table.add_row(where, key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists every key; any of escape, q, ? or f1 closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss_help", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("lstmtui — keys", style="bold"))
            yield Static(keys_table())
            yield Static(Text("Mouse: click a panel to focus it, scroll with the wheel. Esc closes.", style="dim"))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
