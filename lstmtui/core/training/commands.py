"""Commands to a running session from other threads: queued at once, applied by the loop at step boundaries."""

from __future__ import annotations

import math
from enum import Enum
from queue import Empty, SimpleQueue

from lstmtui.core.errors import ConfigError


class Command(Enum):
    """What another thread may ask of a running session."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    SET_LR = "set_lr"
    SAMPLE = "sample"
    SAVE = "save"


class Commands:
    """A session's command queue and the state the loop has applied from it.

    Any thread calls ``send``; only the training thread calls the other methods. The queue's put()
    is reentrant, so a signal handler may send a stop.
    """

    def __init__(self) -> None:
        self._inbox: SimpleQueue[tuple[Command, float]] = SimpleQueue()
        self.pause_requested = False  # as last asked, before the loop applies it
        self.paused = False
        self.stopping = False
        self._sample = False
        self._save = False
        self._lr: float | None = None

    def send(self, command: Command, value: float = 0.0) -> None:
        """Queue a command (any thread; never blocks). SET_LR checks its value here, in the caller's thread."""
        if command is Command.SET_LR and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0 < value <= 100
        ):
            raise ConfigError(f"learning rate must be in (0, 100], not {value!r}", "lr")
        if command in (Command.PAUSE, Command.RESUME):
            self.pause_requested = command is Command.PAUSE
        self._inbox.put((command, float(value)))

    def take(self) -> None:
        """Apply every queued command (training thread)."""
        inbox = self._inbox
        while not inbox.empty():  # the training thread is the only reader: not empty means get() returns at once
            self._apply(*inbox.get())

    def wait(self, timeout: float | None = None) -> None:
        """Apply the next command once it comes, or return after ``timeout`` seconds (training thread, paused)."""
        try:
            self._apply(*self._inbox.get(timeout=timeout))
        except Empty:
            pass

    def take_sample(self) -> bool:
        """Whether a sample was asked for since the last call."""
        wanted, self._sample = self._sample, False
        return wanted

    def take_save(self) -> bool:
        """Whether a save was asked for since the last call."""
        wanted, self._save = self._save, False
        return wanted

    def take_lr(self) -> float | None:
        """The peak learning rate asked for since the last call, if one was."""
        lr, self._lr = self._lr, None
        return lr

    def _apply(self, command: Command, value: float) -> None:
        if command is Command.PAUSE:
            self.paused = True
        elif command is Command.RESUME:
            self.paused = False
        elif command is Command.STOP:
            self.stopping = True
        elif command is Command.SET_LR:
            self._lr = value
        elif command is Command.SAMPLE:
            self._sample = True
        elif command is Command.SAVE:
            self._save = True
