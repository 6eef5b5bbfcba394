"""A prepared corpus (ids, vocabulary, provenance) and its contiguous train/validation split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstmtui.core.corpus.vocab import Vocab
from lstmtui.core.errors import ConfigError, CorpusError

MIN_CHARS = 2  # fewer characters than this cannot give even one (input, target) pair


@dataclass
class Corpus:
    """A cleaned, encoded corpus: ids, vocabulary and where it came from."""

    data: np.ndarray
    vocab: Vocab
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def split(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val): the validation split is the contiguous tail (char-rnn/nanoGPT convention)."""
        n_val = val_size(len(self), val_fraction)
        cut = len(self) - n_val
        return self.data[:cut], self.data[cut:]

    def text(self, start: int = 0, stop: int | None = None) -> str:
        """Decode a slice of the corpus back to text."""
        return self.vocab.decode(self.data[start:stop])


def val_size(n_chars: int, val_fraction: float) -> int:
    """Number of validation characters: floor(n_chars * val_fraction)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be at least 0 and below 1, not {val_fraction}")
    return int(n_chars * val_fraction)


def check_trainable(corpus: Corpus | int, batch: int, seq_len: int, val_fraction: float) -> int:
    """Raise CorpusError unless each of ``batch`` streams gets >= 2 chars and validation >= 2.

    Returns the usable sequence length: ``seq_len``, or less when the streams are shorter.
    """
    n = corpus if isinstance(corpus, int) else len(corpus)
    if batch < 1 or seq_len < 1:
        raise ConfigError(f"batch size and sequence length must be 1 or more, not {batch} and {seq_len}")
    n_val = val_size(n, val_fraction)
    n_train = n - n_val
    if val_fraction > 0 and n_val < MIN_CHARS:
        need = int(np.ceil(MIN_CHARS / val_fraction))
        raise CorpusError(
            f"the corpus is too short: {n} characters leave {n_val} for validation at validation fraction "
            f"{val_fraction}, and validation needs at least {MIN_CHARS}; use a corpus of at least "
            f"{need} characters or raise the validation fraction"
        )
    stream = n_train // batch
    if stream < MIN_CHARS:
        most = n_train // MIN_CHARS
        fix = f"lower the batch size to {most} or fewer, or use a longer corpus" if most >= 1 else "use a longer corpus"
        raise CorpusError(
            f"the corpus is too short for batch size {batch}: its training split has {n_train} characters "
            f"and each of the {batch} streams needs at least {MIN_CHARS}; {fix}"
        )
    return min(seq_len, stream - 1)
