"""The memory-mapped cache of encoded corpora, and the spool that holds cleaned text between passes.

Entries live in ``<cache dir>/corpora`` (``$LSTMTUI_CACHE`` or the platform's user cache
directory): a ``.npy`` file of ids and a ``.json`` file with the vocabulary, keyed by the content
hash, the cleaning options and the vocabulary, and opened memory-mapped, so a corpus larger than
memory works and the second run on the same corpus starts at once. ``hashes.json`` remembers each
large file's sha256 by its path, size, modification time and inode, so an unchanged file is not
even re-read. Files are written to a temporary name and renamed into place, so a killed run never
leaves a half-written entry and a file some run has memory-mapped is never rewritten in place;
temporary files a day old are swept. An entry that cannot be written (a full disk) or read back
(truncated, corrupt) raises ``CacheUnwritable`` or ``CacheDamaged``, and the loader goes on without
it. ``cache_entries`` bounds the cache's size and lists and clears it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np

from lstmtui.core.corpus.cache_entries import MAX_HEADER_BYTES, STALE_TMP_S, read_regular_file
from lstmtui.core.corpus.cleaning import BYTE_PIECES, CleaningOptions, Piece
from lstmtui.core.corpus.sources import Source, names
from lstmtui.core.corpus.vocab import Vocab
from lstmtui.core.corpus.vocab_plan import Encoder
from lstmtui.core.errors import CorpusError, VocabularyError

CACHE_FORMAT = 1
SAMPLE_IDS = 1 << 16  # ids checked at each of three places of an entry when it is opened


def default_cache_dir() -> Path:
    """$LSTMTUI_CACHE if set, else the platform's user cache directory for lstmtui."""
    env = os.environ.get("LSTMTUI_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lstmtui"))


def cache_key(file_hashes: list[str], c: CleaningOptions, vocab: Vocab | None, extend_vocab: bool) -> str:
    """The name of the cache entry for these files, cleaning options and starting vocabulary."""
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "unicode": unicodedata.unidata_version,  # NFC and lowercasing follow Python's Unicode
            "files": file_hashes,
            "cleaning": c.to_dict(),
            "vocab": None if vocab is None else vocab.to_list(),
            "extend": bool(extend_vocab),
        },
        sort_keys=True,
        ensure_ascii=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _stat_key(src: Source) -> str | None:
    if src.path is None:
        return None
    try:
        st = src.path.stat()
    except OSError:
        return None
    return f"{src.path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


