"""Runs that outlive the terminal, on the command line (issue 19): `train --detach`, `ps`, `stop`, hang-ups.

Real `lstmtui` processes on a small corpus; each test's runs directory is its own (LSTMTUI_RUNS).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstmtui.core.profiles import ProfileStore
from lstmtui.service import RunClient, list_runs

WAIT_S = 120  # generous: the machine may be busy; no test measures time
TINY = ["--hidden", "32", "--layers", "1", "--seq-len", "16", "--batch", "8", "--sample-every", "0",
        "--eval-every", "0", "--threads", "1", "--plain", "--epochs", "1000"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path) -> Path:
    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 6))) for _ in range(80)]
    path = tmp_path / "words.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(30_000)) + "\n")
    return path


def lstmtui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstmtui", *args], capture_output=True, text=True, timeout=WAIT_S)


def start(*args: str, out: Path) -> subprocess.Popen:
    """A foreground `lstmtui` in its own session (a signal sent to it never reaches pytest)."""
    with open(out, "w") as stream:
        return subprocess.Popen([sys.executable, "-m", "lstmtui", *args], stdout=stream, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def wait_until(predicate, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended ({proc.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ps_rows() -> list[dict]:
    result = lstmtui("ps", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def connect(name: str, proc: subprocess.Popen | None = None) -> RunClient:
    wait_until(lambda: any(r.name == name for r in list_runs()), f"run {name} to be served", proc)
    return RunClient.connect(name, timeout=WAIT_S)


def next_step(client: RunClient) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        message = client.read(1.0)
        assert not client.closed, "the run ended"
        if message and message["type"] == "event" and message["data"]["event"] == "step":
            return message["data"]["step"]
    raise AssertionError("no step")


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie no one reaps counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def steps_in(log: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "step"}


@pytest.mark.timeout(600)
def test_detach_then_ps_then_stop_and_the_profile_resumes_exactly(corpus, tmp_path):
    started = lstmtui("train", str(corpus), "--profile", "det", *TINY, "--detach")
    assert started.returncode == 0, started.stderr
    assert started.stdout == "det\n"  # the name alone on stdout, for scripts
    assert "lstmtui stop det" in started.stderr and "Traceback" not in started.stderr

    first = wait_until(lambda: [r for r in ps_rows() if r["name"] == "det" and r["step"]], "a first step")[0]
    assert first["state"] == "training" and first["epoch"] == 1 and first["epochs"] == 1000
    assert first["profile"] == "det" and first["pid"] != os.getpid() and not gone(first["pid"])
    assert Path(first["log"]).is_file() and first["chars_per_s"] > 0
    wait_until(lambda: [r for r in ps_rows() if r["step"] > first["step"]], "the step to rise")
    table = lstmtui("ps")
    assert table.stdout.startswith("NAME") and "\ndet " in table.stdout

    stopped = lstmtui("stop", "det")
    assert stopped.returncode == 0, stopped.stderr
    step = int(stopped.stdout.split(" at step ")[1].split()[0])
    assert step > first["step"]
    wait_until(lambda: gone(first["pid"]), "the detached process to exit")
    assert ps_rows() == []
    assert ProfileStore().load_meta("det").progress.step == step  # saved at the step it stopped

    # Resumed for 6 more steps, it trains exactly as a run that was never stopped.
    more = str(step + 6)
    resumed = lstmtui("train", "--profile", "det", *TINY, "--max-steps", more, "--log-jsonl", str(tmp_path / "r.jsonl"))
    assert resumed.returncode == 0, resumed.stderr
    full = lstmtui("train", str(corpus), "--profile", "full", *TINY, "--max-steps", more,
                   "--log-jsonl", str(tmp_path / "f.jsonl"))  # fmt: skip
    assert full.returncode == 0, full.stderr
    after = steps_in(tmp_path / "r.jsonl")
    assert sorted(after) == list(range(step + 1, step + 7))
    reference = steps_in(tmp_path / "f.jsonl")
    assert after == {s: reference[s] for s in after}


def test_detach_refuses_stdin_and_stop_an_unknown_run():
    refused = lstmtui("train", "-", "--detach")
    assert refused.returncode == 2 and refused.stderr.startswith("lstmtui: error: --detach cannot read")
    unknown = lstmtui("stop", "nosuch")
    assert unknown.returncode == 2 and unknown.stderr == "lstmtui: error: no run named nosuch; none is running\n"


@pytest.mark.timeout(300)
def test_sighup_detaches_a_foreground_run_which_trains_on(corpus, tmp_path):
    proc = start("train", str(corpus), "--profile", "hup", *TINY, out=tmp_path / "out.txt")
    try:
        client = connect("hup", proc)
        before = next_step(client)
        proc.send_signal(signal.SIGHUP)
        log = ProfileStore().root / ".hup.log"
        wait_until(lambda: log.is_file() and "the terminal hung up" in log.read_text(), "the hang-up note", proc)
        proc.send_signal(signal.SIGHUP)  # ignored from now on
        target = next_step(client) + 200
        while next_step(client) < target:
            pass
        assert proc.poll() is None and before < target
        client.close()
        stopped = lstmtui("stop", "hup")
        assert stopped.returncode == 0, stopped.stderr
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "finished (stopped)" in log.read_text()  # the output after the hang-up went to the log
    assert "Traceback" not in (tmp_path / "out.txt").read_text() + log.read_text()


@pytest.mark.timeout(300)
def test_on_hangup_stop_saves_and_exits_129(corpus, tmp_path):
    proc = start("train", str(corpus), "--profile", "old", *TINY, "--on-hangup", "stop", out=tmp_path / "out.txt")
    try:
        client = connect("old", proc)
        next_step(client)
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(WAIT_S) == 128 + signal.SIGHUP
    finally:
        if proc.poll() is None:
            proc.kill()
    finished = None
    while (message := client.read(WAIT_S)) is not None:
        if message["type"] == "end":
            finished = message["result"]
    assert finished["event"] == "finished" and finished["reason"] == "stopped"
    assert "finished (stopped)" in (tmp_path / "out.txt").read_text()
    assert ProfileStore().load_meta("old").progress.step == finished["step"]


@pytest.mark.timeout(300)
def test_a_terminal_that_hangs_up_leaves_the_run_training(corpus, tmp_path):
    """The SSH link drops under `lstmtui train` with its rich display: the run goes on, `stop` ends it."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()

    def take_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="30")
    args = [a for a in TINY if a != "--plain"]
    proc = subprocess.Popen([sys.executable, "-m", "lstmtui", "train", str(corpus), "--profile", "tty", *args],
                            stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=take_terminal)  # fmt: skip
    os.close(slave)
    try:
        client = connect("tty", proc)
        next_step(client)
        os.close(master)  # what a dropped connection does: SIGHUP, and the terminal is gone
        target = next_step(client) + 200
        while next_step(client) < target:
            pass
        assert proc.poll() is None
        [row] = ps_rows()
        assert row["name"] == "tty" and row["step"] >= target
        stopped = lstmtui("stop", "tty")
        assert stopped.returncode == 0, stopped.stderr
        assert proc.wait(WAIT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (ProfileStore().root / ".tty.log").read_text()
    assert "the terminal hung up" in log and "finished (stopped)" in log and "Traceback" not in log
