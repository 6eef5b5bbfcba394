"""SIGTERM, SIGINT and SIGHUP in the app: stop training (it saves) or, on a hang-up, detach; never hang.

SIGTERM and Ctrl+C stop the run (it saves) and leave the app. A hang-up (SIGHUP: the SSH link
dropped, the terminal closed) detaches by default (``--on-hangup detach``): the process stops
touching the terminal at once (stdin from /dev/null, output to the run's log file, further hang-ups
ignored), closes the app and trains on in the run host's thread, which the app never owned; it
exits when training ends. ``--on-hangup stop`` saves and exits with status 129 instead, as does a
hang-up with no run training. An attached app's run lives in another process: any of these
signals only closes the connection.

A closed terminal can wedge Textual's output thread and with it the event loop, so nothing here
relies on the loop: the handler acts at once, asks the app to close, and starts a watchdog that
ends the process once the run's save is done (or, detached, once the run has ended) and the app
has had a moment to exit by itself.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from lstmtui.service.detach import detach_stdio, log_path
from lstmtui.tui import background
from lstmtui.tui.run_client import STOP_GRACE_S

if TYPE_CHECKING:
    from lstmtui.tui.app import LstmtuiApp

EXIT_GRACE_S = 3.0  # after the save, how long the app may take to exit before the watchdog ends it


@dataclass
class SignalState:
    """What the handlers did: the exit status they chose (None: the app's own) and whether they detached."""

    on_hangup: str = "detach"
    status: int | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)


def install(app: LstmtuiApp, on_hangup: str = "detach") -> SignalState:
    """Install the handlers for this app (call from the main thread, before app.run())."""
    state = SignalState(on_hangup)

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            if state.hung_up.is_set():
                return
            if on_hangup == "detach" and can_detach(app):
                state.hung_up.set()
                hang_up(app)
                return
            detach_terminal()
        if state.stopping.is_set():
            return
        state.stopping.set()
        if signum == signal.SIGHUP:
            state.status = 128 + signal.SIGHUP  # as `lstmtui train --on-hangup stop`
        app.run_link.release()
        _call_in_app(app, app.action_quit_now)
        threading.Thread(target=_watchdog, args=(app, state), name="lstmtui-exit-watchdog", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)
    return state


def can_detach(app: LstmtuiApp) -> bool:
    """Whether a hang-up should leave the app's run training: a run of this process goes on."""
    return not app.run_link.remote and app.run_link.alive


def run_log(app: LstmtuiApp):
    """The log file of the app's run, next to its profile."""
    from lstmtui.core.profiles import ProfileStore

    store = app.store or ProfileStore(app.options.home)
    return log_path(store.root, app.run_link.run_name or app.profile_name or "lstmtui")


def hang_up(app: LstmtuiApp) -> None:
    """The terminal is gone: output to the run's log, further hang-ups ignored, the app closed; training goes on."""
    name = app.run_link.run_name or app.profile_name
    detach_stdio(run_log(app), f"the terminal hung up; run {name} trains on (lstmtui ps / attach / stop {name})")
    app.detached = app.hung_up = True
    _call_in_app(app, lambda: app.detach_now(hung_up=True))
    threading.Thread(target=_detached_watchdog, args=(app,), name="lstmtui-detach-watchdog", daemon=True).start()


def _call_in_app(app: LstmtuiApp, callback) -> None:
    loop = getattr(app, "_loop", None)
    if loop is not None:
        try:
            loop.call_soon_threadsafe(app.call_later, callback)
        except RuntimeError:  # the loop is closed: the app is ending anyway
            pass


def _watchdog(app: LstmtuiApp, state: SignalState) -> None:
    if not app.run_link.remote:
        app.run_link.join(STOP_GRACE_S)
    threading.Event().wait(EXIT_GRACE_S)
    os._exit(state.status or 0)  # the profile is saved; a wedged terminal must not keep the process alive


def _detached_watchdog(app: LstmtuiApp) -> None:
    """A wedged app must neither keep the shell waiting nor keep the process alive after training ends."""
    threading.Event().wait(EXIT_GRACE_S)
    background.release_terminal()  # normally done by launch once the app has closed; idempotent
    app.run_link.join()
    threading.Event().wait(STOP_GRACE_S)  # launch normally ends the process first, closing the socket
    os._exit(0)


def detach_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null: the terminal is gone."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass
