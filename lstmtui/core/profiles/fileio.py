"""The file operations profiles are built from: durable writes, checked reads, version directories."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles.jsonfields import first_line
from lstmtui.core.profiles.parts import FileEntry
from lstmtui.core.profiles.tensorfiles import TensorEntry, read_header
from lstmtui.core.userfiles import kind_of

VERSION_RE = re.compile(r"v(\d{6,12})")
CHUNK = 1 << 20


def os_reason(exc: OSError) -> str:
    """An OSError as a short reason naming the file, for one-line messages."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason


def versions(pdir: Path) -> list[tuple[int, Path]]:
    """Complete version directories of a profile, oldest first ([] if none or no profile)."""
    try:
        entries = list(os.scandir(pdir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ProfileError(f"profile {pdir.name}: cannot read its directory: {os_reason(exc)}") from None
    found = []
    for entry in entries:
        m = VERSION_RE.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False):
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def write_bytes(path: Path, data: bytes) -> None:
    """Create path with data and fsync it; O_EXCL because a staged file is always new."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def carry(src: Path, dest: Path) -> None:
    """Reuse an unchanged group file: a hard link (files are never modified), else a copy."""
    try:
        os.link(src, dest)
    except FileNotFoundError:
        raise
    except OSError:
        with open(src, "rb") as f:
            write_bytes(dest, f.read())


def open_regular(label: str, path: Path, kind: bool = False) -> BinaryIO:
    """Open a file for reading only if it is a regular file (a FIFO or device would hang or never end).

    The refusal reads '<label>: NAME is not a regular file', or with ``kind`` '<label>: it is a FIFO, ...'.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if kind:
            raise ProfileError(f"{label}: it is {kind_of(mode)}, not a regular file")
        raise ProfileError(f"{label}: {path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _open_checked(label: str, path: Path, entry: FileEntry) -> Iterator[tuple[BinaryIO, int]]:
    """A group file opened for reading, (file, size), once its real size is the one its record states;
    a missing or unreadable file (in the body too) becomes a one-line ProfileError."""
    try:
        with open_regular(label, path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != entry.size:
                raise ProfileError(
                    f"{label}: {path.name} is truncated or altered ({size} bytes, expected {entry.size})"
                )
            yield f, size
    except FileNotFoundError:
        if path.parent.is_dir():
            raise ProfileError(f"{label}: {path.name} is missing") from None
        raise  # the whole version was replaced meanwhile: the caller looks again
    except OSError as exc:
        raise ProfileError(f"{label}: cannot read {path.name}: {os_reason(exc)}") from None


def verify_file(label: str, path: Path, entry: FileEntry) -> None:
    """Check a group file's size and sha256 before anything parses it."""
    digest = hashlib.sha256()
    with _open_checked(label, path, entry) as (f, _size):
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != entry.sha256:
        raise ProfileError(f"{label}: {path.name} is corrupt (its checksum does not match)")


def tensor_header(label: str, path: Path, entry: FileEntry) -> dict[str, TensorEntry]:
    """A group file's tensor list from its header, after checking its real size; no tensor data is read."""
    with _open_checked(label, path, entry) as (f, size):
        return read_header(f, size, label, path.name)


def check_safetensors_header(label: str, path: Path) -> None:
    """Refuse a file whose safetensors header does not parse."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            list(f.keys())
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise ProfileError(f"{label}: {path.name} is not a valid safetensors file ({first_line(exc)})") from None


def unlink_quietly(path: Path) -> None:
    """Remove a file if it is there; a failure is harmless."""
    try:
        os.unlink(path)
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True
