"""SamplingConfig: how each next character is picked, and the bounds every setting must respect.

Errors name the setting in words (``SETTING_NAMES``) and carry the field (``ConfigError.field``),
not a command-line flag: the CLI and the TUI each say how the value was entered.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from lstmtui.core.errors import ConfigError

MAX_LENGTH = 10**8
MAX_BEAM = 256

# How errors name each field of SamplingConfig.
SETTING_NAMES = {
    "temperature": "temperature",
    "top_k": "top-k",
    "top_p": "top-p",
    "beam": "beam width",
    "length": "length",
    "stop": "stop strings",
    "stop_chars": "stop characters",
    "repetition_penalty": "repetition penalty",
    "repetition_window": "repetition window",
    "no_repeat_ngram": "no-repeat n-gram length",
    "seed": "seed",
}


@dataclass
class SamplingConfig:
    """How to pick each next character.

    temperature: 0 is greedy (argmax); below 1 sharper, above 1 flatter.
    top_k: keep only the k most likely characters (0 = off).
    top_p: nucleus sampling, keep the smallest set of most likely characters whose mass reaches p
        (1.0 = off).
    beam: beam search width (0 = off); returns the most likely continuation of the given length
        it finds under the model. The greedy continuation is always a candidate, so the result is
        at least as likely as greedy. Temperature, top-k, top-p and the repetition guards do not
        apply; stops do.
    length: characters to generate per sample.
    stop: stop after emitting any of these strings (the stop string is included).
    stop_chars: stop after emitting any of these characters (included).
    repetition_penalty: > 1 divides the logits of characters seen in the last
        ``repetition_window`` emitted characters (CTRL-style); 1.0 = off.
    no_repeat_ngram: forbid a character that would repeat an n-gram already emitted, which
        breaks greedy / low-temperature loops (0 = off; 8-16 suits characters).
    seed: random seed for reproducible samples (None = fresh randomness).
    """

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    beam: int = 0
    length: int = 500
    stop: tuple[str, ...] = ()
    stop_chars: str = ""
    repetition_penalty: float = 1.0
    repetition_window: int = 32
    no_repeat_ngram: int = 0
    seed: int | None = None

    def validate(self) -> SamplingConfig:
        """Raise ConfigError for an impossible setting; return self."""
        check_number("temperature", self.temperature, 0.0, 100.0)
        check_whole("top_k", self.top_k, 0, 1 << 20)
        check_number("top_p", self.top_p, 0.0, 1.0, low_open=True)
        check_whole("beam", self.beam, 0, MAX_BEAM)
        check_whole("length", self.length, 0, MAX_LENGTH)
        check_number("repetition_penalty", self.repetition_penalty, 1.0, 100.0)
        check_whole("repetition_window", self.repetition_window, 1, 1 << 20)
        check_whole("no_repeat_ngram", self.no_repeat_ngram, 0, 1 << 16)
        if self.seed is not None:
            check_whole("seed", self.seed, 0, 2**63 - 1)
        self.stop = _stop_strings(self.stop)
        if not isinstance(self.stop_chars, str):
            raise ConfigError(f"{SETTING_NAMES['stop_chars']} must be text", "stop_chars")
        return self

    @property
    def method(self) -> str:
        """A short name of the decoding method these settings select."""
        if self.beam > 0:
            return f"beam {self.beam}"
        if self.temperature == 0:
            return "greedy"
        parts = [f"T={self.temperature:g}"]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1.0:
            parts.append(f"top-p {self.top_p:g}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        """Build from a dict (e.g. a profile's "sampling" defaults), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("stop"), list):
            values["stop"] = tuple(values["stop"])
        return cls(**values).validate()


def _stop_strings(stop: Any) -> tuple[str, ...]:
    """The stop setting as a tuple of non-empty strings (one string is one stop)."""
    name = SETTING_NAMES["stop"]
    if isinstance(stop, str):
        stop = (stop,)
    try:
        stop = tuple(stop)
    except TypeError:
        raise ConfigError(f"{name} must be text, not {stop!r}", "stop") from None
    if any(not isinstance(s, str) or not s for s in stop):
        raise ConfigError(f"{name} must be non-empty text", "stop")
    return stop


def check_whole(field: str, value: Any, low: int, high: int) -> None:
    """ConfigError unless ``value`` is an int in [low, high]; ``field`` is a SamplingConfig field."""
    name = SETTING_NAMES[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, not {value!r}", field)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}", field)


def check_number(field: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    """ConfigError unless ``value`` is a finite number in [low, high] (or (low, high])."""
    name = SETTING_NAMES[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}", field)
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must be in {bracket}{low:g}, {high:g}], not {value:g}", field)
