"""Finding a corpus's sources (files, directories, standard input) and sniffing binary or UTF-16/32 data.

A directory is searched recursively and its files are taken in sorted order of their relative
paths. In a directory, hidden entries (names starting with ``.``), files with a known binary
extension (images, archives, compiled code...) and files that sniff as binary (a known magic
number or a NUL byte in their first ``SNIFF_BYTES``) are skipped and listed; a file named
explicitly is never skipped (``decode`` refuses it if it is binary). Anything that is not a regular
file (a FIFO, a device) is refused without being opened, so nothing blocks. Directories are walked
without following symbolic links to directories (links to files are read). Standard input is
copied to a temporary file first, so it can be read twice.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from lstmtui.core.errors import CorpusError

# Raw bytes read at a time (tests lower it to exercise chunk boundaries); larger chunks are slower
# and peak higher in memory.
CHUNK_BYTES = 4 << 20
SNIFF_BYTES = 8192

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
_WIDE_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)  # UTF-32-LE's starts like UTF-16-LE's
_BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .psd .pdf .zip .gz .tgz .bz2 .xz .zst .7z .rar "
    ".tar .jar .whl .exe .dll .so .dylib .o .a .obj .class .pyc .pyo .bin .dat .npy .npz .pt .pth "
    ".safetensors .ckpt .onnx .pkl .pickle .db .sqlite .mp3 .mp4 .m4a .wav .flac .ogg .avi .mov "
    ".mkv .webm .woff .woff2 .ttf .otf .eot .doc .docx .xls .xlsx .ppt .pptx .odt .iso .img".split()
)


@dataclass
class Source:
    """One input of a corpus: a regular file, or standard input spooled to a temporary file."""

    label: str  # shown in messages
    path: Path | None  # absolute; None for stdin
    size: int
    spool: IO[bytes] | None = None  # stdin, copied so it can be read twice

    def open(self) -> IO[bytes]:
        """Open for reading from the start; CorpusError if the file cannot be read."""
        if self.spool is not None:
            self.spool.seek(0)
            return _NoClose(self.spool)
        try:
            return open(self.path, "rb")  # the caller closes it
        except PermissionError:
            raise CorpusError(f"cannot read {self.label}: permission denied; check the file's permissions") from None
        except OSError as e:
            raise CorpusError(f"cannot read {self.label}: {e.strerror or e}") from None


class _NoClose:
    """A spooled stdin opened again: closing it must keep the spool for the next read."""

    def __init__(self, f: IO[bytes]):
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def names(sources: list[Source]) -> str:
    """How messages name the corpus: its one file's label, or how many files it has."""
    if len(sources) == 1:
        return sources[0].label
    return f"the {len(sources)} corpus files"


def is_wide(encoding: str) -> bool:
    """Whether ``encoding`` is UTF-16 or UTF-32, where NUL bytes are part of ordinary text."""
    name = codecs.lookup(encoding).name
    return name.startswith("utf-16") or name.startswith("utf-32")


def sniff_binary(head: bytes, wide: bool) -> str | None:
    """What binary thing ``head`` (a file's first bytes) looks like, or None for text."""
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            return what
    if not wide and b"\x00" in head:
        return "binary data (it contains NUL bytes)"
    return None


def guess_wide(head: bytes) -> str | None:
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


def expand(paths: Sequence[str | Path], wide: bool | None) -> tuple[list[Source], list[str]]:
    """The sources that ``paths`` name, in order, and the directory entries skipped as binary or hidden.

    ``wide``: the encoding is UTF-16 or UTF-32, so NUL bytes are text; None when the encoding is
    detected later, so a directory keeps the files whose NUL bytes are UTF-16/32 text.
    """
    sources: list[Source] = []
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
            sources.append(Source(label, path.resolve(), st.st_size))
        else:
            raise CorpusError(
                f"{label} is {_kind(st.st_mode)}, which cannot be read as a corpus; "
                "pass a regular file, or pipe the data in with - for stdin"
            )
    return sources, skipped


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


def _read_head(path: Path, label: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    except PermissionError:
        raise CorpusError(f"cannot read {label}: permission denied; check the file's permissions") from None
    except OSError as e:
        raise CorpusError(f"cannot read {label}: {e.strerror or e}") from None


def _walk(root: Path, label: str, wide: bool | None) -> tuple[list[Source], list[str]]:
    found: list[tuple[str, Source]] = []
    skipped: list[str] = []

    def onerror(e: OSError) -> None:
        raise CorpusError(f"cannot read directory {e.filename}: {e.strerror}; check its permissions")

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            size = _text_file_size(full, f"{label.rstrip('/')}/{rel}", wide)
            if size is None:
                skipped.append(rel)
            else:
                found.append((rel, Source(f"{label.rstrip('/')}/{rel}", full.resolve(), size)))
    found.sort(key=lambda t: t[0])
    return [s for _, s in found], sorted(skipped)


def _text_file_size(full: Path, shown: str, wide: bool | None) -> int | None:
    """The size of a directory entry that is a regular text file; None to skip it."""
    try:
        st = full.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or full.suffix.lower() in _BINARY_SUFFIXES:
        return None
    head = _read_head(full, shown)
    if wide is None:  # the encoding is detected later: NUL bytes are text where UTF-16/32 puts them
        wide = head.startswith(_WIDE_BOMS) or guess_wide(head) is not None
    if sniff_binary(head, wide):
        return None
    return st.st_size


def _stdin_source() -> Source:
    spool = tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES)  # lives as long as the source
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise CorpusError("standard input is not available; pass a file instead of -")
    size = 0
    while block := stream.read(1 << 20):
        spool.write(block)
        size += len(block)
    return Source("<stdin>", None, size, spool=spool)


def default_corpus_path() -> Path:
    """The bundled English prose sample corpus (used when lstmtui gets no corpus argument)."""
    package = Path(__file__).resolve().parents[2]  # lstmtui/
    packaged = package / "sample_data" / "prose.txt"
    if packaged.is_file():
        return packaged
    return package.parent / "sample_corpora" / "prose.txt"
