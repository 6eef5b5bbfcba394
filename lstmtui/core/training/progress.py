"""Where a training run stands: counters (Progress), loss curve (LossLog), speed (Rate), all of it (RunState)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstmtui.core.profiles import History, HistoryEvent, TrainPoint, ValPoint

if TYPE_CHECKING:
    import torch

LN2 = math.log(2.0)
HISTORY_POINTS = 4000  # train-loss points kept in a profile; older ones are merged pairwise


@dataclass
class Progress:
    """The counters and learning-rate state a profile saves and a resumed run continues from."""

    epoch: int = 0  # completed epochs
    epoch_step: int = 0  # steps taken in the current epoch
    step: int = 0  # steps taken in all sessions of this profile
    elapsed_before: float = 0.0  # training seconds of the profile's earlier sessions
    # The lowest figure of the checks keep-best compares (estimates, when the split is estimated):
    # the kept weights are the ones it was measured on.
    best_val_loss: float = math.inf
    best_stderr: float | None = None  # its standard error when it is an estimate; None: a full-split figure
    best_full: float | None = None  # the full-split figure of the kept weights, once measured
    best_step: int = -1
    bad_epochs: int = 0  # epoch ends in a row without a better validation loss
    base_lr: float = 0.0  # the peak learning rate the schedule scales
    lr_scale: float = 1.0  # halved after every non-finite step

    def global_step(self, steps_per_epoch: int) -> int:
        """The 0-based step of the whole schedule that comes next."""
        return self.epoch * steps_per_epoch + self.epoch_step

    def epoch_number(self) -> int:
        """The epoch, counted from 1, of the last step taken (the first epoch before any step)."""
        return self.epoch + 1 if self.epoch_step > 0 else max(1, self.epoch)

    @property
    def best_known(self) -> bool:
        """Whether any validation loss has been recorded."""
        return self.best_val_loss != math.inf

    @property
    def best_estimated(self) -> bool:
        """Whether the best figure is an estimate (the split was too large to read whole at each check)."""
        return self.best_stderr is not None

    def note_check(self, loss: float, stderr: float | None, full: float | None) -> bool:
        """Offer a check's figure (``stderr`` for an estimate; ``full``: the same weights' full-split figure,
        if measured) to keep-best; True when it is the best yet, and the caller keeps the weights."""
        if not loss < self.best_val_loss:
            return False
        self.best_val_loss, self.best_stderr, self.best_step = loss, stderr, self.step
        self.best_full = full if full is not None else (loss if stderr is None else None)
        return True


class LossLog:
    """A run's loss curve as its profile keeps it, in bounded space; readable from any thread.

    Training points are merged pairwise past HISTORY_POINTS, so the whole run stays drawn; events
    note such things as a fine-tune onto another corpus.
    """

    def __init__(self, history: History | None = None) -> None:
        history = history or History()
        self.train: list[TrainPoint] = list(history.train)
        self.val: list[ValPoint] = list(history.val)
        self.events: list[HistoryEvent] = list(history.events)
        self._lock = threading.Lock()  # a run host copies the points from another thread

    def add_train(self, step: int, loss: float, elapsed: float) -> None:
        """Record a training-loss point."""
        with self._lock:
            self.train.append(TrainPoint(step, round(loss, 5), round(elapsed, 2)))
            if len(self.train) > HISTORY_POINTS:
                self.train = _merged(self.train)

    def add_val(self, step: int, loss: float, elapsed: float) -> None:
        """Record a validation-loss point."""
        with self._lock:
            self.val.append(ValPoint(step, round(loss, 5), round(loss / LN2, 5), round(elapsed, 2)))

    def add_event(self, step: int, event: str, corpus: tuple[str, ...] | None = None) -> None:
        """Record something that happened at a step (e.g. 'fine-tune' onto another corpus)."""
        with self._lock:
            self.events.append(HistoryEvent(step, event, corpus))

    def points(self) -> tuple[list[TrainPoint], list[ValPoint]]:
        """Copies of the training and validation points."""
        with self._lock:
            return list(self.train), list(self.val)

    def history(self) -> History:
        """The curve as profile metadata holds it."""
        with self._lock:
            return History(tuple(self.train), tuple(self.val), tuple(self.events))


def _merged(train: list[TrainPoint]) -> list[TrainPoint]:
    pairs = zip(train[0::2], train[1::2], strict=False)
    merged = [TrainPoint(b.step, round((a.loss + b.loss) / 2, 5), b.elapsed_s) for a, b in pairs]
    if len(train) % 2:
        merged.append(train[-1])
    return merged


class Rate:
    """Throughput over the recent steps (exponentially weighted), in chars/s."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.chars = 0.0
        self.seconds = 0.0
        self.steps = 0

    def add(self, chars: int, seconds: float) -> None:
        """Count one step of ``chars`` characters that took ``seconds``."""
        if self.steps == 0:
            self.chars, self.seconds = float(chars), seconds
        else:
            self.chars += self.alpha * (chars - self.chars)
            self.seconds += self.alpha * (seconds - self.seconds)
        self.steps += 1

    def chars_per_s(self) -> float:
        """Recent characters per second (0 before any step)."""
        return self.chars / self.seconds if self.seconds > 0 else 0.0

    def seconds_per_step(self) -> float:
        """Recent seconds per step."""
        return self.seconds


@dataclass
class LoopTally:
    """Running sums the loop keeps between steps of one session (not saved in a profile)."""

    started_at: float = 0.0  # perf_counter when this session's training began
    last_save: float = 0.0
    rate: Rate = field(default_factory=Rate)
    epoch_loss: float = 0.0
    epoch_steps: int = 0
    window_loss: float = 0.0  # losses since the last recorded history point
    window_steps: int = 0
    record_every: int = 1
    bad_steps: int = 0  # non-finite steps in a row


@dataclass
class RunState:
    """Everything about a run that changes as it trains; only the training thread writes it."""

    progress: Progress
    history: LossLog = field(default_factory=LossLog)
    tally: LoopTally = field(default_factory=LoopTally)
    hidden: tuple[torch.Tensor, torch.Tensor] | None = None  # carried between the windows of an epoch
    best_weights: dict[str, torch.Tensor] | None = None  # CPU copy of the weights at the best validation
    saved_step: int = -1  # the step of the last successful save

    def elapsed(self) -> float:
        """Training seconds of this profile, earlier sessions included."""
        return self.progress.elapsed_before + time.perf_counter() - self.tally.started_at
