"""The real `lstmtui` in a pseudo-terminal: SIGTERM, SIGHUP and Ctrl+C save the profile and exit fast."""

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


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "ctrl+c"])
def test_signal_saves_profile_and_exits_within_seconds(tmp_path, lstmtui_home, how):
    corpus = write_corpus(tmp_path / "tiny.txt")
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
    env.pop("COLORTERM", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lstmtui",
            str(corpus),
            "--hidden",
            "32",
            "--layers",
            "1",
            "--seq-len",
            "32",
            "--batch",
            "8",
            "--epochs",
            "200",
            "--eval-every",
            "10",
            "--threads",
            "1",
            "--fps",
            "10",
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    store = ProfileStore(lstmtui_home)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not store.exists("tiny"):
            drain(master, 0.2)
            assert proc.poll() is None, "the app ended on its own"
        assert store.exists("tiny"), "no checkpoint within a minute"
        first = store.load_meta("tiny").progress.step
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
        meta = store.load_meta("tiny")
        assert meta.progress.step > first, "the stop should save the steps since the last checkpoint"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