class HashIndex:
    """Remembers each large file's sha256 by (path, size, mtime, inode), so a re-run need not re-hash."""

    def __init__(self, directory: Path):
        self.path = directory / "hashes.json"
        try:
            self.data = json.loads(read_regular_file(self.path, MAX_HEADER_BYTES))
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, src: Source) -> str | None:
        """The remembered sha256 of ``src`` if the file is unchanged since, else None."""
        key = _stat_key(src)
        value = self.data.get(key) if key else None
        return value if isinstance(value, str) else None

    def put(self, src: Source, digest: str) -> None:
        """Remember ``digest`` for the file as it is now."""
        key = _stat_key(src)
        if key:
            prefix = f"{src.path}|"  # one entry per path: forget the file's older versions
            for old in [k for k in self.data if k.startswith(prefix)]:
                del self.data[old]
            self.data[key] = digest

    def save(self) -> None:
        """Write the index; a failure is ignored, since the index only saves time."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(self.path, json.dumps(self.data, indent=0).encode())
        except OSError:
            pass


class CacheUnwritable(Exception):
    """The cache entry could not be written (a full disk, no permission); the message says why."""


def load_cached(directory: Path, key: str) -> tuple[np.ndarray, Vocab, dict] | None:
    """The entry ``key`` (ids memory-mapped, vocabulary, header), or None when there is none.

    CacheDamaged when the entry is there but cannot be used (truncated, corrupt, inconsistent).
    """
    header_path, data_path = directory / f"{key}.json", directory / f"{key}.npy"
    try:
        raw = read_regular_file(header_path, MAX_HEADER_BYTES)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CacheDamaged(f"its header cannot be read ({e.strerror or e})") from None
    try:
        entry = json.loads(raw)
        vocab = Vocab.from_list(entry["vocab"])
        n_chars = entry["n_chars"]
        if not stat.S_ISREG(data_path.stat().st_mode):  # a FIFO would block the load
            raise CacheDamaged("its data is not a regular file")
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise CacheDamaged("its data file is missing") from None
    except (OSError, ValueError, KeyError, TypeError, VocabularyError) as e:
        raise CacheDamaged(f"it is unreadable ({_first_line(e)})") from None
    _check_entry(data, data_path, vocab, n_chars)
    return data, vocab, entry


class CacheDamaged(Exception):
    """A cache entry exists but cannot be used; the message says what is wrong with it."""


def _check_entry(data: np.ndarray, data_path: Path, vocab: Vocab, n_chars: object) -> None:
    """Cheap checks that the mapped ids are what the header promises: shape, type, file size, a sample of ids."""
    if data.ndim != 1 or data.shape[0] != n_chars or data.dtype != vocab.dtype:
        raise CacheDamaged(f"its data does not match its header ({data.shape} {data.dtype}, {n_chars} characters)")
    try:
        size = data_path.stat().st_size
    except OSError as e:
        raise CacheDamaged(f"its data file cannot be read ({e.strerror or e})") from None
    if size != getattr(data, "offset", 0) + data.nbytes:
        raise CacheDamaged(f"its data file has {size} bytes, not the {data.offset + data.nbytes} its header implies")
    n = data.shape[0]
    for start in {0, max(n // 2 - SAMPLE_IDS // 2, 0), max(n - SAMPLE_IDS, 0)}:
        window = data[start : start + SAMPLE_IDS]
        if window.size and int(window.max()) >= len(vocab):
            raise CacheDamaged("it holds ids outside its vocabulary")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def encode_to_cache(
    cdir: Path,
    key: str,
    sources: list[Source],
    cleaning: CleaningOptions,
    pieces: Callable[[], Iterable[Piece]],
    encode: Encoder,
    vocab: Vocab,
    n_chars: int,
) -> np.ndarray:
    """Encode into ``cdir/key.npy`` atomically and return it memory-mapped.

    CacheUnwritable (with the reason) when the entry cannot be written; nothing is left behind.
    """
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        writer = _NpyWriter(cdir / f"{key}.npy", vocab.dtype, n_chars)
    except OSError as e:
        raise CacheUnwritable(_os_reason(e)) from None
    try:
        written = 0
        for piece in pieces():
            writer.write(encode(piece))
            written += len(piece)
        if written != n_chars:  # a file changed between the passes
            raise CorpusError(f"{names(sources)} changed while being read; try again")
        writer.finish()
        header = {
            "format": CACHE_FORMAT,
            "n_chars": n_chars,
            "vocab": vocab.to_list(),
            "cleaning": cleaning.to_dict(),
            "paths": [str(s.path) for s in sources],
            "size_bytes": sum(s.size for s in sources),
        }
        _atomic_write_bytes(cdir / f"{key}.json", json.dumps(header, ensure_ascii=True).encode())
    except OSError as e:
        writer.abort()
        with contextlib.suppress(OSError):
            (cdir / f"{key}.npy").unlink(missing_ok=True)  # written, but without its header
        raise CacheUnwritable(_os_reason(e)) from None
    except BaseException:
        writer.abort()
        raise
    try:
        return np.load(cdir / f"{key}.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CacheUnwritable(f"the entry just written cannot be read back ({_first_line(e)})") from None


def _os_reason(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno == errno.EDQUOT:
        return "the disk quota is exhausted"
    return e.strerror or _first_line(e)


def _sweep(directory: Path) -> None:
    """Delete temporary files that runs killed a day or more ago left in the cache directory."""
    cutoff = time.time() - STALE_TMP_S
    for tmp in directory.glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except OSError:
            pass


class _WriteBehind:
    """Runs one write to a file at a time in a worker thread (file writes release the GIL), so the
    kernel's copying overlaps with preparing the next chunk; the caller touches the file only
    after ``wait``."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future | None = None

    def write(self, *parts) -> None:
        """Queue ``parts`` to be written once the write before has finished (raising its OSError)."""
        self.wait()
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstmtui-write")
        self.pending = self.pool.submit(self._write, parts)

    def _write(self, parts: tuple) -> None:
        for part in parts:
            self.f.write(part)

    def wait(self) -> None:
        """Wait for the write in flight, raising its OSError."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the write in flight, ignoring its error, and stop the worker."""
        try:
            self.wait()
        except OSError:
            pass
        finally:
            if self.pool is not None:
                self.pool.shutdown()
                self.pool = None


