"""User-facing errors: each one is shown as a single line and exits with status 2."""

from __future__ import annotations


class LstmtuiError(Exception):
    """An error caused by input or settings, shown to the user as one line; ``field`` names the setting to change."""

    exit_code = 2

    # The message names a setting in words ("hidden size must be ...", "set the corpus encoding to
    # latin-1"); ``field`` is that setting's config field ("hidden", "encoding"), so the interface
    # that knows how it is entered (the CLI's --hidden, a form's field) can add that where it reports.
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CorpusError(LstmtuiError):
    """The corpus cannot be read, decoded or used."""


class ConfigError(LstmtuiError):
    """A setting is impossible or out of range."""


class ProfileError(LstmtuiError):
    """A profile name is bad, or a profile is missing, corrupt or newer than this version."""


class ProfileLockedError(ProfileError):
    """Another process is writing this profile."""


class VocabularyError(LstmtuiError):
    """Text contains characters the model's vocabulary lacks."""
