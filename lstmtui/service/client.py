"""Finding runs and talking to them: the client side of the run protocol (docs/protocol.md).

``list_runs()`` reads the runs directory and removes what dead runs left behind (their name lock
is free); ``RunClient.connect(name)`` opens a run's socket and reads its hello and snapshot; then
``read()`` returns the messages that follow and ``send()`` / ``request()`` send commands.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import selectors
import socket
import threading
import time
from collections import deque
from pathlib import Path

from lstmtui.service import paths, protocol
from lstmtui.service.paths import RunRecord, ServiceError

CONNECT_TIMEOUT_S = 5.0
MAX_SERVER_LINE = 256 * 1024 * 1024  # a snapshot carries the whole loss history; anything larger is not a server


class RunClient:
    """One connection to a run: ``hello`` and ``snapshot`` (dicts) on connect, then ``read()`` / ``send()``.

    ``snapshot`` is always the latest snapshot message read (the server sends another when asked with
    the ``snapshot`` command, or when it had to drop events); events after it continue from there.

    ``read`` belongs to one thread; ``send`` may be called from any thread.
    """

    def __init__(self, sock: socket.socket, record: RunRecord | None = None) -> None:
        self.sock = sock
        self.record = record
        self.hello: dict = {}
        self.snapshot: dict = {}
        self.closed = False
        self._inbuf = bytearray()
        self._backlog: deque[dict] = deque()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._sel = selectors.DefaultSelector()
        self._sel.register(sock, selectors.EVENT_READ)

    @classmethod
    def connect(
        cls, target: str | RunRecord | Path, *, timeout: float = CONNECT_TIMEOUT_S, root: Path | None = None
    ) -> RunClient:
        """Connect to a run by name, record or socket path; read its hello and snapshot.

        ServiceError when there is no such run or it does not answer within ``timeout`` seconds.
        """
        if isinstance(target, str):
            target = find_run(target, root=root)
        record = target if isinstance(target, RunRecord) else None
        path = record.socket if record is not None else str(target)
        label = f"run {record.name}" if record is not None else str(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise ServiceError(f"{label} does not answer ({exc.strerror or exc})") from None
        sock.setblocking(False)
        client = cls(sock, record)
        try:
            client.hello = client._expect("hello", timeout, label)
            client.snapshot = client._expect("snapshot", timeout, label)["snapshot"]
        except BaseException:
            client.close()
            raise
        return client

    def _expect(self, kind: str, timeout: float, label: str) -> dict:
        message = self.read(timeout)
        if message is None or message.get("type") != kind or message.get("v") != protocol.VERSION:
            got = "nothing" if message is None else f"{message.get('type')!r}"
            raise ServiceError(f"{label} did not send its {kind} (got {got}); is it an lstmtui run?")
        return message

    # ----- reading -----

    def read(self, timeout: float | None = None) -> dict | None:
        """The next message, or None when none came within ``timeout`` seconds or the connection closed."""
        if self._backlog:
            return self._backlog.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._next_line()
            if message is not None:
                return message
            if self.closed:
                return None
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._sel.select(wait):
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            self._fill()

    def _next_line(self) -> dict | None:
        while True:
            end = self._inbuf.find(b"\n")
            if end < 0:
                if len(self._inbuf) > MAX_SERVER_LINE:
                    self.close()
                return None
            line = bytes(self._inbuf[:end])
            del self._inbuf[: end + 1]
            try:
                message = json.loads(line)
            except ValueError:
                continue  # not from a server that speaks this protocol; skip it
            if isinstance(message, dict):
                if message.get("type") == "snapshot" and isinstance(message.get("snapshot"), dict):
                    self.snapshot = message["snapshot"]  # a later snapshot replaces everything before it
                return message

    def _fill(self) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._inbuf += data

    def messages(self, timeout: float | None = None):
        """Every message until the connection closes (or none comes for ``timeout`` seconds)."""
        while True:
            message = self.read(timeout)
            if message is None:
                return
            yield message

    # ----- commands -----

    def send(self, cmd: str, **fields: object) -> int:
        """Send a command (``value=`` for set_lr) and return its id; the reply comes through ``read()``."""
        request_id = next(self._ids)
        line = protocol.encode({"v": protocol.VERSION, "cmd": cmd, "id": request_id, **fields})
        with self._send_lock:
            self._send_all(line)
        return request_id

    def _send_all(self, data: bytes, timeout: float = CONNECT_TIMEOUT_S) -> None:
        """Write all of ``data`` on the non-blocking socket (a reader thread may be in ``read`` meanwhile)."""
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except (BlockingIOError, InterruptedError):
                _, writable, _ = select.select([], [self.sock], [], timeout)
                if not writable:
                    raise ServiceError(f"the run did not take a command within {timeout:g}s") from None
            except OSError as exc:
                raise ServiceError(f"the run's connection is closed ({exc.strerror or exc})") from None

    def request(self, cmd: str, timeout: float = CONNECT_TIMEOUT_S, **fields: object) -> dict:
        """Send a command and wait for its reply (``ack`` or ``error``); other messages stay for ``read()``."""
        request_id = self.send(cmd, **fields)
        deadline = time.monotonic() + timeout
        kept: list[dict] = []
        try:
            while True:
                message = self.read(max(0.0, deadline - time.monotonic()))
                if message is None:
                    raise ServiceError(f"no reply to {cmd} within {timeout:g}s" if not self.closed else "run ended")
                if message.get("type") in ("ack", "error") and message.get("id") == request_id:
                    return message
                kept.append(message)
        finally:
            self._backlog.extend(kept)

    def fileno(self) -> int:
        """The socket's descriptor, for a caller's own select loop."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the connection (the run goes on)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._sel.unregister(self.sock)
        self._sel.close()
        self.sock.close()

    def __enter__(self) -> RunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----- discovery -----


def list_runs(root: Path | None = None, clean: bool = True) -> list[RunRecord]:
    """The records of live runs, by name; with ``clean``, what dead runs left is removed on the way."""
    root = root or paths.runs_dir()
    if not root.is_dir():
        return []
    try:
        paths.private_dir(root, create=False)
    except ServiceError:
        return []
    found = []
    for name in paths.run_names(root):
        if not is_live(root, name):
            if clean:
                paths.remove_stale(root, name)
            continue
        record = paths.read_record(root, name)
        if record is not None:
            found.append(record)
    return found


def is_live(root: Path, name: str) -> bool:
    """Whether a process holds the run's name lock (it serves the run)."""
    lock = paths.NameLock(root, name)
    try:
        if lock.acquire():
            lock.release()
            return False
    except OSError:
        return False
    return True


def find_run(
    name: str | None = None, *, profile: str | None = None, home: str | Path | None = None, root: Path | None = None
) -> RunRecord:
    """The live run by name, or the one training ``profile`` (in ``home``); ServiceError if there is none."""
    runs = list_runs(root)
    if name is not None:
        for record in runs:
            if record.name == name:
                return record
        hint = f"; running: {', '.join(r.name for r in runs)}" if runs else "; none is running"
        raise ServiceError(f"no run named {name}{hint}")
    wanted_home = None if home is None else os.path.realpath(home)
    for record in runs:
        same_home = wanted_home is None or (record.home and os.path.realpath(record.home) == wanted_home)
        if record.profile == profile and same_home:
            return record
    raise ServiceError(f"profile {profile} is not training")
