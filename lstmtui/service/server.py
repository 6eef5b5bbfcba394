"""RunServer: serves one RunHost on a Unix socket so other processes can watch and steer the run.

One thread ("lstmtui-serve") does everything with ``selectors``: it accepts clients (refusing other
users by SO_PEERCRED), reads their commands, and copies the host's events into a bounded output
buffer per client. The host's subscription is drained by this thread only, so the training thread
never waits on a socket; a client whose buffer overflows (it stopped reading) is dropped.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lstmtui.core.errors import LstmtuiError
from lstmtui.service import paths, protocol
from lstmtui.service.endpoint import Endpoint, peer_allowed
from lstmtui.service.paths import RunRecord, ServiceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from lstmtui.core.runhost import RunHost, Subscription

POLL_S = 0.05  # how often the thread drains the host's events: the latency a watcher sees
CHECK_EVERY_S = 2.0  # how often the socket and record files are checked (and re-created if gone)
MAX_PENDING = 8 * 1024 * 1024  # bytes queued for one client before it counts as stalled and is dropped
MAX_CLIENTS = 64
MAX_ERRORS = 100  # bad messages one connection may send before it is closed
LINES_PER_TICK = 200  # commands read from one client per pass, so a flood cannot hog the thread
SEND_CHUNK = 256 * 1024
RECV_CHUNK = 64 * 1024
CLOSE_GRACE_S = 1.0  # time to deliver a final error or end message before a connection is closed
EVENT_QUEUE = 20_000  # the server's own subscription; a burst larger than this makes every client resync


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    out: bytearray = field(default_factory=bytearray)
    inbuf: bytearray = field(default_factory=bytearray)
    errors: int = 0
    closing_by: float | None = None  # set when the connection is to close once its output is sent
    mask: int = 0


class RunServer:
    """Serves a RunHost on a per-run Unix socket; ``start()`` then ``close()``."""

    def __init__(
        self,
        host: RunHost,
        name: str,
        *,
        profile: str | None = None,
        home: str | Path | None = None,
        log: str | Path | None = None,
        root: Path | None = None,
        uid: int | None = None,
        max_pending: int = MAX_PENDING,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.requested_name = name
        self.name = name
        self.profile = profile
        self.home = None if home is None else str(home)
        self.log = None if log is None else str(log)
        self.root = root
        self.uid = os.getuid() if uid is None else uid
        self.max_pending = max_pending
        self.on_error = on_error
        self.error: str | None = None  # why serving stopped early, if it did
        self._started = time.time()
        self._endpoint: Endpoint | None = None
        self._sel = selectors.DefaultSelector()
        self._clients: dict[socket.socket, _Client] = {}
        self._sub: Subscription | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._torn_down = False
        self._tick_count = 0
        self._snapshot: tuple[int, bytes] | None = None  # (tick, encoded): one snapshot per pass serves all

    # ----- life cycle -----

    def start(self) -> RunServer:
        """Claim the run's name, bind its socket, write its record and start serving; ServiceError if unsafe."""
        info = {"profile": self.profile, "home": self.home, "log": self.log, "started": self._started}
        try:
            self._endpoint = Endpoint(self.root or paths.runs_dir(), self.requested_name, info)
        except OSError as exc:
            raise ServiceError(f"cannot serve run {self.requested_name}: {exc.strerror or exc}") from None
        self.name = self._endpoint.name
        self._sub = self.host.subscribe(EVENT_QUEUE)
        self._sel.register(self._endpoint.listener, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._serve, name="lstmtui-serve", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving: close every connection, remove the socket and the record (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._teardown()

    @property
    def serving(self) -> bool:
        """Whether the serving thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def socket_path(self) -> Path | None:
        """Where the run's socket is (None once it stopped serving)."""
        return None if self._endpoint is None else self._endpoint.socket_path

    @property
    def record(self) -> RunRecord | None:
        """The run's record as written (None once it stopped serving)."""
        return None if self._endpoint is None else self._endpoint.record

    @property
    def clients(self) -> int:
        """How many clients are connected."""
        return len(self._clients)

    def __enter__(self) -> RunServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- the thread -----

    def _serve(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY_S
        try:
            while not self._stop.is_set():
                self._tick()
                if self._deliver_events():
                    self._finish()
                    return
                now = time.monotonic()
                self._expire(now)
                if now >= next_check:
                    next_check = now + CHECK_EVERY_S
                    self._check_files()
        except Exception as exc:  # serving must never take the run down with it
            self.error = f"{type(exc).__name__}: {exc}"
            if self.on_error is not None:
                self.on_error(f"the run's socket stopped working ({self.error}); training goes on")
        finally:
            self._teardown()

    def _tick(self) -> None:
        backlog = [c for c in self._clients.values() if c.closing_by is None and b"\n" in c.inbuf]
        for client in backlog:
            self._handle_lines(client)
        self._tick_count += 1
        for key, mask in self._sel.select(POLL_S):
            if key.data is None:
                self._accept()
                continue
            client = key.data
            if mask & selectors.EVENT_READ:
                self._receive(client)
            if mask & selectors.EVENT_WRITE and client.sock in self._clients:
                self._send(client)

    def _deliver_events(self) -> bool:
        """Copy queued events to every client; True when the run has ended and every event is out."""
        sub = self._sub
        if sub is None:
            return True
        events = sub.drain()
        if events:
            self._broadcast(b"".join(protocol.encode(protocol.event_message(e)) for e in events))
        if not sub.closed:
            return False
        if not sub.dropped:
            return True
        # This thread fell behind the run: start again from a fresh snapshot, which replaces the past.
        self._sub = self.host.subscribe(EVENT_QUEUE)
        self._snapshot = None
        self._broadcast(self._snapshot_line())
        return False

    def _snapshot_line(self) -> bytes:
        """The run's snapshot as a protocol line, taken at most once per pass however many ask."""
        if self._snapshot is None or self._snapshot[0] != self._tick_count:
            self._snapshot = (self._tick_count, protocol.encode(protocol.snapshot_message(self.host.snapshot())))
        return self._snapshot[1]

    def _finish(self) -> None:
        """The run ended: stop accepting, send everyone the end, give them a moment to read it."""
        self._forget_files()
        self._broadcast(protocol.encode(protocol.end_message(self.host.result)))
        deadline = time.monotonic() + CLOSE_GRACE_S
        for client in list(self._clients.values()):
            client.closing_by = deadline
            self._want(client)
        while self._clients and not self._stop.is_set() and time.monotonic() < deadline:
            for key, mask in self._sel.select(POLL_S):
                if key.data is not None and mask & selectors.EVENT_WRITE:
                    self._send(key.data)
                elif key.data is not None and mask & selectors.EVENT_READ:
                    self._receive(key.data)
            self._expire(time.monotonic())

    # ----- connections -----

    def _accept(self) -> None:
        try:
            conn, _ = self._endpoint.listener.accept()  # type: ignore[union-attr]
        except OSError:
            return
        if not peer_allowed(conn, self.uid) or len(self._clients) >= MAX_CLIENTS:
            conn.close()
            return
        conn.setblocking(False)
        # Events queued before the snapshot go to the others first: the newcomer's snapshot covers them.
        self._deliver_events()
        self._snapshot = None
        client = _Client(conn)
        client.out += protocol.encode(protocol.hello(self._info()))
        client.out += self._snapshot_line()
        self._clients[conn] = client
        self._want(client)
        self._send(client)

    def _receive(self, client: _Client) -> None:
        try:
            data = client.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if not data:
            self._drop(client)
            return
        if client.closing_by is not None:
            return  # closing: what it says no longer matters
        client.inbuf += data
        self._handle_lines(client)

    def _handle_lines(self, client: _Client) -> None:
        for _ in range(LINES_PER_TICK):
            end = client.inbuf.find(b"\n")
            if end < 0:
                break
            line = bytes(client.inbuf[:end])
            del client.inbuf[: end + 1]
            if end + 1 > protocol.MAX_LINE:
                self._refuse_line(client)
                return
            line = line.strip()
            if line:
                self._handle(client, line)
            if client.closing_by is not None:
                return
        if b"\n" not in client.inbuf and len(client.inbuf) >= protocol.MAX_LINE:
            self._refuse_line(client)
            return
        self._want(client)

    def _refuse_line(self, client: _Client) -> None:
        message = f"a line may hold at most {protocol.MAX_LINE} bytes; closing the connection"
        self._reply(client, protocol.error(protocol.LINE_TOO_LONG, message))
        self._close_soon(client)

    def _handle(self, client: _Client, line: bytes) -> None:
        try:
            cmd = protocol.command(line)
        except protocol.ProtocolError as exc:
            self._reply_error(client, exc.code, str(exc), exc.request_id)
            return
        try:
            self._apply(client, cmd)
        except LstmtuiError as exc:
            self._reply_error(client, protocol.BAD_VALUE, str(exc), cmd.id)

    def _apply(self, client: _Client, cmd: protocol.Command) -> None:
        host = self.host
        extra: dict[str, object] = {}
        if cmd.cmd == "snapshot":
            self._queue(client, self._snapshot_line())
        elif cmd.cmd == "set_lr":
            host.set_lr(cmd.value)  # type: ignore[arg-type]
            extra["value"] = cmd.value
        elif cmd.cmd != "ping":
            getattr(host, cmd.cmd)()  # pause, resume, stop, save, sample: queued for the next step boundary
        self._reply(client, protocol.ack(cmd.id, cmd.cmd, **extra))

    def _reply_error(self, client: _Client, code: str, message: str, request_id: object) -> None:
        client.errors += 1
        self._reply(client, protocol.error(code, message, request_id))
        if client.errors >= MAX_ERRORS:
            message = f"{MAX_ERRORS} bad messages on this connection; closing it"
            self._reply(client, protocol.error(protocol.TOO_MANY_ERRORS, message))
            self._close_soon(client)

    def _reply(self, client: _Client, message: dict) -> None:
        self._queue(client, protocol.encode(message))

    def _broadcast(self, data: bytes) -> None:
        for client in list(self._clients.values()):
            if client.closing_by is None:
                self._queue(client, data)

    def _queue(self, client: _Client, data: bytes) -> None:
        if len(client.out) + len(data) > self.max_pending:
            self._drop(client)  # it stopped reading: the run does not wait for it, nor hold its backlog
            return
        client.out += data
        self._send(client)

    def _send(self, client: _Client) -> None:
        out = client.out
        try:
            while out:
                sent = client.sock.send(memoryview(out)[:SEND_CHUNK])
                del out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(client)
            return
        if not out and client.closing_by is not None:
            self._drop(client)
            return
        self._want(client)

    def _want(self, client: _Client) -> None:
        """Register for what the client needs now: input unless closing or backlogged, output if queued."""
        mask = 0
        if client.closing_by is None and b"\n" not in client.inbuf:
            mask |= selectors.EVENT_READ
        if client.out:
            mask |= selectors.EVENT_WRITE
        if mask == client.mask:
            return
        if client.mask and mask:
            self._sel.modify(client.sock, mask, client)
        elif mask:
            self._sel.register(client.sock, mask, client)
        else:
            self._sel.unregister(client.sock)
        client.mask = mask

    def _close_soon(self, client: _Client) -> None:
        client.closing_by = time.monotonic() + CLOSE_GRACE_S
        client.inbuf.clear()
        if not client.out:
            self._drop(client)
        else:
            self._want(client)

    def _expire(self, now: float) -> None:
        for client in list(self._clients.values()):
            if client.closing_by is not None and now >= client.closing_by:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        if self._clients.pop(client.sock, None) is None:
            return
        if client.mask:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(client.sock)
        client.mask = 0
        with contextlib.suppress(OSError):
            client.sock.close()

    # ----- files -----

    def _info(self) -> dict:
        return {
            "run": self.name,
            "pid": os.getpid(),
            "profile": self.profile,
            "home": self.home,
            "started": self._started,
            "log": self.log,
        }

    def _check_files(self) -> None:
        """Re-create a removed socket or record; a new listening socket replaces the old one in the selector."""
        if self._endpoint is None:
            return
        old = self._endpoint.listener
        if self._endpoint.check():
            with contextlib.suppress(KeyError, ValueError):
                if old is not None:
                    self._sel.unregister(old)
            self._sel.register(self._endpoint.listener, selectors.EVENT_READ, None)

    def _forget_files(self) -> None:
        """Remove the record and the socket so no one finds the run any more; stop listening."""
        if self._endpoint is not None and self._endpoint.listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(self._endpoint.listener)
            self._endpoint.forget()

    def _teardown(self) -> None:
        if self._torn_down:
            return
        self._torn_down = True
        self._forget_files()
        for client in list(self._clients.values()):
            self._drop(client)
        if self._sub is not None:
            self.host.unsubscribe(self._sub)
            self._sub = None
        if self._endpoint is not None:
            self._endpoint.close()
        with contextlib.suppress(OSError):
            self._sel.close()


def serve(
    host: RunHost,
    name: str,
    *,
    profile: str | None = None,
    home: str | Path | None = None,
    log: str | Path | None = None,
    on_error: Callable[[str], None] | None = None,
) -> RunServer:
    """Serve ``host`` as run ``name`` (profile name by default) until ``.close()`` or the run ends."""
    return RunServer(host, name, profile=profile or name, home=home, log=log, on_error=on_error).start()
