"""The user's keys.toml: binding ids of the key table mapped to other keys, checked before use.

    # $XDG_CONFIG_HOME/lstmtui/keys.toml (or $LSTMTUI_CONFIG/keys.toml)
    pause = "space"
    profiles = ["ctrl+o", "f2"]

Every problem (bad TOML, an unknown id, a value that is not a key) is reported in one line and
the entry skipped; the rest of the file still applies, and nothing raises.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lstmtui.core.errors import LstmtuiError
from lstmtui.core.userfiles import read_regular
from lstmtui.tui import keys

KEYS_FILE = "keys.toml"
MAX_KEYS_BYTES = 1 << 20  # a key table is a few hundred bytes
# A Textual key: modifiers joined by "+", then a key name or one character (never a comma or a space).
_KEY = re.compile(r"^(?:[a-z]+\+)*(?:[A-Za-z0-9_]+|[^\s,+]|\+)$")


def config_dir() -> Path:
    """$LSTMTUI_CONFIG, or the platform's user config directory for lstmtui."""
    env = os.environ.get("LSTMTUI_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("lstmtui", appauthor=False))


def keys_path() -> Path:
    """Where the app reads its key remapping from."""
    return config_dir() / KEYS_FILE


@dataclass(frozen=True)
class LoadedKeymap:
    """The usable entries of a keys.toml and a one-line message for each skipped one."""

    keymap: dict[str, str]
    problems: tuple[str, ...]
    path: Path


def load_keymap(path: Path | None = None) -> LoadedKeymap:
    """Read and check a keys.toml; an absent file is an empty keymap."""
    path = keys_path() if path is None else path
    try:
        # a regular file of sane size only: a FIFO or a device in its place never blocks the app's start
        raw = read_regular(path, "the key file", MAX_KEYS_BYTES, missing=b"")
    except LstmtuiError as exc:
        return LoadedKeymap({}, (str(exc),), path)
    try:
        data = _parse(raw)
    except (OSError, ValueError) as exc:
        return LoadedKeymap({}, (f"{path}: {_one_line(exc)}",), path)
    keymap: dict[str, str] = {}
    problems: list[str] = []
    known = keys.binding_ids()
    for binding_id, value in data.items():
        problem = _check(binding_id, value, known)
        if problem:
            problems.append(f"{path.name}: {problem}")
        else:
            keymap[binding_id] = ",".join([value] if isinstance(value, str) else value)
    return LoadedKeymap(keymap, tuple(problems), path)


def _parse(raw: bytes) -> dict[str, object]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError("reading it needs Python 3.11+ or the tomli package") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None


def _check(binding_id: str, value: object, known: frozenset[str]) -> str | None:
    """Why an entry cannot be used, or None."""
    if binding_id not in known:
        return f"no key is named {binding_id!r} (see `?` in the app for the names' keys, docs/tui.md for the names)"
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return f"{binding_id}: give a key as a string, or a list of strings"
    bad = [v for v in values if not _KEY.match(v)]
    if bad:
        return f'{binding_id}: {bad[0]!r} is not a key (examples: "p", "ctrl+o", "f2", "question_mark")'
    priority = keys.by_id(binding_id).priority and binding_id not in keys.STAND_ASIDE
    if priority and any(keys.is_printable(v) for v in values):
        # a priority binding acts before a text field sees the key: a typed letter would run it
        return f"{binding_id}: works even while typing, so it needs a key that types nothing (ctrl+..., f1...)"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
