"""Training: the session behind both the TUI and `lstmtui train`, and the parts it is made of.

- ``session``: TrainingSession (commands, events, the run: prepare, train, save).
- ``commands``: the queue that carries commands from other threads to step boundaries.
- ``prepare``: from the request and the profile's last save to a model ready to train.
- ``resolve``: pure functions resolving the settings (resume overrides, when the time-budget plan applies).
- ``setup``: what a prepared session trains with, and the memory check made before building it.
- ``loop``: TrainingLoop, step -> maybe evaluate -> maybe sample -> maybe save.
- ``step``: one optimisation step, its learning rate, recovery from non-finite weights.
- ``deferred``: runs of steps the host does not wait for, read back once (every step on one CPU process).
- ``decisions``: what rank 0 decides for every rank at a read (commands, the budget's clock).
- ``progress``: Progress (where a run stands), LossLog (its loss curve), Rate (its speed), RunState.
- ``evaluation``: evaluate() (the validation loss) and training samples.
- ``profile_io``: what a session saves into its profile and restores from it.
"""

from lstmtui.core.device import available_memory
from lstmtui.core.training.commands import Command
from lstmtui.core.training.evaluation import evaluate
from lstmtui.core.training.loop import MAX_BAD_STEPS, TrainingLoop
from lstmtui.core.training.progress import HISTORY_POINTS, LN2, LossLog, Progress, Rate, RunState
from lstmtui.core.training.session import LIVE_MEMO_MAX_CHARS, TrainingSession
from lstmtui.core.training.setup import check_memory

__all__ = [
    "HISTORY_POINTS",
    "LIVE_MEMO_MAX_CHARS",
    "LN2",
    "MAX_BAD_STEPS",
    "Command",
    "LossLog",
    "Progress",
    "Rate",
    "RunState",
    "TrainingLoop",
    "TrainingSession",
    "available_memory",
    "check_memory",
    "evaluate",
]
