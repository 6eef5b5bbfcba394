"""Typed, bounded reads from parsed JSON, for meta.json: every failure is one line naming the profile."""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from lstmtui.core.errors import ProfileError

MAX_COUNT = 1 << 62  # steps, epochs, byte and character counts
MAX_TEXT = 4096  # a path, a device description, a timestamp
MAX_LOSS = 1e6
SHA_RE = re.compile(r"[0-9a-f]{64}")

_MISSING: Any = object()


class JsonObject:
    """Typed reads from one JSON object; each failure is a ProfileError naming the profile and the key."""

    def __init__(self, label: str, where: str, data: Any, what: str | None = None) -> None:
        self.label, self.where = label, where
        if not isinstance(data, dict):
            self.fail(what or f"{_quoted(where)} must be a JSON object, not {short(data)}")
        self.data: dict[str, Any] = data

    def fail(self, problem: str) -> NoReturn:
        """Raise ProfileError '<label>: <problem>'."""
        raise ProfileError(f"{self.label}: {problem}")

    def path(self, key: str) -> str:
        """How messages name a key: 'key' at the top, part.key below."""
        return f"{self.where}.{key}" if self.where else f"'{key}'"

    def part(self, key: str) -> JsonObject:
        """A nested object (an absent one reads as empty)."""
        return JsonObject(self.label, f"{self.where}.{key}" if self.where else key, self.data.get(key, {}))

    def raw(self, key: str) -> Any:
        """The value, or _MISSING when the key is absent or null (null is allowed where None is the default)."""
        value = self.data.get(key, _MISSING)
        return _MISSING if value is None else value

    def _present(self, key: str, default: Any) -> Any:
        value = self.data.get(key, _MISSING)
        if value is None and default is not None:
            self.fail(f"{self.path(key)} must not be null")
        return _MISSING if value is None else value

    def whole(self, key: str, default: Any, low: int = 0, high: int = MAX_COUNT) -> Any:
        """A whole number in [low, high] (not a bool)."""
        value = self._present(key, default)
        if value is _MISSING:
            return default
        if not is_int(value) or not low <= value <= high:
            bounds = f">= {low}" if high == MAX_COUNT else f"in [{low}, {high}]"
            self.fail(f"{self.path(key)} must be a whole number {bounds}, not {short(value)}")
        return value

    def number(self, key: str, default: Any, low: float = 0.0, high: float = MAX_LOSS) -> Any:
        """A finite number in [low, high]."""
        value = self._present(key, default)
        if value is _MISSING:
            return default
        number = as_float(value)
        if number is None or not math.isfinite(number) or not low <= number <= high:
            self.fail(f"{self.path(key)} must be a number in [{low:g}, {high:g}], not {short(value)}")
        return number

    def loss(self, key: str) -> float | None:
        """A loss >= 0; a non-finite one (a diverged run) reads as None: no best yet."""
        value = self.raw(key)
        if value is _MISSING:
            return None
        number = as_float(value)
        if number is None:
            self.fail(f"{self.path(key)} must be a number, not {short(value)}")
        if not math.isfinite(number):
            return None
        if number < 0:
            self.fail(f"{self.path(key)} must be a number >= 0, not {short(value)}")
        return number

    def flag(self, key: str, default: bool) -> bool:
        """true or false."""
        value = self._present(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(f"{self.path(key)} must be true or false, not {short(value)}")
        return value

    def text(self, key: str, default: Any, limit: int = MAX_TEXT) -> Any:
        """A string of at most limit characters."""
        value = self._present(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.fail(f"{self.path(key)} must be a string, not {short(value)}")
        if len(value) > limit:
            self.fail(f"{self.path(key)} is longer than {limit} characters")
        return value

    def texts(self, key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        """A list of strings (each matching pattern, if given)."""
        value = self._present(key, ())
        value = [] if value is _MISSING else value
        if not isinstance(value, list) or not all(isinstance(s, str) and len(s) <= MAX_TEXT for s in value):
            self.fail(f"{self.path(key)} must be a list of strings, not {short(value)}")
        if pattern is not None and not all(pattern.fullmatch(s) for s in value):
            self.fail(f"{self.path(key)} must list sha256 hex digests")
        return tuple(value)


def is_int(value: Any) -> bool:
    """A JSON whole number (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_float(value: Any) -> float | None:
    """An int or float as a float (NaN and infinity included), or None if it is neither or too large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def short(value: Any, limit: int = 40) -> str:
    """A bounded, printable repr for error messages (huge ints and control characters included)."""
    try:
        text = repr(value)
    except ValueError:
        return "<a number too long to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _quoted(where: str) -> str:
    return where if "." in where or "[" in where else f"'{where}'"


def is_words(value: Any, count: int) -> bool:
    """A list of ``count`` unsigned 32-bit whole numbers."""
    return isinstance(value, list) and len(value) == count and all(is_int(v) and 0 <= v < 1 << 32 for v in value)


def is_unit(value: Any) -> bool:
    """A number in [0, 1)."""
    number = as_float(value)
    return number is not None and 0.0 <= number < 1.0


def is_bounded(value: Any) -> bool:
    """A finite number of sane size (whole numbers up to 2**62)."""
    if is_int(value):
        return abs(value) <= MAX_COUNT
    return isinstance(value, float) and math.isfinite(value)
