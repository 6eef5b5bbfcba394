"""The key footer: the focused place's keys, what mode a text box puts them in, cut to fit the width.

While a text field has the focus, keys that type a character are its text, so the footer leaves
them out and names the mode instead ("typing seed"); the generation panel's keys show as
"controls". Keys that do not fit the width are left out, the least important first: the palette
key, then from the end of the binding chain (the App's keys), keeping help and quit.

Textual's Footer recomposes on every bindings change (each focus change) and every new FooterKey
registers a watcher on the Footer's ``compact`` reactive, which Textual prunes only when
``compact`` itself changes (textualize/textual#6666). The list grows without bound: measured here,
about 0.3 MB and a longer key response per focus change. After each recompose this Footer drops
the watchers of its removed keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Footer as TextualFooter
from textual.widgets import Input
from textual.widgets._footer import FooterKey, FooterLabel

from lstmtui.tui import keys

KEPT = ("help", "quit")  # binding ids the footer keeps however narrow it is
PALETTE = "command-palette"


@dataclass(frozen=True)
class FooterEntry:
    """One key of the footer: the key pressed, how it is written, its label and the binding."""

    key: str
    display: str
    label: str
    binding: Binding
    enabled: bool

    @property
    def width(self) -> int:
        """Columns it takes: the key padded by one each side, the label and a space."""
        return len(self.display) + 2 + len(self.label) + 1


def footer_mode(focused: Widget | None) -> str:
    """What the footer calls the mode of the focused widget ('' when none worth naming)."""
    if focused is None:
        return ""
    mode = getattr(focused, "FOOTER_MODE", "")
    if mode:
        return mode
    return "typing" if isinstance(focused, Input) else ""


def display_key(binding: Binding, key: str) -> str:
    """How the footer writes a key: the table's own way, with ctrl+x as ^x."""
    try:
        table_binding = keys.by_id(binding.id or "")
    except KeyError:
        table_binding = binding
    return keys.key_display(table_binding, key).replace("ctrl+", "^")


def fit(entries: list[FooterEntry], mode: str, width: int) -> list[FooterEntry]:
    """The entries that fit in ``width`` columns beside the mode label, dropping the least important first."""
    kept = list(entries)
    used = (len(mode) + 1 if mode else 0) + sum(e.width for e in kept)
    while used > width:
        droppable = [e for e in kept if e.binding.id not in KEPT]
        if not droppable:
            break
        palette = [e for e in droppable if e.binding.id == PALETTE]
        victim = palette[0] if palette else droppable[-1]
        kept.remove(victim)
        used -= victim.width
    return kept


class Footer(TextualFooter):
    """The focused place's keys (see the module docstring); textual.widgets.Footer's look."""

    DEFAULT_CSS = """
    Footer FooterLabel.mode { margin: 0 1 0 0; text-style: bold; color: $footer-key-foreground; }
    """

    def entries(self) -> list[FooterEntry]:
        """The shown keys of the focused widget's binding chain, one per action, in chain order."""
        typing = isinstance(self.screen.focused, Input)
        seen: set[str] = set()
        out: list[FooterEntry] = []
        for key, (_node, binding, enabled, _tooltip) in self.screen.active_bindings.items():
            shown = binding.show or binding.id == PALETTE
            if not shown or binding.action in seen or (typing and keys.is_printable(key)):
                continue
            seen.add(binding.action)
            out.append(FooterEntry(key, display_key(binding, key), binding.description, binding, enabled))
        # the palette key goes last: it is the first to go when space is short
        return sorted(out, key=lambda e: e.binding.id == PALETTE)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        mode = footer_mode(self.screen.focused)
        width = self.size.width or self.app.size.width
        if mode:
            yield FooterLabel(mode, classes="mode")
        for entry in fit(self.entries(), mode, width):
            yield FooterKey(
                entry.key,
                entry.display,
                entry.label,
                entry.binding.action,
                disabled=not entry.enabled,
                tooltip=entry.binding.tooltip,
            ).data_bind(compact=TextualFooter.compact)

    def on_resize(self, event: Resize) -> None:
        if self._bindings_ready and self.is_attached:
            self.call_after_refresh(self.recompose)

    async def recompose(self) -> None:
        await super().recompose()
        for entries in getattr(self, "__watchers", {}).values():
            entries[:] = [(node, callback) for node, callback in entries if node is self or node.is_attached]
