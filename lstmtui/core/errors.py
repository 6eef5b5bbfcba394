"""User-facing errors: each one is shown as a single line and exits with status 2."""


class LstmtuiError(Exception):
    """An error caused by input or settings, shown to the user as one line."""

    exit_code = 2


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
