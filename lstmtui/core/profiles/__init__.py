"""Profiles: named trained models on disk (store), their typed metadata (meta), locks and archives."""

from lstmtui.core.profiles.meta import FORMAT_VERSION, ProfileMeta
from lstmtui.core.profiles.parts import (
    CleaningRecord,
    CorpusProvenance,
    FileEntry,
    History,
    HistoryEvent,
    Progress,
    RngState,
    SamplingDefaults,
    TrainPoint,
    ValPoint,
    Versions,
)
from lstmtui.core.profiles.store import (
    MAX_NAME,
    ProfileInfo,
    ProfileStore,
    default_home,
    validate_name,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_NAME",
    "CleaningRecord",
    "CorpusProvenance",
    "FileEntry",
    "History",
    "HistoryEvent",
    "ProfileInfo",
    "ProfileMeta",
    "ProfileStore",
    "Progress",
    "RngState",
    "SamplingDefaults",
    "TrainPoint",
    "ValPoint",
    "Versions",
    "default_home",
    "validate_name",
]
