"""What rank 0 decides for every rank at a read: commands, the clock-driven learning rate, the budget's end.

Anything a rank would decide from its own clock, its own command queue or its own validation figure
is decided once, by rank 0, and shared in the read that ends each chunk of steps (deferred.py): a
rank deciding on its own would leave a collective waiting or let the weights drift apart. A single
process goes through the same decisions; sharing them is then the identity.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass

from lstmtui.core.distributed import World
from lstmtui.core.training.commands import Commands
from lstmtui.core.training.evaluation import ValFigure

NO_LR = 0.0  # the learning rate value that means "unchanged" (a set learning rate is always > 0)
SAVE_REASONS = ("", "requested", "periodic")


@dataclass(frozen=True)
class Decision:
    """Rank 0's decision at a read, the same on every rank once shared."""

    stop: bool = False  # asked of any rank (a signal, `lstmtui stop`, the run socket)
    pause: bool = False
    save: str = ""  # "requested", "periodic" (one is due), or "" for none
    lr: float | None = None  # a new peak learning rate
    time_fraction: float = 0.0  # of the time budget spent: drives the learning rate's schedule
    over_budget: bool = False  # the time budget's end is reached

    def values(self) -> list[float]:
        """The decision as rank 0 shares it (all but ``stop``, which every rank adds its part to)."""
        _stop, pause, save, lr, fraction, over = astuple(self)
        return [float(pause), float(SAVE_REASONS.index(save)), lr or NO_LR, fraction, float(over)]

    @classmethod
    def from_values(cls, values: list[float]) -> Decision:
        """The decision from the shared values: the summed stop requests, then rank 0's ``values()``."""
        stop, pause, save, lr, fraction, over = values
        return cls(stop > 0, pause > 0, SAVE_REASONS[round(save)], lr if lr > 0 else None, fraction, over > 0)


def decide(commands: Commands, *, elapsed: float, deadline: float, save_due: bool) -> Decision:
    """Rank 0's decision from its command queue and clock (``deadline`` <= 0: no time budget)."""
    commands.take()
    return Decision(
        stop=commands.stopping,
        pause=commands.paused,
        save="requested" if commands.take_save() else "periodic" if save_due else "",
        lr=commands.take_lr(),
        time_fraction=elapsed / deadline if deadline > 0 else 0.0,
        over_budget=deadline > 0 and elapsed >= deadline,
    )


def share_figure(world: World, figure: ValFigure | None) -> ValFigure:
    """Rank 0's validation figure on every rank (the others pass None): rank 0 alone validates."""
    if not world.joined:
        return figure if figure is not None else ValFigure(math.nan)
    f = figure if figure is not None else ValFigure(math.nan)
    has_stderr = f.stderr is not None
    values = [f.loss, f.stderr if has_stderr else 0.0, float(has_stderr), float(f.estimate), float(f.chars), f.seconds]
    loss, stderr, has_stderr, estimate, chars, seconds = world.share(values)
    return ValFigure(loss, stderr if has_stderr else None, estimate > 0, int(chars), seconds)
