"""How much of a sample is copied: the share of its informative text inside a verbatim corpus substring.

Only text that carries information counts. Both the corpus and a sample are first reduced to
tokens: a run of whitespace (of any kind and length) becomes one space token and a run of
``RUN_MIN`` or more of one character becomes that character once; every other character is a
token of its own. A token counts as copied when it lies in some window of ``window`` (default 20)
consecutive tokens that also occurs in the reduced corpus; the share is copied tokens over the
sample's tokens, space tokens left out of both. So indentation, padding and "-----" lines neither
make up a copied window nor count as copied text: 100 spaces after a short copied phrase read as
that phrase, not as 100% memorised.

The reduced corpus is indexed once as a sorted array of 64-bit polynomial hashes of all its
windows, computed with whole-array numpy passes (one per window position, no per-character Python
loop); a sample is then checked with one vectorised ``searchsorted``. Hash collisions can only
over-count, and at 2**64 values with at most tens of millions of windows they are vanishingly rare.

Index memory is 8 bytes per distinct window, so corpora over ``MAX_INDEX_CHARS`` are declined
(``from_corpus`` returns None and callers show the figure as unavailable).
"""

from __future__ import annotations

import numpy as np

DEFAULT_WINDOW = 20
MAX_INDEX_CHARS = 50_000_000
RUN_MIN = 3  # this many or more of one character in a row carry no more than one of it
SPACE_TOKEN = 1 << 40  # every run of whitespace; no character id reaches it
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


def informative_tokens(ids: np.ndarray, space: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, where each starts) of a text's ids; ``space`` marks its whitespace characters.

    A run of whitespace is one SPACE_TOKEN; a run of RUN_MIN or more of one character is one token.
    """
    key = np.where(np.asarray(space, dtype=bool), SPACE_TOKEN, np.asarray(ids, dtype=np.int64))
    if len(key) == 0:
        return key, np.zeros(0, dtype=np.int64)
    new_run = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, len(key)))
    squeezed = (key[starts] == SPACE_TOKEN) | (lengths >= RUN_MIN)
    counts = np.where(squeezed, 1, lengths)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    positions = np.repeat(starts, counts) + offsets
    return key[positions], positions


class MemorisationIndex:
    """All token windows of a corpus, ready to tell which generated characters are verbatim copies."""

    def __init__(self, data: np.ndarray, window: int = DEFAULT_WINDOW, vocab=None) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.vocab = vocab
        self.n_chars = len(data)
        chars = vocab.chars if vocab is not None else ()
        # whitespace per id; ids past the table (no vocabulary, or unknown characters) are not
        self._space = np.array([ch.isspace() for ch in chars] + [False], dtype=bool)
        data = np.asarray(data, dtype=np.int64)
        tokens, _ = informative_tokens(data, self._space[np.minimum(data, len(chars))])
        hashes = _window_hashes(tokens, window)
        hashes.sort()  # in place; np.unique is many times slower on uint64 here
        if len(hashes) > 1:
            keep = np.empty(len(hashes), dtype=bool)
            keep[0] = True
            np.not_equal(hashes[1:], hashes[:-1], out=keep[1:])
            hashes = hashes[keep]
        self._hashes = hashes
        self._index = {ch: i for i, ch in enumerate(chars)} if vocab is not None else None

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

    def _ids_and_space(self, text) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(text, str):
            return self.encode(text), np.array([ch.isspace() for ch in text], dtype=bool)
        ids = np.asarray(text, dtype=np.int64).reshape(-1)
        return ids, self._space[np.clip(ids, 0, len(self._space) - 1)]

    def covered(self, sample, context=()) -> np.ndarray:
        """A bool per sample character: True where a copied token starts (see the module docstring).

        Whitespace is never True, and of a run reduced to one token only its first character is.
        ``context`` (e.g. the prime) may start a window that ends in the sample; its own tokens
        are not counted.
        """
        mask, _ = self._copied(sample, context)
        return mask

    def share(self, sample, context=()) -> float:
        """Share (0..1) of the sample's informative tokens inside a verbatim corpus window; 0 when none."""
        mask, tokens = self._copied(sample, context)
        return float(mask.sum() / tokens) if tokens else 0.0

    def _copied(self, sample, context) -> tuple[np.ndarray, int]:
        """The covered() mask and the number of the sample's non-space tokens."""
        ids, space = self._ids_and_space(sample)
        ctx_ids, ctx_space = self._ids_and_space(context)
        keep = min(len(ctx_ids), 8 * self.window)  # enough context for any window that reaches the sample
        ctx_ids, ctx_space = ctx_ids[len(ctx_ids) - keep :], ctx_space[len(ctx_space) - keep :]
        tokens, positions = informative_tokens(np.concatenate([ctx_ids, ids]), np.concatenate([ctx_space, space]))
        hashes = _window_hashes(tokens, self.window)
        hit = np.zeros(len(tokens), dtype=bool)
        if len(hashes) and len(self._hashes):
            pos = np.searchsorted(self._hashes, hashes)
            found = self._hashes[np.minimum(pos, len(self._hashes) - 1)] == hashes
            # a found window covers its `window` tokens: mark with a difference array
            diff = np.zeros(len(tokens) + 1, dtype=np.int64)
            starts = np.flatnonzero(found)
            np.add.at(diff, starts, 1)
            np.add.at(diff, starts + self.window, -1)
            hit = np.cumsum(diff[:-1]) > 0
        mine = (positions >= len(ctx_ids)) & (tokens != SPACE_TOKEN)
        mask = np.zeros(len(ids), dtype=bool)
        mask[positions[mine & hit] - len(ctx_ids)] = True
        return mask, int(mine.sum())
