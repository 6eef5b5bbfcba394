"""ProfileLock: one writer per profile, across processes, by flock on HOME/profiles/.NAME.lock."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from lstmtui.core.errors import ProfileError, ProfileLockedError
from lstmtui.core.profiles.fileio import os_reason


class ProfileLock:
    """An exclusive lock on a profile, held inside ``with``; ProfileLockedError at once if another holds it.

    The lock file holds the holder's pid and host, which only make the "in use by" message
    helpful. It stays while the profile exists; released when there is no profile (a failed first
    save or import, a removal), it is deleted while still held. A taker therefore checks, once it
    holds the flock, that the file it locked is still the one at the path, and opens it again if not.
    """

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.path = root / f".{name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> ProfileLock:
        if self._fd is not None:
            raise RuntimeError(f"the lock on profile {self.name} is already held by this object")
        for _ in range(100):
            fd = self._try_lock()
            if fd is not None:
                self._fd = fd
                _note_holder(fd)
                return self
        raise ProfileError(f"could not lock profile {self.name}: its lock file keeps being replaced")

    def _try_lock(self) -> int | None:
        """The locked descriptor, or None when the file was deleted or replaced before the flock was taken."""
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ProfileError(f"could not lock profile {self.name}: {os_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ProfileError(f"could not lock profile {self.name}: {os_reason(exc)}") from None
            raise ProfileLockedError(
                f"profile {self.name} is in use by {holder}; close it there first or use another profile name"
            ) from None
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is None or (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            os.close(fd)  # its holder deleted it on release: lock the file that is there now
            return None
        return fd

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def release(self) -> None:
        """Drop the lock (closing the file drops the flock), deleting the file first if no profile exists."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if not os.path.lexists(self.root / self.name):
            try:
                os.unlink(self.path)  # while still held: a waiting taker sees its file gone and opens anew
            except OSError:
                pass
        os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None


def _note_holder(fd: int) -> None:
    holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
    except OSError:
        pass  # the holder note is a courtesy for the error message; the flock is the lock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"process {int(info['pid'])} on {str(info['host'])[:64]}"
    except Exception:  # the note may be half-written or absent; the lock itself is what matters
        return "another process"
