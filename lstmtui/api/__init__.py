"""lstmtui's public Python API: load a profile and generate, train from Python, list profiles.

Everything here is re-exported from ``lstmtui`` (see docs/api.md). Importing it loads no torch:
torch comes in when a model is loaded or a run is made.
"""

from lstmtui.api._generation import Model, load
from lstmtui.api._summary import ProfileSummary, TrainResult, profiles
from lstmtui.api._training import Run, TrainingError, train
from lstmtui.core.errors import ConfigError, CorpusError, LstmtuiError, ProfileError, VocabularyError
from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FineTuneEvent,
    FinishedEvent,
    PrepareEvent,
    SampleEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)

__all__ = [
    "CheckpointEvent",
    "ConfigError",
    "CorpusError",
    "EpochEvent",
    "EvalEvent",
    "Event",
    "FailedEvent",
    "FineTuneEvent",
    "FinishedEvent",
    "LstmtuiError",
    "Model",
    "PrepareEvent",
    "ProfileError",
    "ProfileSummary",
    "Run",
    "SampleEvent",
    "StateEvent",
    "StepEvent",
    "TrainResult",
    "TrainingError",
    "VocabularyError",
    "WarningEvent",
    "load",
    "profiles",
    "train",
]
