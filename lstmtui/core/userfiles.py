"""Files a user names (a prime, an output, a log, a key file): read only regular files, never block, never grow.

Reading: only a regular file is read, and at most the bytes its user can take; a FIFO, a device
(``/dev/zero``), a socket or a directory is refused without being read, so nothing blocks and
nothing grows without bound. Writing: a regular file is created or replaced (or appended to), and
an existing FIFO or character device (a pipe from ``>(...)``, ``/dev/null``, a terminal) is
written to only if it is ready: a FIFO no process reads is refused instead of blocking the open.
A failed write is one ConfigError naming the option and the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import IO

from lstmtui.core.errors import ConfigError


def kind_of(mode: int) -> str:
    """What a file is, as a message names it ('a FIFO', 'a character device', ...)."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def reason(exc: OSError) -> str:
    """An OSError's reason in a few words."""
    return exc.strerror or str(exc) or type(exc).__name__


def read_regular(path: Path | str, what: str, limit: int, missing: bytes | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; ConfigError '<what> <path> ...' otherwise.

    ``missing``: returned when the file does not exist (default: that is an error too).
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO's open must not wait for a writer
    except FileNotFoundError:
        if missing is not None:
            return missing
        raise ConfigError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {reason(exc)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what} {path} is {kind_of(st.st_mode)}, not a regular file")
        too_large = f"{what} {path} is too large (over {limit:,} bytes)"
        if st.st_size > limit:
            raise ConfigError(too_large)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            raise ConfigError(too_large)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {reason(exc)}") from None
    finally:
        os.close(fd)


def check_output(path: Path | str, what: str) -> None:
    """Refuse, before any work, an output path that open_output would refuse for what it is (a directory...)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise ConfigError(f"{what} {path}: no such directory {path.parent}") from None
        return
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {reason(exc)}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        raise ConfigError(f"{what} {path} is {kind_of(mode)}; give a file to write")


def open_output(path: Path | str, what: str, append: bool = False) -> IO[str]:
    """``path`` opened for writing UTF-8 text; write errors become ConfigError '<what> <path>: ...'."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise ConfigError(f"{what} {path} is a FIFO that no process reads") from None
        raise ConfigError(f"{what} {path}: {reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
            raise ConfigError(f"{what} {path} is {kind_of(mode)}; give a file to write")
        if stat.S_ISREG(mode) and not append:
            os.ftruncate(fd, 0)  # after the checks: nothing is truncated that is then refused
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except ConfigError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"{what} {path}: {reason(exc)}") from None
    return OutputFile(os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape"), f"{what} {path}")


class OutputFile:
    """A text file whose write, flush and close failures (a full disk) are one ConfigError naming it."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self._stream = stream
        self.label = label

    def _failed(self, exc: OSError) -> ConfigError:
        return ConfigError(f"{self.label}: cannot write ({reason(exc)})")

    def write(self, text: str) -> int:
        """Write text (buffered)."""
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        """Flush the buffer to the file."""
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        """Flush and close (a close never raises twice for one failure)."""
        if self._stream.closed:
            return
        try:
            self._stream.close()
        except OSError as exc:
            raise self._failed(exc) from None

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._stream.closed

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
