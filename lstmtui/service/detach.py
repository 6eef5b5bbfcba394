"""Leaving the terminal: a run's log file, and pointing the process's stdio at it on a hang-up.

When the terminal goes away (SIGHUP: the SSH link dropped, the window closed) a run that keeps
training must never touch it again: reads and writes to a hung-up terminal fail. ``detach_stdio``
points stdin at /dev/null and stdout/stderr at the log, and ignores further hang-ups. It neither
forks nor calls setsid (a foreground job is its process group's leader, for which setsid fails,
and forking after torch has started its threads is unsafe): the run stays in this process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def log_path(profiles_root: Path, name: str) -> Path:
    """The run's log file, next to the profile: HOME/profiles/.NAME.log.

    Not inside NAME/: a profile's directory appears only with its first save, and a directory
    without a saved version reads as a broken profile.
    """
    return Path(profiles_root) / f".{name}.log"


def open_log(path: Path) -> int:
    """Open the log for appending (mode 0600, created with its directory); returns the descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def log_line(fd: int, text: str) -> None:
    """Append one timestamped line to the log (errors ignored: the log is a courtesy)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError):
        os.write(fd, f"--- {stamp} {text} ---\n".encode())


def detach_stdio(log: Path, note: str = "") -> bool:
    """Ignore further hang-ups; stdin from /dev/null, stdout and stderr to ``log`` (or /dev/null if it fails).

    Safe to call from a signal handler on the main thread; True when the output goes to the log.
    """
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        out = open_log(log)
        to_log = True
    except OSError:
        out = os.open(os.devnull, os.O_WRONLY)
        to_log = False
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((0, null), (1, out), (2, out)):
            with contextlib.suppress(OSError):
                os.dup2(target, fd)
        os.close(null)
        if note and to_log:
            log_line(out, note)
    finally:
        os.close(out)
    return to_log
