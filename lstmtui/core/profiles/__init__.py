"""Profiles: named trained models on disk (store), their typed metadata (meta), locks and archives."""

from lstmtui.core.profiles.locks import ProfileLock
from lstmtui.core.profiles.meta import FORMAT_VERSION, ProfileMeta
from lstmtui.core.profiles.names import MAX_NAME, validate_name
from lstmtui.core.profiles.parts import (
    CleaningRecord,
    CorpusProvenance,
    FileEntry,
    History,
    HistoryEvent,
    Progress,
    RngState,
    SamplingDefaults,
    SavedSample,
    TrainPoint,
    ValPoint,
    Versions,
)
from lstmtui.core.profiles.store import ProfileInfo, ProfileStore, default_home

__all__ = [
    "FORMAT_VERSION",
    "MAX_NAME",
    "CleaningRecord",
    "CorpusProvenance",
    "FileEntry",
    "History",
    "HistoryEvent",
    "ProfileInfo",
    "ProfileLock",
    "ProfileMeta",
    "ProfileStore",
    "Progress",
    "RngState",
    "SamplingDefaults",
    "SavedSample",
    "TrainPoint",
    "ValPoint",
    "Versions",
    "default_home",
    "validate_name",
]
