# The names lstmtui's module __getattr__ imports from lstmtui.api on first use, for type checkers.
from lstmtui.api import CheckpointEvent as CheckpointEvent
from lstmtui.api import ConfigError as ConfigError
from lstmtui.api import CorpusError as CorpusError
from lstmtui.api import EpochEvent as EpochEvent
from lstmtui.api import EvalEvent as EvalEvent
from lstmtui.api import Event as Event
from lstmtui.api import FailedEvent as FailedEvent
from lstmtui.api import FineTuneEvent as FineTuneEvent
from lstmtui.api import FinishedEvent as FinishedEvent
from lstmtui.api import LstmtuiError as LstmtuiError
from lstmtui.api import Model as Model
from lstmtui.api import PrepareEvent as PrepareEvent
from lstmtui.api import ProfileError as ProfileError
from lstmtui.api import ProfileSummary as ProfileSummary
from lstmtui.api import Run as Run
from lstmtui.api import SampleEvent as SampleEvent
from lstmtui.api import StateEvent as StateEvent
from lstmtui.api import StepEvent as StepEvent
from lstmtui.api import TrainingError as TrainingError
from lstmtui.api import TrainResult as TrainResult
from lstmtui.api import VocabularyError as VocabularyError
from lstmtui.api import WarningEvent as WarningEvent
from lstmtui.api import load as load
from lstmtui.api import profiles as profiles
from lstmtui.api import train as train

__version__: str
__all__: list[str]
