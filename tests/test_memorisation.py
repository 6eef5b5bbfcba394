"""Memorisation figure: share of generated informative text inside verbatim corpus windows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmtui.core.corpus import Vocab, load_corpus
from lstmtui.core.memorisation import RUN_MIN, MemorisationIndex, _window_hashes

CHARS = list("\n abcdefghijklmnopqrstuvwxyz")
LETTERS = CHARS[2:]
VOCAB = Vocab(CHARS)


def brute_tokens(text: str) -> list[tuple[str, int]]:
    """(token, position) pairs: a whitespace run is one ' ', a run of RUN_MIN+ of one character one token."""
    out, pos = [], 0
    for key, run in itertools.groupby(text, key=lambda ch: " " if ch.isspace() else ch):
        n = len(list(run))
        if key == " " or n >= RUN_MIN:
            out.append((key, pos))
        else:
            out.extend((key, pos + i) for i in range(n))
        pos += n
    return out


def brute_covered(corpus: str, sample: str, w: int) -> list[bool]:
    ctoks = [t for t, _ in brute_tokens(corpus)]
    windows = {tuple(ctoks[i : i + w]) for i in range(len(ctoks) - w + 1)}
    stoks = brute_tokens(sample)
    hit = [False] * len(stoks)
    for i in range(len(stoks) - w + 1):
        if tuple(t for t, _ in stoks[i : i + w]) in windows:
            for j in range(i, i + w):
                hit[j] = True
    mask = [False] * len(sample)
    for (token, pos), h in zip(stoks, hit, strict=True):
        mask[pos] = h and token != " "
    return mask


def random_text(rng, n: int, chars=CHARS) -> str:
    return "".join(rng.choice(chars, size=n))


def test_copied_span_is_counted_exactly():
    rng = np.random.default_rng(0)
    corpus = random_text(rng, 20_000, LETTERS)
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    copied = corpus[5000:5050]
    sample = random_text(rng, 25, LETTERS) + copied + random_text(rng, 25, LETTERS)
    assert not any(a == b == c for a, b, c in zip(sample, sample[1:], sample[2:], strict=False))  # no runs
    mask = index.covered(sample)
    assert mask.tolist() == [False] * 25 + [True] * 50 + [False] * 25
    assert index.share(sample) == pytest.approx(0.5)
    assert index.share(random_text(rng, 300, LETTERS)) == 0.0
    assert index.share(corpus[:400]) == 1.0
    assert index.share("") == 0.0 and index.share("short") == 0.0


def test_copies_shorter_than_the_window_do_not_count():
    rng = np.random.default_rng(1)
    corpus = random_text(rng, 5000, LETTERS)
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    sample = random_text(rng, 30, LETTERS) + corpus[100:119] + random_text(rng, 30, LETTERS)
    assert index.share(sample) == 0.0
    assert MemorisationIndex(VOCAB.encode(corpus), window=10, vocab=VOCAB).share(sample) == pytest.approx(19 / 79)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    # a low-entropy corpus so that windows repeat and samples overlap it in many places
    # with whitespace runs and runs of one character, which reduce to one token each
    pieces = ["the cat ", "sat on ", "a mat\n", "and the dog ", "ran ", "zzzz ", "  \n    ", "oo"]
    corpus = "".join(rng.choice(pieces, size=600))
    sample = "".join(rng.choice([*pieces[:3], "and a dog ", "ran ", "xyz", "zzz", "   "], size=60))
    w = int(rng.integers(5, 25))
    index = MemorisationIndex(VOCAB.encode(corpus), window=w, vocab=VOCAB)
    assert index.covered(sample).tolist() == brute_covered(corpus, sample, w)


def test_context_starts_windows_but_is_not_counted():
    corpus = "it was the best of times it was the worst of times"
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    # the sample alone is shorter than a window; with the prime it completes a copied one
    assert index.share("worst of times") == 0.0
    assert index.share("worst of times", context="it was the ") == 1.0


def test_unknown_characters_never_match():
    corpus = "abcdefghijklmnopqrstuvwxyz " * 10
    index = MemorisationIndex(VOCAB.encode(corpus), window=5, vocab=VOCAB)
    # ten informative characters (the space is not one), the five of "fghij" copied
    assert index.share("abcdé fghij") == pytest.approx(5 / 10)


def test_hash_ids_and_text_agree():
    rng = np.random.default_rng(3)
    corpus = random_text(rng, 3000)
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    sample = corpus[10:80] + random_text(rng, 30)
    assert np.array_equal(index.covered(sample), index.covered(VOCAB.encode(sample)))
    # chunked hashing equals one-pass hashing
    ids = VOCAB.encode(corpus)
    import lstmtui.core.memorisation as mem

    whole = _window_hashes(ids, 20)
    old = mem._CHUNK
    mem._CHUNK = 97
    try:
        assert np.array_equal(_window_hashes(ids, 20), whole)
    finally:
        mem._CHUNK = old


def test_one_megabyte_corpus_and_size_limit(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "c.txt"
    words = np.array(["lorem ", "ipsum ", "dolor ", "sit ", "amet\n", "consectetur ", "adipiscing ", "elit "])
    path.write_text("".join(rng.choice(words, size=150_000)))
    corpus = load_corpus([path])
    assert len(corpus.data) > 1_000_000
    index = MemorisationIndex.from_corpus(corpus)
    text = corpus.vocab.decode(corpus.data[12345:12545])
    assert index.share(text) == 1.0
    assert MemorisationIndex.from_corpus(corpus, max_chars=1000) is None


PYTHON = (
    "class HelpFormatter:\n"
    "    def format_help(self):\n"
    "        formatter = self._get_formatter()\n"
    "        if formatter is None:\n"
    "            return self.format_usage()\n"
    "        for action in self._actions:\n"
    "            if action.help is not None:\n"
    "                formatter.add_argument(action)\n"
    "        return formatter.format_help()" + " " * 120 + "\n"
    "# " + "-" * 70 + "\n"
    "\n\n\n"
)
PY_VOCAB = Vocab(sorted(set(PYTHON + "xq")))


def test_whitespace_after_a_short_copied_phrase_is_not_memorised():
    # a beam output: format_help() and then ~100 spaces; every 20-char window of it is in the corpus
    index = MemorisationIndex(PY_VOCAB.encode(PYTHON * 3), window=20, vocab=PY_VOCAB)
    sample = "format_help()" + " " * 100
    assert index.share(sample) == 0.0
    assert not index.covered(sample).any()
    # a whole copied line still counts, all of it, whatever indentation or padding it has
    line = "        return formatter.format_help()" + " " * 100
    assert index.share(line) == 1.0
    assert index.covered(line).sum() == len("returnformatter.format_help()")


def test_garbled_text_between_copied_indentation_is_not_memorised():
    index = MemorisationIndex(PY_VOCAB.encode(PYTHON * 3), window=20, vocab=PY_VOCAB)
    # what an early model writes on Python source: the indentation right, the words not
    garbled = "\n        fo\n            re\n                fom\n        if\n            ret\n" * 4
    assert index.share(garbled) == 0.0
    copied = "            if action.help is not None:\n                formatter.add_argument(action)\n"
    assert index.share(garbled + copied) == pytest.approx(
        len(copied.replace(" ", "").replace("\n", "")) / len((garbled + copied).replace(" ", "").replace("\n", ""))
    )


def test_runs_of_one_character_are_not_memorised():
    index = MemorisationIndex(PY_VOCAB.encode(PYTHON * 3), window=20, vocab=PY_VOCAB)
    assert index.share("-" * 200) == 0.0
    assert index.share("# " + "-" * 80 + "\nxq") == 0.0
    assert index.share("xq" * 3) == 0.0
