"""The TUI's process leaving its terminal: a parent that keeps the shell waiting, and training on detached.

A shell gives its prompt back when the process it started exits, but a detached run must go on in
the process that trains it (its host's thread, with the profile lock and everything in memory). So
``lstmtui`` forks once as it starts, while it is a single thread (before torch, numpy or Textual
start any: forking after torch's threads exist is unsafe): the parent only waits, forwarding SIGTERM
and SIGHUP to the child, and exits with the child's status, or with 0 as soon as the child says it
has detached. The child runs the app and the training. To detach, it points its stdio at the run's
log file, leaves the terminal's session (``setsid``, which works here because the parent, not the
child, leads the process group) and tells the parent, whose exit returns the prompt. Until then the
child gets SIGTERM (stop, save, quit) if the parent dies (Linux: PR_SET_PDEATHSIG), so that killing
the process the shell started still ends the run it shows.

Without a terminal, or where the process is not a single thread yet, nothing forks and the run
detached with ``d`` still goes on, in the foreground process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from lstmtui.service.detach import detach_stdio, log_line, open_log

if TYPE_CHECKING:
    from lstmtui.tui.run_client import RunLink

NO_FORK_ENV = "LSTMTUI_NO_FORK"  # set (to anything) to keep lstmtui one process; `d` then keeps the shell waiting
DETACHED = b"d"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
JOIN_POLL_S = 1.0  # the main thread waits in steps this long, so signal handlers run meanwhile

_notify_fd: int | None = None  # the child's end of the pipe to the waiting parent
_lock = threading.Lock()


def fork_waiter() -> bool:
    """Fork once so that detaching can return the shell prompt; returns in the child (True) or without forking."""
    global _notify_fd
    if not _can_fork():
        return False
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _notify_fd = write_end
        _end_with_parent(signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above took effect
            os.kill(os.getpid(), signal.SIGTERM)
        return True
    os.close(write_end)
    _wait_for_child(pid, read_end)


def _can_fork() -> bool:
    if not hasattr(os, "fork") or os.environ.get(NO_FORK_ENV) or _notify_fd is not None:
        return False
    try:
        if not sys.stdin.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    return _single_thread()


def _end_with_parent(signum: int) -> None:
    """Have the kernel send ``signum`` when the parent dies (0: no longer); Linux only, else nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _single_thread() -> bool:
    """Whether the process runs one thread, native ones included (Linux: /proc/self/task)."""
    if threading.active_count() > 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return sys.platform == "darwin"  # no /proc: Python's count is all there is before torch


def _wait_for_child(pid: int, fd: int) -> NoReturn:
    """The parent: wait for the child to detach or end; never returns."""

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)  # a session leader's hang-up reaches only it: the child must know
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends Ctrl+C to the child as well
    while True:
        try:
            data = os.read(fd, 1)
        except OSError:
            data = b""
        if data == DETACHED:
            os._exit(0)
        if not data:
            break
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def release_terminal() -> bool:
    """Leave the terminal's session and let a waiting parent exit (the prompt returns); True if one was waiting.

    Idempotent and thread-safe. Call it once stdio no longer points at the terminal.
    """
    global _notify_fd
    with _lock:
        fd, _notify_fd = _notify_fd, None
    if fd is not None:
        _end_with_parent(0)  # the parent is about to exit on purpose
    with contextlib.suppress(OSError):
        os.setsid()  # refused for a group leader (nothing forked): the terminal is let go of all the same
    if fd is None:
        return False
    with contextlib.suppress(OSError):
        os.write(fd, DETACHED)
    with contextlib.suppress(OSError):
        os.close(fd)
    return True


def train_on(link: RunLink, profile: str | None, log: Path, hung_up: bool) -> int:
    """After the app closed with its run detached: say where it went, let the terminal go, wait until it ends."""
    name = link.run_name or profile or "the run"
    if not hung_up:
        waiting = _notify_fd is not None
        reach = f"lstmtui attach {name} | lstmtui ps | lstmtui stop {name}" if link.server else "(not reachable)"
        print(
            f"lstmtui: run {name} trains on in the background (pid {os.getpid()}); log: {log}\n  {reach}"
            + ("" if waiting else "\n  this terminal waits until it ends (Ctrl+Z then bg to go on)"),
            flush=True,
        )
        detach_stdio(log, f"detached (d); run {name} trains on in the background")
    release_terminal()
    while not link.join(JOIN_POLL_S):
        pass
    host = link.host
    result = getattr(host, "result", None)
    if link.server is not None:
        link.server.close()
    fd = _log_fd(log)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, b"\n")  # whatever the closing app wrote after a hang-up may lack its newline
        log_line(fd, f"run {name} ended: {_describe(result)}")
        os.close(fd)
    return 2 if getattr(result, "kind", "") == "failed" else 0


def _log_fd(log: Path) -> int | None:
    try:
        return open_log(log)
    except OSError:
        return None


def _describe(result: object) -> str:
    if result is None:
        return "no result"
    reason = getattr(result, "reason", None) or getattr(result, "message", "")
    step = getattr(result, "step", "?")
    return f"{getattr(result, 'kind', 'ended')} ({reason}) at step {step}, {time.strftime('%H:%M:%S')}"
