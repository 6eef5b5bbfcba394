"""Runs reachable while they train (issue 19): a real run served on a Unix socket, its clients and bad clients."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from test_runhost import sums_text
from test_runhost import tiny_config as runhost_config

from lstmtui.core.config import TrainConfig
from lstmtui.core.events import StepEvent
from lstmtui.core.profiles import ProfileStore
from lstmtui.core.runhost import RunHost
from lstmtui.core.schedule import lr_factor
from lstmtui.core.training import TrainingSession
from lstmtui.service import RunClient, RunServer, ServiceError, list_runs, paths, protocol, runs_dir
from lstmtui.service.endpoint import peer_allowed, peer_uid
from lstmtui.service.paths import NameLock, RunRecord, private_dir, write_record
from lstmtui.service.server import MAX_ERRORS

WAIT_S = 120  # generous: the machine may be busy; no test measures time


def tiny_config(**kw) -> TrainConfig:
    """The run-host tests' tiny model, training for long (served runs are stopped by the tests) with no checks."""
    return runhost_config(**{"epochs": 1000, "eval_every": 0, "sample_every": 0, **kw})


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "sums.txt"
    path.write_text(sums_text(5000))
    return path


@pytest.fixture
def served(corpus):
    """A real run (it would go on for ages) served as run 'svc'; stopped and unserved afterwards."""
    store = ProfileStore()
    session = TrainingSession([corpus], tiny_config(), profile="svc", store=store)
    host = RunHost(session)
    server = RunServer(host, "svc", profile="svc", home=store.home, max_pending=256 * 1024).start()
    host.start()
    yield host, server, store
    host.stop()
    host.join(WAIT_S)
    server.close()


def strict_json(line: bytes) -> dict:
    def refuse(name: str):
        raise AssertionError(f"non-strict JSON constant {name} in {line[:200]!r}")

    return json.loads(line, parse_constant=refuse)


class Lines:
    """A raw protocol connection: lines in, strict JSON out."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT_S)
        self.sock.connect(str(path))
        self.buf = b""

    def read(self) -> dict | None:
        """The next message, or None at end of stream."""
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:  # the server closed with bytes of ours unread: an end all the same
                return None
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return strict_json(line)

    def reply(self) -> dict:
        """The next message that is not an event."""
        while True:
            message = self.read()
            assert message is not None, "the connection closed"
            if message["type"] != "event":
                return message

    def read_to_end(self) -> list[dict]:
        messages = []
        while (message := self.read()) is not None:
            messages.append(message)
        return messages

    def close(self) -> None:
        self.sock.close()


def until(client: RunClient, predicate, seen: list[dict] | None = None) -> dict:
    """Read messages until one satisfies predicate; return it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        message = client.read(1.0)
        if message is None:
            assert not client.closed, f"the connection closed; last seen: {(seen or [])[-3:]}"
            continue
        if seen is not None:
            seen.append(message)
        if predicate(message):
            return message
    raise AssertionError("timed out")


def is_event(kind: str, **fields):
    def check(message: dict) -> bool:
        data = message.get("data") or {}
        return message["type"] == "event" and data["event"] == kind and all(data[k] == v for k, v in fields.items())

    return check


def next_step(client: RunClient) -> int:
    return until(client, is_event("step"))["data"]["step"]


# ----- a client of a real run ---------------------------------------------------------------------


def test_a_client_gets_hello_and_snapshot_then_every_event(served):
    host, server, _ = served
    root = runs_dir()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(server.socket_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(root / "svc.json").st_mode) == 0o600
    [record] = list_runs()
    assert (record.name, record.pid, record.profile, record.socket) == (
        "svc",
        os.getpid(),
        "svc",
        str(server.socket_path),
    )

    conn = Lines(server.socket_path)
    hello = conn.read()
    assert hello["v"] == 1 and hello["type"] == "hello" and hello["protocol"] == 1
    assert hello["run"] == "svc" and hello["pid"] == os.getpid() and "set_lr" in hello["commands"]
    snapshot = conn.read()
    assert snapshot["type"] == "snapshot" and snapshot["snapshot"]["name"] == "svc"
    assert {"config", "history", "samples", "state", "last_step", "paused"} <= set(snapshot["snapshot"])
    steps = []
    while len(steps) < 150:
        message = conn.read()
        assert message["type"] == "event" and message["v"] == 1
        if message["data"]["event"] == "step":
            steps.append(message["data"])
    conn.close()
    # each event exactly as --log-jsonl writes it, none skipped for a client that reads
    assert set(steps[0]) == set(StepEvent(*([0] * 10)).to_dict())
    numbers = [s["step"] for s in steps]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_commands_act_on_the_run(served):
    host, server, store = served
    client = RunClient.connect("svc")
    seen: list[dict] = []
    assert client.request("ping") == {"v": 1, "type": "ack", "id": 1, "cmd": "ping"}
    next_step(client)
    assert client.request("pause")["type"] == "ack"
    until(client, is_event("state", state="paused"), seen)
    paused_at = max(m["data"]["step"] for m in seen if is_event("step")(m))
    snapshot = client.request("snapshot")
    assert snapshot["type"] == "ack"
    assert client.request("save")["type"] == "ack"
    saved = until(client, is_event("checkpoint", reason="requested"), seen)["data"]
    assert client.request("sample")["type"] == "ack"
    sample = until(client, is_event("sample"), seen)["data"]
    assert saved["step"] == sample["step"] == paused_at
    assert store.load_meta("svc").progress.step == paused_at
    assert not any(is_event("step")(m) and m["data"]["step"] > paused_at for m in seen)  # nothing trained
    reply = client.request("set_lr", value=5e-4)
    assert (reply["type"], reply["cmd"], reply["value"]) == ("ack", "set_lr", 5e-4)
    assert client.request("resume")["type"] == "ack"
    step = until(client, is_event("step"))["data"]
    cfg = host.session.config
    assert step["step"] == paused_at + 1
    assert step["lr"] == pytest.approx(
        5e-4 * lr_factor(paused_at, step["total_steps"], cfg.warmup_steps, cfg.min_lr_ratio)
    )
    assert client.request("stop")["type"] == "ack"
    finished = until(client, is_event("finished"))["data"]
    end = until(client, lambda m: m["type"] == "end")
    assert finished["reason"] == "stopped" and end["result"] == finished
    assert client.read(WAIT_S) is None and client.closed  # the server closes once the run has ended
    assert host.join(WAIT_S)
    assert store.load_meta("svc").progress.step == finished["step"]
    assert list_runs() == [] and not server.socket_path.exists() and not (runs_dir() / "svc.json").exists()


