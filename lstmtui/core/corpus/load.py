"""``load_corpus``: the two passes that turn sources into a ``Corpus``.

Pass 1 hashes, decodes, cleans and counts, keeping the cleaned pieces in memory or, for a large
corpus, spooling them to a temporary file. The vocabulary is then planned from the counts, and
pass 2 encodes the pieces (kept, spooled, or read and cleaned again when the spool failed) into
the cache or into memory. A corpus of at least ``CACHE_MIN_BYTES`` from files is cached; standard
input and smaller corpora are prepared in memory, and so is a corpus whose cache cannot be written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lstmtui.core.corpus.cache import (
    CacheDamaged,
    CacheUnwritable,
    HashIndex,
    Spool,
    cache_key,
    default_cache_dir,
    encode_to_cache,
    load_cached,
)
from lstmtui.core.corpus.cache_entries import CORPORA_DIR, cache_limit, evict, remove_entry, touch_entry
from lstmtui.core.corpus.cleaning import AUTO_ENCODING, Cleaner, CleaningOptions, Piece
from lstmtui.core.corpus.decode import iter_corpus
from lstmtui.core.corpus.detect import DETECT_BYTES, Detection, detect_encoding
from lstmtui.core.corpus.sources import CHUNK_BYTES, Source, expand, is_wide, names
from lstmtui.core.corpus.split import MIN_CHARS, Corpus
from lstmtui.core.corpus.vocab import Vocab
from lstmtui.core.corpus.vocab_plan import Encoder, Tally, plan_vocab
from lstmtui.core.errors import CorpusError
from lstmtui.core.units import format_size

CACHE_MIN_BYTES = 4 << 20  # smaller corpora are prepared in memory, faster than touching a cache
PROGRESS_INTERVAL_S = 0.25

ProgressFn = Callable[[str, int, int], None]
NoticeFn = Callable[[str], None]
NOTICE_PREFIXES = ("note: ", "warning: ")  # how a notice sent as a progress stage is told from a stage

_DEFAULT_CLEANING = CleaningOptions()
_log = logging.getLogger("lstmtui.corpus")


def load_corpus(
    paths: Sequence[str | Path],
    cleaning: CleaningOptions = _DEFAULT_CLEANING,
    *,
    vocab: Vocab | None = None,
    extend_vocab: bool = False,
    progress: ProgressFn | None = None,
    cache_dir: Path | None = None,
    chunk_bytes: int | None = None,
    notice: NoticeFn | None = None,
) -> Corpus:
    """Read, clean and encode a corpus (files, a directory, or '-' for stdin); see the package docstring.

    ``progress(stage, done, total)`` follows the stages reading, encoding and cache. ``notice(text)``
    gets what the user should hear about ("note: ..." such as the encoding ``auto`` chose,
    "warning: ..." such as a cache entry that could not be written); without it, notices go to
    ``progress`` as a stage of their own (done and total 0), else to the ``lstmtui.corpus`` logger.
    """
    job = _Loader(paths, cleaning, vocab, extend_vocab, progress, _Notices(notice, progress), cache_dir, chunk_bytes)
    hit = job.cached_without_reading()
    if hit is not None:
        return hit
    with contextlib.ExitStack() as cleanup:
        read = job.read(cleanup)
        chosen, lut = job.plan(read)
        encode = Encoder(lut, read.cleaner.extra)
        if job.index is not None:
            corpus = job.encode_to_cache(read, chosen, encode)
            if corpus is not None:
                return corpus
        return job.encode_in_memory(read, chosen, encode)


class _Hasher:
    """sha256 of each source, computed in a worker thread; at most one chunk waits for it."""

    def __init__(self, n: int):
        self.hashes = [hashlib.sha256() for _ in range(n)]
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstmtui-hash")
        self.pending: Future | None = None

    def update(self, i: int, raw: bytes) -> None:
        if self.pending is not None:
            self.pending.result()
        self.pending = self.pool.submit(self.hashes[i].update, raw)

    def finish(self) -> list[str]:
        if self.pending is not None:
            self.pending.result()
        self.pool.shutdown()
        return [h.hexdigest() for h in self.hashes]


class _Notices:
    """Where a load's notices go: the notice callback, else the progress callback, else the logger."""

    def __init__(self, notice: NoticeFn | None, progress: ProgressFn | None):
        self.notice, self.progress = notice, progress

    def note(self, text: str) -> None:
        """Something the user should know (what was chosen for them)."""
        self._send("note: " + text, logging.INFO)

    def warn(self, text: str) -> None:
        """Something went wrong, and the load goes on without it."""
        self._send("warning: " + text, logging.WARNING)

    def _send(self, text: str, level: int) -> None:
        if self.notice is not None:
            self.notice(text)
        elif self.progress is not None:
            self.progress(text, 0, 0)
        else:
            _log.log(level, text)


