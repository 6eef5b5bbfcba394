"""Where runs are found: a private per-user directory of run records, name locks and sockets.

Layout under the runs directory (``$LSTMTUI_RUNS``, else the platform's user state directory +
``/runs``, e.g. ``~/.local/state/lstmtui/runs``; mode 0700)::

    NAME.json   the run's record: name, pid, start time, profile, home, socket path, log path
    NAME.lock   flock'd by the serving process for as long as the run lives (the liveness proof)
    NAME.sock   the run's Unix socket (mode 0600), unless its path would be too long (below)

The runtime directory (``/run/user/UID``) is not used: systemd-logind deletes it when the user's
last session closes, which is exactly when a detached run must stay reachable. A Unix socket path
holds at most ``MAX_SOCKET_PATH`` bytes; when ``NAME.sock`` would be longer, the socket goes into a
private directory made by ``mkdtemp`` under ``/tmp`` (``/tmp/lstmtui-UID-XXXXXXXX/run.sock``) and
the record says where.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lstmtui.core.errors import LstmtuiError

RUNS_ENV = "LSTMTUI_RUNS"
# sun_path is 108 bytes on Linux and 104 on macOS, both with the terminating NUL.
MAX_SOCKET_PATH = 103
SHORT_ROOT = "/tmp"
SHORT_PREFIX = "lstmtui-"
SHORT_SOCKET = "run.sock"
MAX_RECORD_BYTES = 64 * 1024
RECORD_VERSION = 1
_SHORT_DIR_RE = re.compile(re.escape(SHORT_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")


class ServiceError(LstmtuiError):
    """A run cannot be served or reached (unsafe directory, no such run, no answer)."""


def runs_dir() -> Path:
    """The directory of run records: $LSTMTUI_RUNS, or the user state directory's ``runs``."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("lstmtui", appauthor=False)) / "runs"


def private_dir(path: Path, create: bool = True) -> Path:
    """``path`` as a directory only this user can enter (0700); ServiceError if it is unsafe.

    Refused: a symlink, something not a directory, or a directory owned by another user. A
    directory of ours that others may enter gets mode 0700.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ServiceError(f"cannot use the runs directory {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(info.st_mode):
        raise ServiceError(f"refusing the runs directory {path}: it is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise ServiceError(f"refusing the runs directory {path}: it is not a directory")
    if info.st_uid != os.getuid():
        raise ServiceError(f"refusing the runs directory {path}: it belongs to user id {info.st_uid}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path


def record_path(root: Path, name: str) -> Path:
    """The run's record file."""
    return root / f"{name}.json"


def lock_path(root: Path, name: str) -> Path:
    """The run's lock file, flock'd by its server."""
    return root / f"{name}.lock"


def socket_fits(path: Path | str) -> bool:
    """Whether a Unix socket can be bound at this path (its length in bytes)."""
    return len(os.fsencode(str(path))) <= MAX_SOCKET_PATH


def socket_path(root: Path, name: str) -> Path | None:
    """``NAME.sock`` in the runs directory, or None when that path is too long for a socket."""
    path = root / f"{name}.sock"
    return path if socket_fits(path) else None


def short_socket_path() -> Path:
    """A socket path in a new private directory under /tmp, short enough for any Unix."""
    directory = tempfile.mkdtemp(prefix=f"{SHORT_PREFIX}{os.getuid()}-", dir=SHORT_ROOT)
    return Path(directory) / SHORT_SOCKET


def is_short_socket(path: Path) -> bool:
    """Whether ``path`` is one of this user's fallback socket paths (safe to remove when stale)."""
    parent = path.parent
    match = _SHORT_DIR_RE.fullmatch(parent.name)
    return (
        path.name == SHORT_SOCKET
        and str(parent.parent) == SHORT_ROOT
        and match is not None
        and int(match.group(1)) == os.getuid()
    )


def remove_socket(path: Path | None) -> None:
    """Remove a socket file this user owns (and its fallback directory); anything else is left alone."""
    if path is None:
        return
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if stat.S_ISSOCK(info.st_mode) and info.st_uid == os.getuid():
            os.unlink(path)
    if is_short_socket(path):
        with contextlib.suppress(OSError):
            os.rmdir(path.parent)


@dataclass(frozen=True)
class RunRecord:
    """What the runs directory says about one run (read back, never trusted for deletion)."""

    name: str
    pid: int
    started: float  # seconds since the epoch
    profile: str | None
    home: str | None
    socket: str
    log: str | None
    host: str

    def to_dict(self) -> dict:
        """The record as written to NAME.json."""
        return {
            "v": RECORD_VERSION,
            "name": self.name,
            "pid": self.pid,
            "started": self.started,
            "profile": self.profile,
            "home": self.home,
            "socket": self.socket,
            "log": self.log,
            "host": self.host,
        }


def write_record(root: Path, record: RunRecord) -> Path:
    """Write NAME.json atomically (temp file, fsync, rename), mode 0600."""
    path = record_path(root, record.name)
    tmp = root / f".{record.name}.json.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    data = json.dumps(record.to_dict(), indent=1).encode("utf-8") + b"\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_record(root: Path, name: str) -> RunRecord | None:
    """The run's record, or None when it is missing, not ours, or not a record lstmtui wrote."""
    try:
        fd = os.open(record_path(root, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size > MAX_RECORD_BYTES:
            return None
        data = json.loads(os.read(fd, MAX_RECORD_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return _record_from(name, data)


def _record_from(name: str, data: object) -> RunRecord | None:
    if not isinstance(data, dict) or data.get("v") != RECORD_VERSION or data.get("name") != name:
        return None
    pid, started, sock = data.get("pid"), data.get("started"), data.get("socket")
    if not (isinstance(pid, int) and not isinstance(pid, bool) and pid > 0):
        return None
    if not isinstance(started, (int, float)) or isinstance(started, bool) or not isinstance(sock, str):
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return RunRecord(name, pid, float(started), text("profile"), text("home"), sock, text("log"), text("host") or "")


def run_names(root: Path) -> list[str]:
    """Names that have a record, lock or socket in the runs directory, sorted."""
    names = set()
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    for entry in entries:
        if entry.startswith("."):
            continue
        stem, dot, suffix = entry.rpartition(".")
        if dot and stem and suffix in ("json", "lock", "sock"):
            names.add(stem)
    return sorted(names)


class NameLock:
    """An exclusive flock on NAME.lock, held by a run's server while the run lives."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = lock_path(root, name)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        import fcntl  # POSIX only, like the Unix sockets this serves

        for _ in range(10):  # the file may be removed by a cleaner between open and flock: open it again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            if self._is_file(fd):
                self._fd = fd
                return True
            os.close(fd)
        return False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def same_file(self) -> bool:
        """Whether the lock file at the path is still the one held (a removed directory takes it away)."""
        return self._fd is not None and self._is_file(self._fd)

    def _is_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except OSError:
            return False

    def release(self, remove: bool = False) -> None:
        """Drop the lock; with ``remove``, delete the lock file first (while still holding it)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if remove and self._is_file(fd):  # never a newer holder's file that replaced ours
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(fd)


def remove_stale(root: Path, name: str) -> bool:
    """Remove a dead run's record, socket and lock; False (nothing touched) when its lock is held.

    The lock, not the pid in the record, decides: a live server holds it, and a dead process's
    flock is gone with it, whatever pid now exists.
    """
    lock = NameLock(root, name)
    try:
        if not lock.acquire():
            return False
    except OSError:
        return False
    try:
        record = read_record(root, name)
        with contextlib.suppress(OSError):
            os.unlink(record_path(root, name))
        remove_socket(root / f"{name}.sock")
        if record is not None and is_short_socket(Path(record.socket)):
            remove_socket(Path(record.socket))
    finally:
        lock.release(remove=True)
    return True
