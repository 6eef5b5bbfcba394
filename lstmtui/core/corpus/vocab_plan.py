"""Vocabulary planning: counting characters, mapping rare ones to ``UNKNOWN_CHAR``, extending a
model's vocabulary, and the code point -> id table that encodes pieces.

Ids of a fresh vocabulary are sorted by character. Ids are uint8 when the vocabulary has at most
256 symbols.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstmtui.core.corpus.cleaning import BYTE_PIECES, EXTRA_BASE, MAX_CODEPOINT, CleaningOptions, Piece, bincount
from lstmtui.core.corpus.vocab import Vocab, show_chars
from lstmtui.core.errors import VocabularyError

UNKNOWN_CHAR = "\ufffd"  # the Unicode replacement character: rare characters become this one


class Tally:
    """Counts characters; when no counts are needed, only which characters occur (much faster)."""

    def __init__(self, need_counts: bool):
        self.counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)  # presence mode: > 0 where seen
        self.need_counts = need_counts
        self.seen_low = b""  # presence mode: the characters below U+0100 seen so far
        self.n = 0

    def add(self, piece: Piece, counts: np.ndarray | None = None) -> None:
        """Tally a piece; ``counts`` is its bincount when the cleaner already made one (or, when no
        counts are needed, marks at least the characters this tally has not seen yet)."""
        self.n += len(piece)
        if counts is not None:
            if counts.size:
                self.counts[: counts.size] += counts
                if not self.need_counts:
                    self.seen_low = np.flatnonzero(self.counts[:256]).astype(np.uint8).tobytes()
            return
        if isinstance(piece, BYTE_PIECES):
            if not self.need_counts:
                piece = piece.translate(None, self.seen_low)  # what is left is new
                if not piece:
                    return
            arr = np.frombuffer(piece, dtype=np.uint8)
        else:
            arr = piece
        b = bincount(arr)
        self.counts[: b.size] += b
        if not self.need_counts:
            self.seen_low = np.flatnonzero(self.counts[:256]).astype(np.uint8).tobytes()

    def fold(self, extra: Sequence[int]) -> np.ndarray:
        """The counts by code point, once byte pieces' 0x80 + k are credited to ``extra[k]``."""
        for k, cp in enumerate(extra):
            # no piece holds a C1 control as itself (cleaning drops them), so the slot is extra[k]'s alone
            self.counts[cp] += self.counts[EXTRA_BASE + k]
            self.counts[EXTRA_BASE + k] = 0
        return self.counts


def plan_vocab(
    counts: np.ndarray, c: CleaningOptions, vocab: Vocab | None, extend_vocab: bool
) -> tuple[Vocab, np.ndarray]:
    """Choose the vocabulary and build a code point -> id lookup table."""
    present = np.flatnonzero(counts)
    rare = present[counts[present] < c.min_char_count] if c.min_char_count else present[:0]
    common = np.setdiff1d(present, rare, assume_unique=True)
    wanted = [chr(int(cp)) for cp in common]
    if rare.size:
        wanted.append(UNKNOWN_CHAR)
    if vocab is None:
        vocab = Vocab(sorted(set(wanted)))
    else:
        new = sorted(set(wanted) - set(vocab.chars))
        if new and not extend_vocab:
            raise VocabularyError(
                f"the corpus has {len(new)} character(s) the model's vocabulary lacks: {show_chars(new)}; "
                "extend the vocabulary to add them, or set a minimum character count to map rare ones "
                "to the unknown symbol",
                "extend_vocab",
            )
        if new:
            vocab = Vocab(vocab.chars + new)
    lut = np.zeros(MAX_CODEPOINT, dtype=vocab.dtype)
    if common.size:
        lut[common] = vocab.encode_codepoints(common.astype(np.uint32))
    if rare.size:
        lut[rare] = vocab.index(UNKNOWN_CHAR)
    return vocab, lut


class Encoder:
    """Maps pieces to ids through a code point -> id table (bytes.translate for byte pieces)."""

    def __init__(self, lut: np.ndarray, extra: Sequence[int] = ()):
        self.lut = lut
        self.low = lut[:256].copy()
        for k, cp in enumerate(extra):  # the wider characters byte pieces hold as 0x80 + k
            self.low[EXTRA_BASE + k] = lut[cp]
        self.table = self.low.tobytes() if lut.dtype == np.uint8 else None

    def __call__(self, piece: Piece) -> np.ndarray:
        if isinstance(piece, BYTE_PIECES):
            if self.table is not None:
                return np.frombuffer(piece.translate(self.table), dtype=np.uint8)
            return self.low[np.frombuffer(piece, dtype=np.uint8)]
        return self.lut[piece]
