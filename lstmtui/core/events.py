"""Typed events a training session emits to its subscribers.

Every event has ``to_dict()`` giving a JSON-ready dict whose ``event`` key names its kind;
these dicts are exactly the lines ``--log-jsonl`` writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base class of all training events."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict with its ``event`` name first."""
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class StateEvent(Event):
    """The session changed state: preparing, training, paused, stopping, stopped, finished, failed."""

    kind: ClassVar[str] = "state"
    state: str
    detail: str = ""


@dataclass(frozen=True)
class PrepareEvent(Event):
    """Progress of corpus preparation (reading, cleaning, encoding)."""

    kind: ClassVar[str] = "prepare"
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class FineTuneEvent(Event):
    """A profile trains on another corpus than its last run's: its weights carry over, its schedule starts
    afresh. ``step`` is where the profile's earlier training ended; ``added`` the characters its vocabulary
    gained (--extend-vocab), in vocabulary order."""

    kind: ClassVar[str] = "fine_tune"
    profile: str
    step: int
    old_corpus: tuple[str, ...]
    new_corpus: tuple[str, ...]
    added: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepEvent(Event):
    """Metrics after one optimisation step; ``epoch`` counts from 1, ``total_steps`` and ``eta_s`` are
    forecast from the loop as it runs (under a time budget, the step the budget will end at, and then
    ``forecast`` is true: the total moves with the machine's speed, so it is shown as approximate)."""

    kind: ClassVar[str] = "step"
    step: int
    epoch: int
    epoch_step: int
    steps_per_epoch: int
    total_steps: int
    loss: float
    lr: float
    chars_per_s: float
    elapsed_s: float
    eta_s: float
    skipped: bool = False
    forecast: bool = False


@dataclass(frozen=True)
class EvalEvent(Event):
    """Validation loss checked every ``eval_every`` steps (between epoch ends).

    With ``estimate`` true, ``val_loss`` estimates the full-split figure from fixed windows spread over
    the split, with standard error ``stderr``; ``best_val_loss`` is then the lowest of those estimates.
    """

    kind: ClassVar[str] = "eval"
    step: int
    epoch: int
    val_loss: float
    val_bpc: float
    best_val_loss: float
    elapsed_s: float
    estimate: bool = False
    stderr: float | None = None


@dataclass(frozen=True)
class EpochEvent(Event):
    """End of an epoch (counted from 1), with the full-split validation loss (nats per char) and bits per char.

    ``best_val_loss`` is the lowest figure keep-best compared; ``best_estimate`` says it is an estimate.
    """

    kind: ClassVar[str] = "epoch"
    epoch: int
    step: int
    train_loss: float
    val_loss: float
    val_bpc: float
    chars_per_s: float
    elapsed_s: float
    best_val_loss: float
    lr: float
    best_estimate: bool = False


@dataclass(frozen=True)
class SampleEvent(Event):
    """A sample of generated text, made from the current weights."""

    kind: ClassVar[str] = "sample"
    step: int
    epoch: int
    temperature: float
    prime: str
    text: str
    # share (0..1) of the text inside 20+ character runs copied from the corpus; None: not measured
    memorised: float | None = None


@dataclass(frozen=True)
class CheckpointEvent(Event):
    """The profile was saved."""

    kind: ClassVar[str] = "checkpoint"
    step: int
    epoch: int
    reason: str
    profile: str
    path: str
    seconds: float


@dataclass(frozen=True)
class WarningEvent(Event):
    """Something went wrong but training goes on (a skipped step, a failed save)."""

    kind: ClassVar[str] = "warning"
    step: int
    message: str


@dataclass(frozen=True)
class FinishedEvent(Event):
    """Training ended: ``reason`` is completed, stopped, early_stopped or diverged; ``best_val_loss`` is the
    full-split figure of the kept (best) weights."""

    kind: ClassVar[str] = "finished"
    reason: str
    step: int
    epoch: int
    best_val_loss: float
    best_val_bpc: float
    elapsed_s: float
    message: str = ""


@dataclass(frozen=True)
class FailedEvent(Event):
    """Training failed with an error; what was trained so far has been kept where possible."""

    kind: ClassVar[str] = "failed"
    message: str
    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # the config field of the setting to blame, if one is: each interface says how that setting is entered
    setting: str | None = None
