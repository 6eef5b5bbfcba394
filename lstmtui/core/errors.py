"""User-facing errors: each one is shown as a single line and exits with status 2."""

from __future__ import annotations


class LstmtuiError(Exception):
    """An error caused by input or settings, shown to the user as one line."""

    exit_code = 2


class CorpusError(LstmtuiError):
    """The corpus cannot be read, decoded or used."""


class ConfigError(LstmtuiError):
    """A setting is impossible or out of range; ``field`` names the config field to blame, if one is."""

    # The message names the setting in words ("hidden size must be ..."); the interface that knows
    # how the setting is entered (the CLI's --hidden, a form's field) adds that where it reports.
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProfileError(LstmtuiError):
    """A profile name is bad, or a profile is missing, corrupt or newer than this version."""


class ProfileLockedError(ProfileError):
    """Another process is writing this profile."""


class VocabularyError(LstmtuiError):
    """Text contains characters the model's vocabulary lacks."""
