"""The vocabulary: characters and their ids, with vectorised encoding and decoding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lstmtui.core.corpus.cleaning import codepoints
from lstmtui.core.errors import VocabularyError


def _dtype_for(n: int) -> np.dtype:
    return np.dtype(np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32)


def show_chars(chars: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` characters as reprs, and how many more there are."""
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


class Vocab:
    """The characters a model knows; a character's id is its position in ``chars``."""

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise VocabularyError(f"bad vocabulary entry {c!r}: each entry must be exactly one character")
        if len(set(chars)) != len(chars):
            dup = sorted({c for c in chars if chars.count(c) > 1})
            raise VocabularyError(f"bad vocabulary: {show_chars(dup)} listed more than once")
        self.chars: list[str] = chars
        self._index = {c: i for i, c in enumerate(chars)}
        codes = np.array([ord(c) for c in chars], dtype=np.uint32)
        self._codes = codes  # id -> code point
        self._order = np.argsort(codes, kind="stable")
        self._sorted_codes = codes[self._order]

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(tuple(self.chars))

    def __repr__(self) -> str:
        return f"Vocab({len(self)} chars)"

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every id (uint8 when len <= 256)."""
        return _dtype_for(len(self))

    def index(self, ch: str) -> int:
        """The id of one character; VocabularyError if the vocabulary lacks it."""
        try:
            return self._index[ch]
        except KeyError:
            raise VocabularyError(f"the vocabulary has no character {ch!r}") from None

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that the vocabulary lacks, sorted."""
        return sorted(set(text) - self._index.keys())

    def encode(self, text: str) -> np.ndarray:
        """Encode text to ids (vectorised); VocabularyError naming any missing characters."""
        return self.encode_codepoints(codepoints(text))

    def encode_codepoints(self, cps: np.ndarray) -> np.ndarray:
        """Encode an array of Unicode code points to ids (vectorised)."""
        if len(self) == 0:
            if cps.size:
                raise VocabularyError("the vocabulary is empty")
            return np.zeros(0, dtype=self.dtype)
        pos = np.searchsorted(self._sorted_codes, cps)
        pos = np.minimum(pos, len(self) - 1)
        bad = self._sorted_codes[pos] != cps
        if bad.any():
            chars = sorted({chr(int(c)) for c in np.unique(cps[bad])})
            raise VocabularyError(f"the text has {len(chars)} character(s) the vocabulary lacks: {show_chars(chars)}")
        return self._order[pos].astype(self.dtype)

    def decode(self, ids) -> str:
        """Turn ids (a sequence, array, tensor or one int) back into text."""
        arr = np.atleast_1d(np.asarray(ids)).astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self)):
            raise VocabularyError(f"id out of range for a vocabulary of {len(self)} characters")
        return self._codes[arr].astype("<u4").tobytes().decode("utf-32-le")

    def to_list(self) -> list[str]:
        """The characters in id order (JSON-ready)."""
        return list(self.chars)

    @classmethod
    def from_list(cls, chars: Sequence[str]) -> Vocab:
        """Rebuild from ``to_list()``; VocabularyError if entries are not unique single characters."""
        if isinstance(chars, str) or not isinstance(chars, (list, tuple)):
            raise VocabularyError("bad vocabulary: expected a list of characters")
        return cls(chars)
