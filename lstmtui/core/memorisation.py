"""How much of a sample is copied: the share of its characters inside a verbatim corpus substring.

A character counts as memorised when it lies in some window of ``window`` (default 20) consecutive
generated characters that also occurs somewhere in the training corpus. The corpus is indexed
once as a sorted array of 64-bit polynomial hashes of all its windows, computed with whole-array
numpy passes (one per window position, no per-character Python loop); a sample is then checked
with one vectorised ``searchsorted``. Hash collisions can only over-count, and at 2**64 values
with at most tens of millions of windows they are vanishingly rare.

Index memory is 8 bytes per distinct window, so corpora over ``MAX_INDEX_CHARS`` are declined
(``from_corpus`` returns None and callers show the figure as unavailable).
"""

from __future__ import annotations

import numpy as np

DEFAULT_WINDOW = 20
MAX_INDEX_CHARS = 50_000_000
# An odd 64-bit multiplier; arithmetic wraps modulo 2**64 in uint64.
_BASE = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 4_000_000


def _window_hashes(ids: np.ndarray, window: int) -> np.ndarray:
    """Hashes of every ``window``-long run of ``ids`` (length len(ids) - window + 1)."""
    n = len(ids) - window + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    out = np.empty(n, dtype=np.uint64)
    # chunked so that temporaries stay small for big corpora
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        seg = np.asarray(ids[start : stop + window - 1]).astype(np.uint64)
        m = stop - start
        h = np.zeros(m, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(window):
                h *= _BASE
                h += seg[j : j + m] + np.uint64(1)  # +1 so that id 0 is not a no-op
        out[start:stop] = h
    return out


class MemorisationIndex:
    """All windows of a corpus, ready to tell which generated characters are verbatim copies."""

    def __init__(self, data: np.ndarray, window: int = DEFAULT_WINDOW, vocab=None) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.vocab = vocab
        self.n_chars = len(data)
        hashes = _window_hashes(data, window)
        hashes.sort()  # in place; np.unique is many times slower on uint64 here
        if len(hashes) > 1:
            keep = np.empty(len(hashes), dtype=bool)
            keep[0] = True
            np.not_equal(hashes[1:], hashes[:-1], out=keep[1:])
            hashes = hashes[keep]
        self._hashes = hashes
        self._index = {ch: i for i, ch in enumerate(vocab.chars)} if vocab is not None else None

    @classmethod
    def from_corpus(
        cls, corpus, window: int = DEFAULT_WINDOW, max_chars: int = MAX_INDEX_CHARS
    ) -> MemorisationIndex | None:
        """Index a lstmtui Corpus (all of it: training and validation text); None if too big."""
        if len(corpus.data) > max_chars:
            return None
        return cls(corpus.data, window, vocab=corpus.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Ids of text; characters outside the vocabulary get an id no corpus window holds."""
        if self._index is None:
            raise TypeError("this index has no vocabulary: pass ids, not text")
        outside = len(self._index)
        return np.fromiter((self._index.get(ch, outside) for ch in text), dtype=np.int64, count=len(text))

    def covered(self, sample, context=()) -> np.ndarray:
        """A bool per sample character: True where it lies inside a window found in the corpus.

        ``context`` (e.g. the prime) may start a window that ends in the sample; its own
        characters are not counted.
        """
        ids = self.encode(sample) if isinstance(sample, str) else np.asarray(sample, dtype=np.int64)
        ctx = self.encode(context) if isinstance(context, str) else np.asarray(context, dtype=np.int64).reshape(-1)
        ctx = ctx[len(ctx) - min(len(ctx), self.window - 1) :]
        full = np.concatenate([ctx, ids])
        hashes = _window_hashes(full, self.window)
        mask = np.zeros(len(full), dtype=bool)
        if len(hashes) and len(self._hashes):
            pos = np.searchsorted(self._hashes, hashes)
            found = self._hashes[np.minimum(pos, len(self._hashes) - 1)] == hashes
            # a found window covers its `window` characters: mark with a difference array
            diff = np.zeros(len(full) + 1, dtype=np.int64)
            starts = np.flatnonzero(found)
            np.add.at(diff, starts, 1)
            np.add.at(diff, starts + self.window, -1)
            mask = np.cumsum(diff[:-1]) > 0
        return mask[len(ctx) :]

    def share(self, sample, context=()) -> float:
        """Share (0..1) of the sample's characters inside a verbatim corpus window; 0 when empty."""
        mask = self.covered(sample, context)
        return float(mask.mean()) if len(mask) else 0.0