def test_a_snapshot_and_events_decode_to_engine_types(served):
    host, _, _ = served
    client = RunClient.connect("svc")
    step = protocol.event_from_dict(until(client, is_event("step"))["data"])
    assert isinstance(step, StepEvent) and step.step >= 1
    assert client.request("snapshot", timeout=WAIT_S)["type"] == "ack"  # the snapshot comes before its ack
    snapshot = protocol.snapshot_from_dict(client.snapshot)
    assert snapshot.name == "svc" and snapshot.config == host.session.config
    mine = host.snapshot()
    assert snapshot.history.train == mine.history.train[: len(snapshot.history.train)]
    nan = protocol.event_from_dict({**step.to_dict(), "loss": None})
    assert nan.loss != nan.loss  # null reads back as NaN
    assert protocol.event_from_dict({"event": "nonsense"}) is None
    client.close()


# ----- bad clients never disturb training ----------------------------------------------------------


def test_malformed_messages_get_error_replies_and_training_goes_on(served):
    _, server, _ = served
    watcher = RunClient.connect("svc")
    before = next_step(watcher)
    conn = Lines(server.socket_path)
    assert conn.read()["type"] == "hello"
    cases = [
        (b"not json", "bad_json"),
        (b"[1, 2]", "bad_message"),
        (b'{"v": 1}', "bad_message"),
        (b'{"v": 2, "cmd": "ping"}', "bad_version"),
        (b'{"v": 1, "cmd": "fly"}', "unknown_command"),
        (b'{"v": 1, "cmd": "set_lr", "value": "fast"}', "bad_value"),
        (b'{"v": 1, "cmd": "set_lr", "value": -1, "id": "lr"}', "bad_value"),
        (b'{"v": 1, "cmd": "ping", "id": [1]}', "bad_message"),
        (b"\xff\xfe\x00garbage", "bad_json"),
        (b"[" * 40_000, "bad_json"),
    ]
    for line, code in cases:
        conn.sock.sendall(line + b"\n")
        reply = conn.reply()
        if reply["type"] == "snapshot":
            reply = conn.reply()
        assert reply["type"] == "error" and reply["code"] == code, (line[:40], reply)
    conn.sock.sendall(b'{"v": 1, "cmd": "ping", "id": "still here"}\r\n')
    assert conn.reply() == {"v": 1, "type": "ack", "id": "still here", "cmd": "ping"}
    conn.sock.sendall(b"x" * (protocol.MAX_LINE + 10))  # no newline: a line too long
    rest = conn.read_to_end()
    assert [m["code"] for m in rest if m["type"] == "error"] == ["line_too_long"]
    conn.close()
    assert next_step(watcher) > before  # training went on throughout
    watcher.close()


def test_a_flood_of_garbage_is_cut_off(served):
    _, server, _ = served
    conn = Lines(server.socket_path)
    conn.sock.sendall(b"\x00garbage\n" * (MAX_ERRORS + 50))
    errors = [m for m in conn.read_to_end() if m["type"] == "error"]
    assert len(errors) == MAX_ERRORS + 1 and errors[-1]["code"] == "too_many_errors"
    conn.close()
    watcher = RunClient.connect("svc")
    first = next_step(watcher)
    assert next_step(watcher) > first
    watcher.close()


