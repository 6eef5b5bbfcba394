"""The real `lstmtui` in a pseudo-terminal: SIGTERM, Ctrl+C (and SIGHUP with --on-hangup stop) save the profile
and exit fast; a plain SIGHUP detaches: the process the shell waits for exits, the run trains on."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from test_tui_support import write_corpus

from lstmtui.core.profiles import ProfileStore
from lstmtui.service import RunClient, list_runs

pytestmark = pytest.mark.timeout(120)


def drain(fd: int, seconds: float) -> None:
    """Read (and drop) the app's screen output so it never blocks on a full pty."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                os.read(fd, 65536)
            except OSError:
                return


ARGS = ["--hidden", "32", "--layers", "1", "--seq-len", "32", "--batch", "8", "--epochs", "200", "--eval-every",
        "10", "--threads", "1", "--fps", "10"]  # fmt: skip


def start_in_a_terminal(*args: str) -> tuple[subprocess.Popen, int]:
    """`lstmtui ARGS` on a new pseudo-terminal, in a session of its own; (process, master fd)."""
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
    env.pop("COLORTERM", None)
    proc = subprocess.Popen([sys.executable, "-m", "lstmtui", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, start_new_session=True)  # fmt: skip
    os.close(slave)
    return proc, master


def wait_for_a_save(proc: subprocess.Popen, master: int, store: ProfileStore, name: str) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.exists(name):
        drain(master, 0.2)
        assert proc.poll() is None, "the app ended on its own"
    assert store.exists(name), "no checkpoint within a minute"
    return store.load_meta(name).progress.step


@pytest.mark.parametrize(("how", "status"), [("SIGTERM", 0), ("SIGHUP", 129), ("ctrl+c", 0)])
def test_signal_saves_profile_and_exits_within_seconds(tmp_path, lstmtui_home, how, status):
    corpus = write_corpus(tmp_path / "tiny.txt")
    proc, master = start_in_a_terminal(str(corpus), *ARGS, "--on-hangup", "stop")
    store = ProfileStore(lstmtui_home)
    try:
        first = wait_for_a_save(proc, master, store, "tiny")
        drain(master, 1.0)
        sent = time.monotonic()
        if how == "ctrl+c":
            os.write(master, b"\x03")
        else:
            proc.send_signal(getattr(signal, how))
        while proc.poll() is None and time.monotonic() - sent < 15:
            drain(master, 0.1)
        took = time.monotonic() - sent
        assert proc.poll() is not None, f"still running {took:.1f}s after {how}"
        assert took < 10, f"{how}: exit took {took:.1f}s"
        assert proc.returncode == status
        meta = store.load_meta("tiny")
        assert meta.progress.step > first, "the stop should save the steps since the last checkpoint"
        assert list_runs() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_a_hangup_detaches_the_app_and_the_run_trains_on_until_stopped(tmp_path, lstmtui_home):
    corpus = write_corpus(tmp_path / "tiny.txt", size=200_000)
    proc, master = start_in_a_terminal(str(corpus), *ARGS)
    store = ProfileStore(lstmtui_home)
    try:
        wait_for_a_save(proc, master, store, "tiny")
        [record] = list_runs()
        assert record.pid != proc.pid  # the run's process is a child; the one the shell waits for only waits
        proc.send_signal(signal.SIGHUP)
        while proc.poll() is None:
            drain(master, 0.1)
        assert proc.returncode == 0  # the shell would have its prompt back
        with RunClient.connect("tiny") as client:
            step = client.snapshot["last_step"]["step"]
            while (message := client.read(30)) is not None:
                if (
                    message["type"] == "event"
                    and message["data"]["event"] == "step"
                    and message["data"]["step"] > step + 50
                ):
                    break
            assert message is not None, "the detached run should train on"
            assert client.request("stop")["type"] == "ack"
            while client.read(30) is not None:
                pass
        deadline = time.monotonic() + 60
        while os.path.exists(f"/proc/{record.pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{record.pid}") or "Z" in open(f"/proc/{record.pid}/stat").read().split()[2]
        log = (store.root / ".tiny.log").read_text()
        assert "the terminal hung up; run tiny trains on" in log and "run tiny ended: finished (stopped)" in log
        assert store.load_meta("tiny").progress.step > step + 50
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_killing_the_process_the_shell_waits_for_stops_the_run_it_shows_saved(tmp_path, lstmtui_home):
    corpus = write_corpus(tmp_path / "tiny.txt", size=200_000)
    proc, master = start_in_a_terminal(str(corpus), *ARGS)
    store = ProfileStore(lstmtui_home)
    try:
        first = wait_for_a_save(proc, master, store, "tiny")
        [record] = list_runs()
        drain(master, 1.0)
        proc.kill()  # the waiting parent; the app's process gets SIGTERM from the kernel
        proc.wait()
        deadline = time.monotonic() + 60
        while os.path.exists(f"/proc/{record.pid}") and time.monotonic() < deadline:
            drain(master, 0.1)
        assert not os.path.exists(f"/proc/{record.pid}"), "the app's process should stop with its parent"
        assert store.load_meta("tiny").progress.step > first
        assert list_runs() == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