class Spool:
    """Cleaned pieces on disk between the passes: a kind byte (1, 2 or 4 bytes a char), a length, the data."""

    def __init__(self, path: Path):
        self.path = path
        self.f: IO[bytes] | None = open(path, "w+b")  # closed by close()
        self.behind = _WriteBehind(self.f)
        self.ok = True

    @classmethod
    def create(cls, directory: Path) -> Spool | None:
        """A new spool in ``directory`` (sweeping stale temporary files first); None if it cannot be made."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _sweep(directory)
            return cls(directory / f".spool.{os.getpid()}.{id(directory):x}.tmp")
        except OSError:
            return None

    def write(self, piece: Piece, counts: np.ndarray | None) -> None:
        """Append a piece; after a failed write ``ok`` is False and later pieces are dropped."""
        if not self.ok:
            return
        if isinstance(piece, BYTE_PIECES):
            kind, data = 1, piece
        elif counts is not None and counts.size <= 0x10000:  # every code point fits in 16 bits
            kind, data = 2, piece.astype("<u2")
        else:
            kind, data = 4, np.ascontiguousarray(piece, dtype="<u4")
        try:
            self.behind.write(bytes([kind]) + len(piece).to_bytes(8, "little"), data)
        except OSError:  # a full disk (the write before this one): pass 2 reads the corpus again instead
            self.ok = False

    def drain(self) -> None:
        """Finish the last write; ``ok`` is False if it failed."""
        try:
            self.behind.wait()
        except OSError:
            self.ok = False

    def read(self, on_progress: Callable[[int], None]) -> Iterator[Piece]:
        """The spooled pieces in order; ``on_progress`` gets the characters read so far."""
        self.behind.wait()
        self.f.flush()
        self.f.seek(0)
        done = 0
        try:
            while head := self.f.read(9):
                kind, n = head[0], int.from_bytes(head[1:], "little")
                data = self.f.read(n * kind)
                yield data if kind == 1 else np.frombuffer(data, dtype="<u2" if kind == 2 else "<u4")
                done += n
                on_progress(done)
        except OSError:
            self.ok = False  # a retry reads the corpus again
            raise

    def close(self) -> None:
        """Close and delete the spool file."""
        if self.f is not None:
            self.behind.close()
            self.f.close()
            self.f = None
        self.path.unlink(missing_ok=True)


class _NpyWriter:
    """Writes a 1-d .npy file chunk by chunk with ordinary writes (a full disk raises, not SIGBUS)."""

    def __init__(self, path: Path, dtype: np.dtype, n: int):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.f = open(self.tmp, "wb")  # closed in finish or abort
        np.lib.format.write_array_header_1_0(
            self.f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
        )
        self.behind = _WriteBehind(self.f)

    def write(self, arr: np.ndarray) -> None:
        self.behind.write(np.ascontiguousarray(arr).data)

    def finish(self) -> None:
        self.behind.wait()
        self.behind.close()
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Close and delete the temporary file, whatever state the disk is in."""
        self.behind.close()
        with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
            self.f.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)