class _Progress:
    """Calls the progress callback at most every ``PROGRESS_INTERVAL_S``, unless forced."""

    def __init__(self, fn: ProgressFn | None, total: int):
        self.fn, self.total, self.last = fn, total, 0.0

    def __call__(self, stage: str, done: int, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.fn(stage, min(done, self.total), self.total)


@dataclass
class _Read:
    """What pass 1 leaves for pass 2."""

    cleaner: Cleaner
    tally: Tally
    keep: list[Piece] | None  # the cleaned pieces, when they are kept in memory
    spool: Spool | None  # else the spooled pieces, when the spool could be made
    file_hashes: list[str]


class _Loader:
    """One ``load_corpus`` call: its sources, settings and progress, and the steps that prepare it."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        cleaning: CleaningOptions,
        vocab: Vocab | None,
        extend_vocab: bool,
        progress: ProgressFn | None,
        notices: _Notices,
        cache_dir: Path | None,
        chunk_bytes: int | None,
    ):
        self.vocab, self.extend_vocab, self.chunk_bytes = vocab, extend_vocab, chunk_bytes or CHUNK_BYTES
        self.notices = notices
        auto = cleaning.encoding == AUTO_ENCODING
        self.sources, self.skipped = expand(paths, None if auto else is_wide(cleaning.encoding))
        self.detected: Detection | None = detect_encoding(self.sources) if auto else None
        if self.detected is not None:
            cleaning = replace(cleaning, encoding=self.detected.encoding)
            notices.note(self.detected.describe())
        self.cleaning = cleaning
        self.total = sum(s.size for s in self.sources)
        self.tick = _Progress(progress, self.total)
        self.root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cdir = self.root / CORPORA_DIR
        self.use_cache = self.total >= CACHE_MIN_BYTES and all(s.path is not None for s in self.sources)
        self.limit = cache_limit(self.root).max_bytes if self.use_cache else 0
        self.use_cache = self.use_cache and self.limit > 0
        self.index = HashIndex(self.cdir) if self.use_cache else None

    def cached_without_reading(self) -> Corpus | None:
        """A cache hit that needs no read at all: every file's hash is remembered by its stat."""
        if self.index is None:
            return None
        known = [self.index.get(s) for s in self.sources]
        if not all(known):
            return None
        return self._cached(cache_key(known, self.cleaning, self.vocab, self.extend_vocab), known)

    def _cached(self, key: str, hashes: list[str]) -> Corpus | None:
        try:
            hit = load_cached(self.cdir, key)
        except CacheDamaged as e:
            remove_entry(self.cdir, key)
            self.notices.warn(f"the corpus cache entry {key[:12]} was damaged ({e}); removed it, reading the corpus")
            return None
        if hit is None:
            return None
        touch_entry(self.cdir, key)
        self.tick("cache", self.total, force=True)
        return self._corpus(hit[0], hit[1], hashes)

    def read(self, cleanup: contextlib.ExitStack) -> _Read:
        """Pass 1: hash, decode, clean and count, keeping or spooling the cleaned pieces.

        Hashing runs in a thread (hashlib releases the GIL). A large corpus's cleaned text is
        spooled to disk, so pass 2 need not decode and clean again.
        """
        hasher = _Hasher(len(self.sources))
        tally = Tally(need_counts=self.cleaning.min_char_count > 0)
        cleaner = Cleaner(self.cleaning)
        keep: list[Piece] | None = [] if self.total <= 2 * self.chunk_bytes or not self.use_cache else None
        spool = Spool.create(self.cdir) if keep is None else None
        if spool is not None:
            cleanup.callback(spool.close)
        done = 0

        def on_raw(i: int, raw: bytes) -> None:
            nonlocal done
            hasher.update(i, raw)
            done += len(raw)
            self.tick("reading", done)

        self.tick("reading", 0, force=True)
        try:
            for piece in iter_corpus(self.sources, cleaner, self.chunk_bytes, on_raw):
                tally.add(piece, cleaner.last_counts)
                if keep is not None:
                    keep.append(piece)
                elif spool is not None:
                    spool.write(piece, cleaner.last_counts)
        finally:
            file_hashes = hasher.finish()
            if spool is not None:
                spool.drain()
        self.tick("reading", self.total, force=True)
        return _Read(cleaner, tally, keep, spool, file_hashes)

    def plan(self, read: _Read) -> tuple[Vocab, np.ndarray]:
        """Check the corpus's size; choose the vocabulary and the code point -> id table."""
        _check_size(read.tally.n, self.sources)
        chosen, lut = plan_vocab(read.tally.fold(read.cleaner.extra), self.cleaning, self.vocab, self.extend_vocab)
        if len(chosen) < 2 and self.vocab is None:
            raise CorpusError(
                f"the corpus uses only one distinct character ({chosen.chars[0]!r}); "
                "a model needs text with at least two"
            )
        return chosen, lut

    def pieces(self, read: _Read) -> Iterable[Piece]:
        """Pass 2's input: the pieces kept in memory, spooled, or read and cleaned again."""
        if read.keep is not None:
            return read.keep
        if read.spool is not None and read.spool.ok:
            n_chars = max(read.tally.n, 1)
            return read.spool.read(lambda done: self.tick("encoding", int(self.total * done / n_chars)))
        # skips the checks pass 1 found needless; byte pieces must mean what they meant then
        again = Cleaner(self.cleaning, trusted=not read.cleaner.dirty, extra=read.cleaner.extra)
        return iter_corpus(self.sources, again, self.chunk_bytes, self._encoding_progress())

    def _encoding_progress(self) -> Callable[[int, bytes], None]:
        done = 0

        def on_raw(_i: int, raw: bytes) -> None:
            nonlocal done
            done += len(raw)
            self.tick("encoding", done)

        return on_raw

    def encode_to_cache(self, read: _Read, chosen: Vocab, encode: Encoder) -> Corpus | None:
        """Pass 2 into the cache (or the entry already there); None when the cache cannot be written."""
        for src, digest in zip(self.sources, read.file_hashes, strict=True):
            self.index.put(src, digest)
        self.index.save()
        key = cache_key(read.file_hashes, self.cleaning, self.vocab, self.extend_vocab)
        hit = self._cached(key, read.file_hashes)
        if hit is not None:
            return hit
        pieces = functools.partial(self.pieces, read)  # started only once the cache file is open
        try:
            data = encode_to_cache(self.cdir, key, self.sources, self.cleaning, pieces, encode, chosen, read.tally.n)
        except CacheUnwritable as e:
            self.notices.warn(f"cannot write the corpus cache in {self.cdir} ({e}); preparing the corpus in memory")
            return None
        evict(self.cdir, keep=key, max_bytes=self.limit)
        self.tick("encoding", self.total, force=True)
        return self._corpus(data, chosen, read.file_hashes)

    def encode_in_memory(self, read: _Read, chosen: Vocab, encode: Encoder) -> Corpus:
        """Pass 2 into memory: small corpora, stdin, or a cache that could not be written."""
        n_chars = read.tally.n
        out = np.empty(n_chars, dtype=chosen.dtype)
        pos = 0
        for piece in self.pieces(read):
            if pos + len(piece) > n_chars:
                raise CorpusError(f"{names(self.sources)} changed while being read; try again")
            out[pos : pos + len(piece)] = encode(piece)
            pos += len(piece)
        if pos != n_chars:
            raise CorpusError(f"{names(self.sources)} changed while being read; try again")
        self.tick("encoding", self.total, force=True)
        return self._corpus(out, chosen, read.file_hashes)

    def _corpus(self, data: np.ndarray, vocab: Vocab, hashes: list[str]) -> Corpus:
        """The Corpus with its provenance; ``data`` becomes read-only like a memory-mapped cache."""
        if len(hashes) == 1:
            digest = hashes[0]
        else:  # several files: the hash of their hashes, in order
            digest = hashlib.sha256("".join(hashes).encode()).hexdigest()
        if data.flags.writeable:
            data.flags.writeable = False
        provenance = {
            "paths": [str(s.path) if s.path is not None else "-" for s in self.sources],
            "size_bytes": int(sum(s.size for s in self.sources)),
            "n_chars": int(data.shape[0]),
            "sha256": digest,
            "file_sha256": list(hashes),
            "cleaning": self._cleaning_record(),
            "vocab_size": len(vocab),
        }
        if self.skipped:
            provenance["skipped"] = self.skipped
        return Corpus(data=data, vocab=vocab, provenance=provenance)

    def _cleaning_record(self) -> dict:
        record = self.cleaning.describe()
        if self.detected is not None:  # the encoding auto chose, recorded as a real codec so a reload decodes alike
            record["steps"][0] += f" (chosen by encoding auto from the first {format_size(DETECT_BYTES)} of each file)"
        return record


def _check_size(n_chars: int, sources: list[Source]) -> None:
    if n_chars == 0:
        if all(s.size == 0 for s in sources):
            verb = "is" if len(sources) == 1 else "are"
            raise CorpusError(f"{names(sources)} {verb} empty; pass a file with text in it")
        raise CorpusError(f"{names(sources)} hold no text after cleaning (only control characters); pass a text file")
    if n_chars < MIN_CHARS:
        raise CorpusError(
            f"the corpus has only {n_chars} character; a model needs at least {MIN_CHARS} "
            "(and far more to learn anything)"
        )
