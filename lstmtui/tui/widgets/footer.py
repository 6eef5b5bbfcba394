"""The key footer, without Textual's watcher leak.

Textual's Footer recomposes on every bindings change (each focus change) and every new FooterKey
registers a watcher on the Footer's ``compact`` reactive, which Textual prunes only when
``compact`` itself changes (textualize/textual#6666). The list grows without bound: measured here,
about 0.3 MB and a longer key response per focus change. After each recompose this Footer drops
the watchers of its removed keys.
"""

from __future__ import annotations

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """textual.widgets.Footer that does not accumulate watchers of its discarded keys."""

    async def recompose(self) -> None:
        await super().recompose()
        for entries in getattr(self, "__watchers", {}).values():
            entries[:] = [(node, callback) for node, callback in entries if node is self or node.is_attached]
