"""What `lstmtui train` says about a run before its first step: that it fine-tunes, from what to what."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lstmtui.core.events import FineTuneEvent
from lstmtui.core.units import printable

SHOWN_CHARS = 20  # added characters listed by name; the rest are counted


def corpus_names(paths: Sequence[str]) -> str:
    """A corpus as its file names: 'a.txt', 'a.txt, b.txt', or 'a.txt +3'."""
    names = [Path(p).name or p for p in paths]
    if not names:
        return "an unrecorded corpus"
    return printable(", ".join(names) if len(names) <= 2 else f"{names[0]} +{len(names) - 1}")


def added_chars(chars: Sequence[str]) -> str:
    """The characters a vocabulary gained: '+15 characters: é è ...' or 'no new characters'."""
    if not chars:
        return "no new characters"
    shown = " ".join("space" if c == " " else printable(c) for c in chars[:SHOWN_CHARS])
    more = " ..." if len(chars) > SHOWN_CHARS else ""
    return f"+{len(chars)} character{'s' if len(chars) != 1 else ''}: {shown}{more}"


def fine_tune_line(event: FineTuneEvent) -> str:
    """One line saying the run fine-tunes: the profile, its old corpus and the new one, what the vocabulary gained."""
    return (
        f"fine-tuning {event.profile} after its {event.step:,} step{'s' if event.step != 1 else ''}: "
        f"corpus {corpus_names(event.old_corpus)} -> "
        f"{corpus_names(event.new_corpus)}, {added_chars(event.added)}"
    )
