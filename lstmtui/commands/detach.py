"""What `lstmtui train` does for runs that outlive the terminal: --detach, --on-hangup, the run's socket."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lstmtui.core.errors import LstmtuiError
from lstmtui.core.events import Event
from lstmtui.service import ServiceError, list_runs, serve
from lstmtui.service.detach import detach_stdio, log_line, log_path, open_log

CHILD_ENV = "LSTMTUI_DETACHED"  # set in a detached run's environment, so it never detaches again
START_TIMEOUT_S = 60.0  # how long --detach waits for the new run to answer before it leaves it be
LOG_TAIL_BYTES = 2000


def add_detach_options(parser: argparse.ArgumentParser) -> None:
    """--detach and --on-hangup."""
    parser.add_argument(
        "--detach",
        action="store_true",
        help="train in the background: start the run as a new process in its own session, print its name and "
        "return (then `lstmtui ps`, `lstmtui attach NAME`, `lstmtui stop NAME`)",
    )
    parser.add_argument(
        "--on-hangup",
        choices=("detach", "stop"),
        default="detach",
        help="when the terminal hangs up (SIGHUP): detach keeps training with the output going to the profile's "
        "log file; stop saves and exits with status 129 (default: detach)",
    )


def detaching(args: argparse.Namespace) -> bool:
    """Whether this invocation should start a background run (not inside one that already is)."""
    return bool(getattr(args, "detach", False)) and not os.environ.get(CHILD_ENV)


def start_detached(args: argparse.Namespace, store, name: str) -> int:
    """Start the same `train` command as a new process in its own session; print the run's name."""
    if "-" in args.corpus:
        raise LstmtuiError("--detach cannot read the corpus from stdin; give a file")
    argv = _child_argv(list(getattr(args, "argv", None) or ["train"]), name, args.profile)
    log = log_path(store.root, name)
    fd = open_log(log)
    launched = time.time()
    try:
        log_line(fd, f"lstmtui {' '.join(argv)} (detached)")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lstmtui", *argv],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            env={**os.environ, CHILD_ENV: "1"},
        )
    finally:
        os.close(fd)
    run = _wait_until_served(proc, name, launched)
    if proc.poll() is not None:
        print(f"lstmtui: error: the detached run ended at once (status {proc.returncode}):", file=sys.stderr)
        print(_tail(log), file=sys.stderr)
        return 2
    print(run or name)
    where = "" if run else " (not answering yet: see the log)"
    print(
        f"training {run or name} in the background, pid {proc.pid}{where}; log: {log}\n"
        f"  lstmtui ps | lstmtui attach {run or name} | lstmtui stop {run or name}",
        file=sys.stderr,
    )
    proc.returncode = 0  # it is not ours to wait for: it outlives this process by design
    return 0


def _child_argv(argv: list[str], name: str, profile: str | None) -> list[str]:
    """The command line without --detach (or an abbreviation of it), naming the profile if it was not."""
    out = [a for a in argv if not (len(a) > 4 and "--detach".startswith(a))]
    if not profile:
        out += ["--profile", name]
    return out


def _wait_until_served(proc: subprocess.Popen, name: str, launched: float) -> str | None:
    """The run name the new process serves (or, with --nproc, its torchrun rank 0 serves for profile ``name``),
    once its record appears; None if it ended or took too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        for record in list_runs():
            if record.pid == proc.pid or (record.profile == name and record.started >= launched):
                return record.name
        time.sleep(0.1)
    return None


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace").rstrip()
    except OSError:
        return ""


def _warn(message: str) -> None:
    try:
        print(f"lstmtui: warning: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # the terminal may be gone


class Background:
    """A `train` run's reachability: its socket while it trains, and what a hang-up does."""

    def __init__(self, args: argparse.Namespace, store, name: str) -> None:
        self.name = name
        self.store = store
        self.on_hangup = getattr(args, "on_hangup", "detach")
        self.log = log_path(store.root, name)
        self.server = None
        self.hung_up = False

    def serve(self, host) -> None:
        """Serve the run on its socket; a run that cannot be served still trains (with a warning)."""
        try:
            self.server = serve(host, self.name, home=self.store.home, log=self.log, on_error=_warn)
        except ServiceError as exc:
            _warn(f"other terminals cannot reach this run: {exc}")

    def hangup_handler(self) -> Callable[[], None] | None:
        """What SIGHUP does, for the signal handler: None to stop and save (--on-hangup stop)."""
        return self.hang_up if self.on_hangup == "detach" else None

    def hang_up(self) -> None:
        """The terminal is gone: output to the log from now on, further hang-ups ignored, training goes on."""
        self.hung_up = True
        run = self.server.name if self.server is not None else self.name
        detach_stdio(self.log, f"the terminal hung up; run {run} trains on (lstmtui ps / attach / stop {run})")

    def display(self, display: Callable[[Event], None], plain: Callable[[], Callable[[Event], None]]):
        """The progress display, replaced by plain lines (for the log) after a hang-up."""
        return _HangupDisplay(self, display, plain)

    def close(self) -> None:
        """Stop serving (removes the socket and the record)."""
        if self.server is not None:
            self.server.close()


class _HangupDisplay:
    """Shows events on the terminal's display until a hang-up, then as plain lines in the log."""

    def __init__(self, owner: Background, display, plain) -> None:
        self.owner = owner
        self.current = display
        self.plain = plain
        self.swapped = False

    def __call__(self, event: Event) -> None:
        if self.owner.hung_up and not self.swapped:
            self.swapped = True
            self._close_current()
            self.current = self.plain()
        self.current(event)

    def _close_current(self) -> None:
        try:
            self.current.close()
        except Exception:  # a display of a terminal that is gone may fail in any way while closing
            pass

    def close(self) -> None:
        """Close the display in use."""
        self._close_current()
