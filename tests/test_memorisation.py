"""Memorisation figure: share of generated characters inside verbatim corpus windows."""

from __future__ import annotations

import numpy as np
import pytest

from lstmtui.core.corpus import Vocab, load_corpus
from lstmtui.core.memorisation import MemorisationIndex, _window_hashes

CHARS = list("\n abcdefghijklmnopqrstuvwxyz")
VOCAB = Vocab(CHARS)


def brute_covered(corpus: str, sample: str, w: int) -> list[bool]:
    windows = {corpus[i : i + w] for i in range(len(corpus) - w + 1)}
    mask = [False] * len(sample)
    for i in range(len(sample) - w + 1):
        if sample[i : i + w] in windows:
            for j in range(i, i + w):
                mask[j] = True
    return mask


def random_text(rng, n: int) -> str:
    return "".join(rng.choice(CHARS, size=n))


def test_copied_span_is_counted_exactly():
    rng = np.random.default_rng(0)
    corpus = random_text(rng, 20_000)
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    copied = corpus[5000:5050]
    sample = random_text(rng, 25) + copied + random_text(rng, 25)
    mask = index.covered(sample)
    assert mask.tolist() == [False] * 25 + [True] * 50 + [False] * 25
    assert index.share(sample) == pytest.approx(0.5)
    assert index.share(random_text(rng, 300)) == 0.0
    assert index.share(corpus[:400]) == 1.0
    assert index.share("") == 0.0 and index.share("short") == 0.0


def test_copies_shorter_than_the_window_do_not_count():
    rng = np.random.default_rng(1)
    corpus = random_text(rng, 5000)
    index = MemorisationIndex(VOCAB.encode(corpus), window=20, vocab=VOCAB)
    sample = random_text(rng, 30) + corpus[100:119] + random_text(rng, 30)
    assert index.share(sample) == 0.0
    assert MemorisationIndex(VOCAB.encode(corpus), window=10, vocab=VOCAB).share(sample) == pytest.approx(19 / 79)


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    # a low-entropy corpus so that windows repeat and samples overlap it in many places
    corpus = "".join(rng.choice(["the cat ", "sat on ", "a mat\n", "and the dog ", "ran "], size=600))
    sample = "".join(rng.choice(["the cat ", "sat on ", "a mat\n", "and a dog ", "ran ", "xyz"], size=60))
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
    assert index.share("abcdé fghij") == pytest.approx(5 / 11)


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
