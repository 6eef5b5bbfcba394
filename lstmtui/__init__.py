"""lstmtui: train character-level LSTM language models in the terminal and watch them learn.

The Python API (``lstmtui.load``, ``lstmtui.train``, ``lstmtui.Run``, ``lstmtui.profiles``; docs/api.md)
is imported on first use, so ``import lstmtui`` and the command line start without torch.
Type checkers read the names from ``__init__.pyi``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

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


def __getattr__(name: str) -> object:
    """The API's names, imported from lstmtui.api on first use."""
    if name not in __all__:
        raise AttributeError(f"module 'lstmtui' has no attribute {name!r}")
    value = getattr(importlib.import_module("lstmtui.api"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
