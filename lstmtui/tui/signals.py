"""SIGTERM, SIGHUP and SIGINT: stop training (it saves), leave the app, and never hang.

A dropped SSH link closes the terminal under the app: writes to it fail and Textual's output
thread can die with a full queue, blocking the event loop. So the handler does not rely on the
loop: it asks the session to stop at once (the save runs on the training thread), points the
standard streams at /dev/null, asks the app to quit, and starts a watchdog that ends the process
once the save is done and the app has had a moment to exit by itself.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from lstmtui.tui.run_client import STOP_GRACE_S

if TYPE_CHECKING:
    from lstmtui.tui.app import LstmtuiApp

EXIT_GRACE_S = 3.0  # after the save, how long the app may take to exit before the watchdog ends it


def install(app: LstmtuiApp) -> None:
    """Install the handlers for this app (call from the main thread, before app.run())."""
    fired = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            detach_terminal()
        if fired.is_set():
            return
        fired.set()
        app.run_link.stop()
        loop = getattr(app, "_loop", None)
        if loop is not None:
            try:
                loop.call_soon_threadsafe(app.call_later, app.action_quit_now)
            except RuntimeError:  # the loop is closed: the app is ending anyway
                pass
        threading.Thread(target=_watchdog, args=(app,), name="lstmtui-exit-watchdog", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, handler)


def _watchdog(app: LstmtuiApp) -> None:
    app.run_link.join(STOP_GRACE_S)
    threading.Event().wait(EXIT_GRACE_S)
    os._exit(0)  # the profile is saved; a wedged terminal must not keep the process alive


def detach_terminal() -> None:
    """Point stdin, stdout and stderr at /dev/null: the terminal is gone."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass
