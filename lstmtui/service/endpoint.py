"""A run's place in the runs directory: its claimed name, listening socket and record.

The endpoint keeps them true for as long as the run lives: ``check()`` re-creates a socket or
record that something removed (a clean-up of /tmp, a deleted directory), and ``forget()`` removes
both when the run ends. Peers are checked with SO_PEERCRED: only this user's processes get in.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from pathlib import Path

from lstmtui.service import paths
from lstmtui.service.paths import RunRecord, ServiceError

LISTEN_BACKLOG = 16


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end of a Unix socket, or None where SO_PEERCRED is missing."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    size = struct.calcsize("3i")
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
    return uid


def peer_allowed(sock: socket.socket, uid: int | None = None) -> bool:
    """Whether the peer runs as ``uid`` (default: this process's user).

    Where the platform has no SO_PEERCRED, the 0700 runs directory is what keeps others out.
    """
    try:
        peer = peer_uid(sock)
    except OSError:
        return False
    return peer is None or peer == (os.getuid() if uid is None else uid)


class Endpoint:
    """The run's name lock, listening socket (mode 0600) and record; see the module docstring."""

    def __init__(self, root: Path, name: str, info: dict) -> None:
        self.root = paths.private_dir(root)
        self.name, self._lock = claim(self.root, name)
        self.info = info  # profile, home, log, started: what the record adds to name, pid and socket
        self.listener: socket.socket | None = None
        self.socket_path: Path | None = None
        self.record: RunRecord | None = None
        self._ino: int | None = None
        try:
            self.bind()
            self.write_record()
        except BaseException:
            self.close()
            raise

    def bind(self) -> None:
        """Listen on a new socket at the run's path (a short fallback path when that is too long)."""
        path = paths.socket_path(self.root, self.name)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # ours: the name's lock is held, so whatever is there is stale
        else:
            path = paths.short_socket_path()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)  # the directory is private already; this keeps the socket so if moved
            listener.listen(LISTEN_BACKLOG)
            listener.setblocking(False)
            ino = os.stat(path).st_ino
        except BaseException:
            listener.close()
            paths.remove_socket(path)
            raise
        self.close_listener()
        self.listener, self.socket_path, self._ino = listener, path, ino

    def write_record(self) -> None:
        """Write (or rewrite) the run's record with the current socket path."""
        info = self.info
        self.record = RunRecord(
            name=self.name,
            pid=os.getpid(),
            started=float(info.get("started") or time.time()),
            profile=info.get("profile"),
            home=info.get("home"),
            socket=str(self.socket_path),
            log=info.get("log"),
            host=socket.gethostname(),
        )
        paths.write_record(self.root, self.record)

    def socket_is_ours(self) -> bool:
        """Whether the socket file at our path is still the one we bound."""
        if self.socket_path is None:
            return False
        try:
            return os.stat(self.socket_path).st_ino == self._ino
        except OSError:
            return False

    def check(self) -> bool:
        """Re-create whatever was removed; True when the listening socket changed (register the new one)."""
        paths.private_dir(self.root)
        if self._lock is not None and not self._lock.same_file():
            relock = paths.NameLock(self.root, self.name)
            if not relock.acquire():
                raise ServiceError(f"run name {self.name} was taken by another process")
            self._lock.release()
            self._lock = relock
        if not self.socket_is_ours():
            self.bind()
            self.write_record()
            return True
        if paths.read_record(self.root, self.name) != self.record:
            self.write_record()
        return False

    def close_listener(self) -> None:
        """Stop listening and remove the socket file if it is still ours."""
        listener, self.listener = self.listener, None
        if listener is None:
            return
        ours = self.socket_is_ours()
        listener.close()
        if ours:
            paths.remove_socket(self.socket_path)

    def forget(self) -> None:
        """Remove the record and the socket: from now on no one finds the run."""
        if self.record is not None:
            current = paths.read_record(self.root, self.name)
            if current is not None and current.pid == os.getpid():
                with contextlib.suppress(OSError):
                    os.unlink(paths.record_path(self.root, self.name))
            self.record = None
        self.close_listener()

    def close(self) -> None:
        """Forget the run and give up its name (idempotent)."""
        self.forget()
        if self._lock is not None:
            self._lock.release(remove=True)
            self._lock = None


def claim(root: Path, base: str) -> tuple[str, paths.NameLock]:
    """Take the first free name of base, base-2, base-3, ... (a run of another home may hold base)."""
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        lock = paths.NameLock(root, name)
        for _ in range(3):  # a cleaner holds a free name's lock for an instant
            if lock.acquire():
                return name, lock
            time.sleep(0.02)
    raise ServiceError(f"no free run name like {base} in {root}")
