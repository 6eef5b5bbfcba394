"""Read, clean, encode and cache training corpora; the vocabulary; the train/validation split.

Input is one file, several files, a directory, or ``-`` for standard input. Files are joined in
the order given (a newline is added after a file that does not end with one); a directory is
searched recursively and its files are taken in sorted order of their relative paths. In a
directory, hidden entries (names starting with ``.``), files with a known binary extension
(images, archives, compiled code...) and files that sniff as binary (a known magic number or a NUL
byte in their first 8 KiB) are skipped and listed in the provenance under ``skipped``; a file named
explicitly is never skipped: if it is binary, that is an error naming it. Anything that is not a
regular file (a FIFO, a device) is refused without being opened, so nothing blocks.

Cleaning (CRLF/CR to LF, control characters dropped, optional lowercasing, NFC, rare characters to
``UNKNOWN_CHAR``) is described in ``lstmtui.core.cleaning`` and recorded in the provenance.

UTF-8 input read in whole lines is cleaned as bytes, never decoded to a str: the non-ASCII bytes
are checked with vectorised numpy code and a strict decode of those bytes alone, and a few wider
characters get spare byte values (``lstmtui.core.cleaning.Cleaner.utf8``); anything else (invalid
bytes, characters NFC or lowercasing could change, too many distinct wide characters) takes the
decoding path, which gives the same text and reports errors. Text is then encoded to integer ids
with vectorised numpy code (uint8 when the vocabulary has at most 256 symbols). Ids of a fresh vocabulary are sorted by character. A corpus of at least
``CACHE_MIN_BYTES`` is read in chunks (pass 1 hashes, cleans and counts, spooling the cleaned text
to a temporary file; pass 2 encodes it once the vocabulary is known) into a ``.npy`` file in the
cache directory (``$LSTMTUI_CACHE`` or the platform's user cache directory), keyed by the content
hash, the cleaning options and the vocabulary, and opened memory-mapped, so a corpus larger than
memory works and the second run on the same corpus starts at once: the cache remembers each large
file's sha256 by its path, size, modification time and inode, so an unchanged file is not even
re-read. Cache files are written to a temporary name and renamed into place, so a killed run never
leaves a half-written entry; an unwritable cache directory means the corpus is prepared in memory.
Directories are walked without following symbolic links to directories (links to files are read).
Standard input is copied to a temporary file first (so it can be read twice) and is prepared in
memory, never cached.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Sequence

import numpy as np

from lstmtui.core.cleaning import (
    BYTE_PIECES,
    EXTRA_BASE,
    MAX_CODEPOINT,
    Cleaner,
    CleaningOptions,
    bincount,
    clean_text,
    normalise_newlines,
    safe_cut,
)
from lstmtui.core.errors import ConfigError, CorpusError, VocabularyError
from lstmtui.core.vocab import Vocab, show_chars

__all__ = [
    "CACHE_MIN_BYTES",
    "CHUNK_BYTES",
    "MIN_CHARS",
    "UNKNOWN_CHAR",
    "CleaningOptions",
    "Corpus",
    "Vocab",
    "check_trainable",
    "clean_text",
    "default_cache_dir",
    "default_corpus_path",
    "load_corpus",
    "val_size",
]

UNKNOWN_CHAR = "\ufffd"  # the Unicode replacement character: rare characters become this one
MIN_CHARS = 2  # fewer characters than this cannot give even one (input, target) pair
CHUNK_BYTES = 4 << 20  # raw bytes a chunk (tests lower it to exercise boundaries); 16 MB measured slower, and peaks higher
CACHE_MIN_BYTES = 4 << 20  # smaller corpora are prepared in memory, faster than touching a cache
CACHE_FORMAT = 1
SNIFF_BYTES = 8192
PROGRESS_INTERVAL_S = 0.25


ProgressFn = Callable[[str, int, int], None]


_BINARY_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"),
    (b"\x7fELF", "an executable"),
    (b"\xcf\xfa\xed\xfe", "an executable"),
    (b"\x00asm", "a WebAssembly module"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS", "an Ogg media file"),
    (b"fLaC", "a FLAC audio file"),
    (b"ID3", "an MP3 audio file"),
    (b"\x93NUMPY", "a numpy array file"),
]
_BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .psd .pdf .zip .gz .tgz .bz2 .xz .zst .7z .rar "
    ".tar .jar .whl .exe .dll .so .dylib .o .a .obj .class .pyc .pyo .bin .dat .npy .npz .pt .pth "
    ".safetensors .ckpt .onnx .pkl .pickle .db .sqlite .mp3 .mp4 .m4a .wav .flac .ogg .avi .mov "
    ".mkv .webm .woff .woff2 .ttf .otf .eot .doc .docx .xls .xlsx .ppt .pptx .odt .iso .img".split()
)


# ---------------------------------------------------------------------------------------------
# Corpus


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
        raise ConfigError(f"--val-fraction must be at least 0 and below 1, not {val_fraction}")
    return int(n_chars * val_fraction)


def check_trainable(corpus: Corpus | int, batch: int, seq_len: int, val_fraction: float) -> int:
    """Raise CorpusError unless each of ``batch`` streams gets >= 2 chars and validation >= 2; return the usable seq_len."""
    n = corpus if isinstance(corpus, int) else len(corpus)
    if batch < 1 or seq_len < 1:
        raise ConfigError(f"--batch and --seq-len must be 1 or more, not {batch} and {seq_len}")
    n_val = val_size(n, val_fraction)
    n_train = n - n_val
    if val_fraction > 0 and n_val < MIN_CHARS:
        need = int(np.ceil(MIN_CHARS / val_fraction))
        raise CorpusError(
            f"the corpus is too short: {n} characters leave {n_val} for validation at --val-fraction "
            f"{val_fraction}, and validation needs at least {MIN_CHARS}; use a corpus of at least "
            f"{need} characters or raise --val-fraction"
        )
    stream = n_train // batch
    if stream < MIN_CHARS:
        most = n_train // MIN_CHARS
        fix = f"lower --batch to {most} or fewer, or use a longer corpus" if most >= 1 else "use a longer corpus"
        raise CorpusError(
            f"the corpus is too short for --batch {batch}: its training split has {n_train} characters "
            f"and each of the {batch} streams needs at least {MIN_CHARS}; {fix}"
        )
    return min(seq_len, stream - 1)


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass
class _Source:
    label: str  # shown in messages
    path: Path | None  # absolute; None for stdin
    size: int
    spool: IO[bytes] | None = None  # stdin, copied so it can be read twice

    def open(self) -> IO[bytes]:
        if self.spool is not None:
            self.spool.seek(0)
            return _NoClose(self.spool)
        try:
            return open(self.path, "rb")  # noqa: SIM115 - closed by the caller
        except PermissionError:
            raise CorpusError(f"cannot read {self.label}: permission denied; check the file's permissions") from None
        except OSError as e:
            raise CorpusError(f"cannot read {self.label}: {e.strerror or e}") from None


class _NoClose:
    def __init__(self, f: IO[bytes]):
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _stat(path: Path, label: str) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise CorpusError(f"{label} does not exist; check the path") from None
    except PermissionError:
        raise CorpusError(f"cannot read {label}: permission denied; check its permissions") from None
    except OSError as e:
        raise CorpusError(f"cannot read {label}: {e.strerror or e}") from None


def _sniff_binary(head: bytes, wide: bool) -> str | None:
    """What binary thing ``head`` (a file's first bytes) looks like, or None for text."""
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return what
    if not wide and b"\x00" in head:
        return "binary data (it contains NUL bytes)"
    return None


def _guess_wide(head: bytes) -> str | None:
    """'utf-16-le' and the like when NUL bytes fall where UTF-16/32 puts them for ASCII-range text."""
    a = np.frombuffer(head[: len(head) // 4 * 4], dtype=np.uint8)
    if a.size < 8:
        return None
    zero = a.reshape(-1, 4) == 0
    share = zero.mean(axis=0)  # how often each byte position within 4 is NUL
    if share[1:].min() > 0.9 and share[0] < 0.1:
        return "utf-32-le"
    if share[:3].min() > 0.9 and share[3] < 0.1:
        return "utf-32-be"
    if min(share[1], share[3]) > 0.6 and max(share[0], share[2]) < 0.1:
        return "utf-16-le"
    if min(share[0], share[2]) > 0.6 and max(share[1], share[3]) < 0.1:
        return "utf-16-be"
    return None


def _is_wide(encoding: str) -> bool:
    name = codecs.lookup(encoding).name
    return name.startswith("utf-16") or name.startswith("utf-32")


def _read_head(path: Path, label: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except PermissionError:
        raise CorpusError(f"cannot read {label}: permission denied; check the file's permissions") from None
    except OSError as e:
        raise CorpusError(f"cannot read {label}: {e.strerror or e}") from None


def _expand(paths: Sequence[str | Path], wide: bool) -> tuple[list[_Source], list[str]]:
    sources: list[_Source] = []
    skipped: list[str] = []
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise CorpusError("no corpus given; pass a text file, several files, a directory, or - for stdin")
    for p in paths:
        if str(p) == "-":
            sources.append(_stdin_source())
            continue
        path = Path(p).expanduser()
        label = str(p)
        st = _stat(path, label)
        if stat.S_ISDIR(st.st_mode):
            found, skip = _walk(path, label, wide)
            skipped.extend(skip)
            if not found:
                why = f" ({len(skip)} binary or hidden file(s) skipped)" if skip else ""
                raise CorpusError(f"directory {label} contains no text files{why}; point at text files instead")
            sources.extend(found)
        elif stat.S_ISREG(st.st_mode):
            sources.append(_Source(label, path.resolve(), st.st_size))
        else:
            raise CorpusError(
                f"{label} is {_kind(st.st_mode)}, which cannot be read as a corpus; "
                "pass a regular file, or pipe the data in with - for stdin"
            )
    return sources, skipped


def _walk(root: Path, label: str, wide: bool) -> tuple[list[_Source], list[str]]:
    found: list[tuple[str, _Source]] = []
    skipped: list[str] = []

    def onerror(e: OSError) -> None:
        raise CorpusError(f"cannot read directory {e.filename}: {e.strerror}; check its permissions")

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if name.startswith("."):
                continue
            shown = f"{label.rstrip('/')}/{rel}"
            try:
                st = full.stat()
            except OSError:
                skipped.append(rel)
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(rel)
                continue
            if full.suffix.lower() in _BINARY_SUFFIXES or _sniff_binary(_read_head(full, shown), wide):
                skipped.append(rel)
                continue
            found.append((rel, _Source(shown, full.resolve(), st.st_size)))
    found.sort(key=lambda t: t[0])
    return [s for _, s in found], sorted(skipped)


def _stdin_source() -> _Source:
    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # noqa: SIM115 - lives with the source
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise CorpusError("standard input is not available; pass a file instead of -")
    size = 0
    while block := stream.read(1 << 20):
        spool.write(block)
        size += len(block)
    return _Source("<stdin>", None, size, spool=spool)


# ---------------------------------------------------------------------------------------------
# Reading and cleaning, chunk by chunk


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


class _Progress:
    def __init__(self, fn: ProgressFn | None, total: int):
        self.fn, self.total, self.last = fn, total, 0.0

    def __call__(self, stage: str, done: int, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.fn(stage, min(done, self.total), self.total)


def _decode_error(src: _Source, encoding: str, e: UnicodeDecodeError, offset: int) -> CorpusError:
    bad = e.object[e.start : e.start + 1]
    byte = f" (byte 0x{bad[0]:02X})" if bad else ""
    if codecs.lookup(encoding).name == "utf-8":
        hint = "if it is Latin-1 text, use --encoding latin-1 (or cp1252, or the file's real encoding)"
    else:
        hint = "pass the file's real encoding with --encoding"
    if e.reason == "unexpected end of data":
        byte += ", at the very end: the file may be truncated"
    return CorpusError(f"{src.label} is not valid {encoding} at byte offset {offset}{byte}; {hint}")


def _check_bom(src: _Source, head: bytes, encoding: str) -> None:
    name = codecs.lookup(encoding).name
    if name.startswith("utf-16") or name.startswith("utf-32"):
        return
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise CorpusError(f"{src.label} is UTF-32 (it starts with a UTF-32 byte-order mark); use --encoding utf-32")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CorpusError(f"{src.label} is UTF-16 (it starts with a UTF-16 byte-order mark); use --encoding utf-16")


def _iter_source(
    src: _Source, clean: Cleaner, chunk_bytes: int, on_raw: Callable[[bytes], None]
) -> Iterator[bytes | np.ndarray]:
    """Yield the cleaned pieces of one source, chunk by chunk."""
    encoding = clean.c.encoding
    wide = _is_wide(encoding)
    utf8 = codecs.lookup(encoding).name == "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    pending = b""  # raw bytes after the last newline of the chunk read last
    read = 0  # raw bytes read so far
    fed = 0  # raw bytes handed to the decoder so far (a dropped BOM counts)
    chars = 0  # decoded characters so far (for NUL positions in wide encodings)
    carry = ""  # decoded text held back until the next chunk shows how it continues
    with src.open() as f:
        while True:
            want = chunk_bytes if read else max(chunk_bytes, 4)  # the first read sees any BOM whole
            try:
                raw = f.read(want)
            except OSError as e:
                raise CorpusError(f"cannot read {src.label}: {e.strerror or e}; check the file and its disk") from None
            final = len(raw) < want
            if read == 0:
                if not raw:
                    return
                _check_bom(src, raw[:4], encoding)
                what = _sniff_binary(raw[:SNIFF_BYTES], wide)
                if what and not what.startswith("binary data"):
                    raise CorpusError(f"{src.label} is {what}, not text; pass a text file")
            if raw:
                on_raw(raw)
                if not wide:
                    nul = raw.find(b"\x00")
                    if nul >= 0:
                        guess = _guess_wide(raw[:SNIFF_BYTES]) if read == 0 else None
                        if guess:
                            raise CorpusError(
                                f"{src.label} looks like {guess.upper()} text without a byte-order mark; "
                                f"use --encoding {guess}"
                            )
                        raise CorpusError(
                            f"{src.label} looks binary: it has a NUL byte at offset {read + nul}; pass a text file"
                        )
            if read == 0 and utf8 and raw.startswith(codecs.BOM_UTF8):
                raw, fed = raw[3:], 3
                read = 3
            read += len(raw)
            # Hand the decoder whole lines where possible: text that ends with a newline can be
            # cleaned on its own, with no cutting and copying of the decoded string.
            k = raw.rfind(b"\n") if not final and not wide else -1
            if k >= 0:  # pending holds no newline, so this is the last one; one copy at most
                whole = not pending and k + 1 == len(raw)
                data = raw if whole else b"".join((pending, memoryview(raw)[: k + 1]))
                pending = raw[k + 1 :]
            else:
                data, pending = pending + raw, b""
            # Whole lines of UTF-8 with nothing held back are cleaned as bytes, without a decode.
            if utf8 and not carry and (final or data.endswith(b"\n")) and decoder.getstate()[0] == b"":
                piece = clean.utf8(data)
                if piece is not None:
                    fed += len(data)
                    if piece:
                        yield piece
                    if final:
                        return
                    continue
            try:
                state = decoder.getstate()
                buffered = len(state[0]) if isinstance(state, tuple) and isinstance(state[0], bytes) else 0
            except Exception:  # noqa: BLE001 - only used to locate a decoding error
                buffered = 0
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as e:
                raise _decode_error(src, encoding, e, fed - buffered + e.start) from None
            fed += len(data)
            if wide:
                nul = text.find("\x00")
                if nul >= 0:
                    raise CorpusError(
                        f"{src.label} looks binary: it has a NUL character at character {chars + nul}; pass a text file"
                    )
            chars += len(text)
            s = carry + text if carry else text
            hold = ""
            if not final and s.endswith("\r"):
                s, hold = s[:-1], "\r"  # its LF may start the next chunk
            s = normalise_newlines(s)
            if final or s.endswith("\n"):
                # after a newline is a safe place to cut: see safe_cut
                piece, carry = s, hold
            else:
                cut = safe_cut(s)
                if cut is None:
                    carry = s + hold
                    continue
                piece, carry = s[:cut], s[cut:] + hold
            if piece:
                yield clean(piece)
            if final:
                return


def _iter_corpus(
    sources: list[_Source], clean: Cleaner, chunk_bytes: int, on_raw: Callable[[int, bytes], None]
) -> Iterator[bytes | np.ndarray]:
    """Yield cleaned pieces of all sources, adding a newline between files where missing."""
    last = None
    for i, src in enumerate(sources):
        if last is not None and last != 10:
            clean.last_counts = None  # they were the previous piece's
            yield b"\n"
            last = 10
        for piece in _iter_source(src, clean, chunk_bytes, lambda raw, i=i: on_raw(i, raw)):
            if len(piece):
                last = int(piece[-1])
                yield piece


# ---------------------------------------------------------------------------------------------
# Vocabulary from counts, and the lookup table used to encode


class _Tally:
    """Counts characters; when no counts are needed, only which characters occur (much faster)."""

    def __init__(self, need_counts: bool):
        self.counts = np.zeros(MAX_CODEPOINT, dtype=np.int64)  # presence mode: > 0 where seen
        self.need_counts = need_counts
        self.seen_low = b""  # presence mode: the characters below U+0100 seen so far
        self.n = 0

    def add(self, piece: bytes | np.ndarray, counts: np.ndarray | None = None) -> None:
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


def _plan_vocab(
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
                "use --extend-vocab to add them, or --min-char-count to map rare ones to the unknown symbol"
            )
        if new:
            vocab = Vocab(vocab.chars + new)
    lut = np.zeros(MAX_CODEPOINT, dtype=vocab.dtype)
    if common.size:
        lut[common] = vocab.encode_codepoints(common.astype(np.uint32))
    if rare.size:
        lut[rare] = vocab.index(UNKNOWN_CHAR)
    return vocab, lut


class _Encoder:
    """Maps pieces to ids through a code point -> id table (bytes.translate for byte pieces)."""

    def __init__(self, lut: np.ndarray, extra: Sequence[int] = ()):
        self.lut = lut
        self.low = lut[:256].copy()
        for k, cp in enumerate(extra):  # the wider characters byte pieces hold as 0x80 + k
            self.low[EXTRA_BASE + k] = lut[cp]
        self.table = self.low.tobytes() if lut.dtype == np.uint8 else None

    def __call__(self, piece: bytes | np.ndarray) -> np.ndarray:
        if isinstance(piece, BYTE_PIECES):
            if self.table is not None:
                return np.frombuffer(piece.translate(self.table), dtype=np.uint8)
            return self.low[np.frombuffer(piece, dtype=np.uint8)]
        return self.lut[piece]


# ---------------------------------------------------------------------------------------------
# Cache


def default_cache_dir() -> Path:
    """$LSTMTUI_CACHE if set, else the platform's user cache directory for lstmtui."""
    env = os.environ.get("LSTMTUI_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lstmtui"))


def _cache_key(file_hashes: list[str], c: CleaningOptions, vocab: Vocab | None, extend_vocab: bool) -> str:
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


def _stat_key(src: _Source) -> str | None:
    if src.path is None:
        return None
    try:
        st = src.path.stat()
    except OSError:
        return None
    return f"{src.path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"


class _HashIndex:
    """Remembers each large file's sha256 by (path, size, mtime, inode), so a re-run need not re-hash."""

    def __init__(self, directory: Path):
        self.path = directory / "hashes.json"
        try:
            self.data = json.loads(self.path.read_text("utf-8"))
            if not isinstance(self.data, dict):
                self.data = {}
        except (OSError, ValueError):
            self.data = {}

    def get(self, src: _Source) -> str | None:
        key = _stat_key(src)
        value = self.data.get(key) if key else None
        return value if isinstance(value, str) else None

    def put(self, src: _Source, digest: str) -> None:
        key = _stat_key(src)
        if key:
            prefix = f"{src.path}|"  # one entry per path: forget the file's older versions
            for old in [k for k in self.data if k.startswith(prefix)]:
                del self.data[old]
            self.data[key] = digest

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(self.path, json.dumps(self.data, indent=0).encode())
        except OSError:
            pass  # only an optimisation


def _load_cached(directory: Path, key: str) -> tuple[np.ndarray, Vocab, dict] | None:
    meta_path, data_path = directory / f"{key}.json", directory / f"{key}.npy"
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
        vocab = Vocab.from_list(meta["vocab"])
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError, VocabularyError):
        return None
    if data.ndim != 1 or data.shape[0] != meta.get("n_chars") or data.dtype != vocab.dtype:
        return None
    return data, vocab, meta


STALE_TMP_S = 24 * 3600


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


class _Spool:
    """Cleaned pieces on disk between the passes: a kind byte (1, 2 or 4 bytes a char), a length, the data."""

    def __init__(self, path: Path):
        self.path = path
        self.f: IO[bytes] | None = open(path, "w+b")  # noqa: SIM115 - closed by close()
        self.behind = _WriteBehind(self.f)
        self.ok = True

    @classmethod
    def create(cls, directory: Path) -> "_Spool | None":
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _sweep(directory)
            return cls(directory / f".spool.{os.getpid()}.{id(directory):x}.tmp")
        except OSError:
            return None

    def write(self, piece: bytes | np.ndarray, counts: np.ndarray | None) -> None:
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

    def read(self, on_progress: Callable[[int], None]) -> Iterator[bytes | np.ndarray]:
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
        self.f = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort
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
        self.behind.close()
        self.f.close()
        self.tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# load_corpus


def load_corpus(
    paths: Sequence[str | Path],
    cleaning: CleaningOptions = CleaningOptions(),
    *,
    vocab: Vocab | None = None,
    extend_vocab: bool = False,
    progress: ProgressFn | None = None,
    cache_dir: Path | None = None,
    chunk_bytes: int | None = None,
) -> Corpus:
    """Read, clean and encode a corpus (files, a directory, or '-' for stdin); see the module docstring."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    wide = _is_wide(cleaning.encoding)
    sources, skipped = _expand(paths, wide)
    total = sum(s.size for s in sources)
    tick = _Progress(progress, total)
    use_cache = total >= CACHE_MIN_BYTES and all(s.path is not None for s in sources)
    cdir = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "corpora"
    index = _HashIndex(cdir) if use_cache else None

    # A cache hit needs no read at all when every file's hash is remembered by its stat.
    if index is not None:
        known = [index.get(s) for s in sources]
        if all(known):
            hit = _load_cached(cdir, _cache_key(known, cleaning, vocab, extend_vocab))
            if hit is not None:
                tick("cache", total, force=True)
                return _finish(hit[0], hit[1], sources, skipped, known, cleaning)

    # Pass 1: hash, decode, clean and count. Hashing runs in a thread (hashlib releases the GIL).
    # A large corpus's cleaned text is spooled to disk, so pass 2 need not decode and clean again.
    hasher = _Hasher(len(sources))
    tally = _Tally(need_counts=cleaning.min_char_count > 0)
    cleaner = Cleaner(cleaning)
    keep: list[bytes | np.ndarray] | None = [] if total <= 2 * chunk_bytes or not use_cache else None
    with contextlib.ExitStack() as cleanup:
        spool = _Spool.create(cdir) if keep is None else None
        if spool is not None:
            cleanup.callback(spool.close)
        done = 0

        def on_raw(i: int, raw: bytes) -> None:
            nonlocal done
            hasher.update(i, raw)
            done += len(raw)
            tick("reading", done)

        tick("reading", 0, force=True)
        try:
            for piece in _iter_corpus(sources, cleaner, chunk_bytes, on_raw):
                tally.add(piece, cleaner.last_counts)
                if keep is not None:
                    keep.append(piece)
                elif spool is not None:
                    spool.write(piece, cleaner.last_counts)
        finally:
            file_hashes = hasher.finish()
            if spool is not None:
                spool.drain()
        n_chars = tally.n
        tick("reading", total, force=True)
        _check_size(n_chars, sources)
        chosen, lut = _plan_vocab(tally.fold(cleaner.extra), cleaning, vocab, extend_vocab)
        if len(chosen) < 2 and vocab is None:
            raise CorpusError(
                f"the corpus uses only one distinct character ({chosen.chars[0]!r}); "
                "a model needs text with at least two"
            )

        def pieces() -> Iterable[bytes | np.ndarray]:
            """Pass 2's input: the pieces kept in memory, spooled, or read and cleaned again."""
            if keep is not None:
                return keep
            if spool is not None and spool.ok:
                return spool.read(lambda done: tick("encoding", int(total * done / max(n_chars, 1))))
            # skips the checks pass 1 found needless; byte pieces must mean what they meant then
            again = Cleaner(cleaning, trusted=not cleaner.dirty, extra=cleaner.extra)
            return _iter_corpus(sources, again, chunk_bytes, _done_counter(tick, total))

        if index is not None:
            for src, digest in zip(sources, file_hashes):
                index.put(src, digest)
            index.save()
            key = _cache_key(file_hashes, cleaning, vocab, extend_vocab)
            hit = _load_cached(cdir, key)
            if hit is not None:
                tick("cache", total, force=True)
                return _finish(hit[0], hit[1], sources, skipped, file_hashes, cleaning)
            data = _encode_to_cache(cdir, key, sources, cleaning, pieces, lut, cleaner.extra, chosen, n_chars, tick, total)
            if data is not None:
                return _finish(data, chosen, sources, skipped, file_hashes, cleaning)

        # In memory: small corpora, stdin, or a cache that could not be written.
        out = np.empty(n_chars, dtype=chosen.dtype)
        pos = 0
        extra = cleaner.extra
        encode = _Encoder(lut, extra)
        for piece in pieces():
            if pos + len(piece) > n_chars:
                raise CorpusError(f"{_names(sources)} changed while being read; try again")
            out[pos : pos + len(piece)] = encode(piece)
            pos += len(piece)
        if pos != n_chars:
            raise CorpusError(f"{_names(sources)} changed while being read; try again")
        tick("encoding", total, force=True)
        return _finish(out, chosen, sources, skipped, file_hashes, cleaning)


def _done_counter(tick: _Progress, total: int) -> Callable[[int, bytes], None]:
    done = 0

    def on_raw(_i: int, raw: bytes) -> None:
        nonlocal done
        done += len(raw)
        tick("encoding", done)

    return on_raw


def _names(sources: list[_Source]) -> str:
    if len(sources) == 1:
        return sources[0].label
    return f"the {len(sources)} corpus files"


def _check_size(n_chars: int, sources: list[_Source]) -> None:
    if n_chars == 0:
        if all(s.size == 0 for s in sources):
            raise CorpusError(f"{_names(sources)} {'is' if len(sources) == 1 else 'are'} empty; pass a file with text in it")
        raise CorpusError(f"{_names(sources)} hold no text after cleaning (only control characters); pass a text file")
    if n_chars < MIN_CHARS:
        raise CorpusError(
            f"the corpus has only {n_chars} character; a model needs at least {MIN_CHARS} (and far more to learn anything)"
        )


def _encode_to_cache(
    cdir: Path,
    key: str,
    sources: list[_Source],
    cleaning: CleaningOptions,
    pieces: Callable[[], Iterable[bytes | np.ndarray]],
    lut: np.ndarray,
    extra: Sequence[int],
    vocab: Vocab,
    n_chars: int,
    tick: _Progress,
    total: int,
) -> np.ndarray | None:
    """Encode into ``cdir/key.npy`` atomically and return it memory-mapped; None if it cannot be written."""
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        writer = _NpyWriter(cdir / f"{key}.npy", vocab.dtype, n_chars)
    except OSError:
        return None
    try:
        written = 0
        encode = _Encoder(lut, extra)
        for piece in pieces():
            writer.write(encode(piece))
            written += len(piece)
        if written != n_chars:  # a file changed between the passes
            raise CorpusError(f"{_names(sources)} changed while being read; try again")
        writer.finish()
        meta = {"format": CACHE_FORMAT, "n_chars": n_chars, "vocab": vocab.to_list(), "cleaning": cleaning.to_dict()}
        _atomic_write_bytes(cdir / f"{key}.json", json.dumps(meta, ensure_ascii=True).encode())
    except OSError:
        writer.abort()
        return None
    except BaseException:
        writer.abort()
        raise
    tick("encoding", total, force=True)
    return np.load(cdir / f"{key}.npy", mmap_mode="r", allow_pickle=False)


def _finish(
    data: np.ndarray, vocab: Vocab, sources: list[_Source], skipped: list[str], hashes: list[str], cleaning: CleaningOptions
) -> Corpus:
    if len(hashes) == 1:
        digest = hashes[0]
    else:  # several files: the hash of their hashes, in order
        digest = hashlib.sha256("".join(hashes).encode()).hexdigest()
    if data.flags.writeable:
        data.flags.writeable = False  # memory-mapped caches are read-only; keep both kinds alike
    provenance = {
        "paths": [str(s.path) if s.path is not None else "-" for s in sources],
        "size_bytes": int(sum(s.size for s in sources)),
        "n_chars": int(data.shape[0]),
        "sha256": digest,
        "file_sha256": list(hashes),
        "cleaning": cleaning.describe(),
        "vocab_size": len(vocab),
    }
    if skipped:
        provenance["skipped"] = skipped
    return Corpus(data=data, vocab=vocab, provenance=provenance)


def default_corpus_path() -> Path:
    """The bundled English prose sample corpus (used when lstmtui gets no corpus argument)."""
    packaged = Path(__file__).resolve().parent.parent / "sample_data" / "prose.txt"
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "sample_corpora" / "prose.txt"