def test_a_stalled_client_is_dropped_and_many_clients_all_keep_up(served):
    host, server, _ = served
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(str(server.socket_path))  # and never reads
    results: dict[int, list[int]] = {}

    def reader(i: int) -> None:
        with RunClient.connect("svc", timeout=WAIT_S) as client:
            results[i] = [next_step(client) for _ in range(400)]

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert len(results) == 8
    for steps in results.values():
        assert steps == list(range(steps[0], steps[0] + 400))  # every step, in order
    # The stalled client's backlog passed 256 KiB long ago: it was dropped, the run never waited.
    watcher = RunClient.connect("svc")
    target = next_step(watcher) + 3000
    while next_step(watcher) < target:
        pass
    stalled.settimeout(WAIT_S)
    received = b""
    while data := stalled.recv(1 << 20):
        received += data
    assert received.startswith(b'{"v":1,"type":"hello"')  # what the kernel held before the drop; then the end
    assert host.alive
    watcher.close()
    stalled.close()


# ----- who may connect, where runs live ------------------------------------------------------------


def test_peers_of_another_user_are_refused(corpus):
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_uid(a) == os.getuid()
        assert peer_allowed(a) and peer_allowed(a, os.getuid())
        assert not peer_allowed(a, os.getuid() + 1)
    host = RunHost(TrainingSession([corpus], tiny_config()))
    server = RunServer(host, "other", uid=os.getuid() + 1).start()  # as if this user were someone else
    try:
        conn = Lines(server.socket_path)
        assert conn.read() is None  # closed at once, not a byte sent
        conn.close()
        with pytest.raises(ServiceError, match="did not send its hello|does not answer"):
            RunClient.connect("other")
    finally:
        server.close()
    assert list_runs() == []


def test_stale_records_are_removed_and_live_ones_kept(tmp_path):
    root = private_dir(runs_dir())
    outside = tmp_path / "not-ours.sock"
    outside.write_text("a file the record points at: never removed")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(root / "dead.sock"))
    dead.close()  # the socket file stays, as after kill -9
    for name, sock in (("dead", str(root / "dead.sock")), ("liar", str(outside))):
        write_record(root, RunRecord(name, 999_999, time.time(), name, None, sock, None, "host"))
        (root / f"{name}.lock").touch()
    alive = NameLock(root, "alive")
    assert alive.acquire()
    try:
        write_record(root, RunRecord("alive", os.getpid(), time.time(), "alive", None, str(root / "x"), None, "h"))
        with pytest.raises(ServiceError, match="no run named dead; running: alive"):
            RunClient.connect("dead")
        assert [r.name for r in list_runs()] == ["alive"]
        assert sorted(os.listdir(root)) == ["alive.json", "alive.lock"]
        assert outside.exists()
    finally:
        alive.release(remove=True)
    assert list_runs() == [] and os.listdir(root) == []


def test_a_removed_socket_or_record_comes_back(served):
    _, server, _ = served
    os.unlink(server.socket_path)
    os.unlink(runs_dir() / "svc.json")
    deadline = time.monotonic() + WAIT_S
    while not (server.socket_path.exists() and (runs_dir() / "svc.json").exists()):
        assert time.monotonic() < deadline, "not re-created"
        time.sleep(0.1)
    with RunClient.connect("svc") as client:
        assert client.hello["run"] == "svc"


def test_a_socket_path_too_long_falls_back_to_a_short_one(corpus, tmp_path):
    root = tmp_path / ("r" * 100)
    host = RunHost(TrainingSession([corpus], tiny_config()))
    server = RunServer(host, "long", root=root).start()
    path = server.socket_path
    try:
        assert paths.is_short_socket(path) and len(str(path)) <= paths.MAX_SOCKET_PATH
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        [record] = list_runs(root)
        assert record.socket == str(path)
        with RunClient.connect("long", root=root) as client:
            assert client.snapshot["state"] == "created"
    finally:
        server.close()
    assert not path.exists() and not path.parent.exists() and list_runs(root) == []


def test_an_unsafe_runs_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    assert private_dir(real) == real and stat.S_IMODE(os.stat(real).st_mode) == 0o700
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(ServiceError, match="symbolic link"):
        private_dir(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(ServiceError, match="not a directory"):
        private_dir(tmp_path / "file")
    if os.getuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 12345, 12345)
        with pytest.raises(ServiceError, match="belongs to user id 12345"):
            private_dir(theirs)


def test_command_lines_are_checked():
    ok = protocol.command(b'{"v": 1, "cmd": "set_lr", "value": 3, "id": 9}')
    assert (ok.cmd, ok.value, ok.id) == ("set_lr", 3.0, 9)
    for line, code in [
        (b'{"v": true, "cmd": "ping"}', "bad_version"),
        (b'{"v": 1, "cmd": 5}', "bad_message"),
        (b'{"v": 1, "cmd": "set_lr", "value": true}', "bad_value"),
        (b'{"v": 1, "cmd": "ping", "id": "' + b"i" * 300 + b'"}', "bad_message"),
    ]:
        with pytest.raises(protocol.ProtocolError) as info:
            protocol.command(line)
        assert info.value.code == code
    with pytest.raises(ValueError):
        protocol.encode({"x": float("nan")})  # strict JSON or nothing
    assert protocol.encode(protocol.jsonable({"x": (float("inf"), 1.5)})) == b'{"x":[null,1.5]}\n'
