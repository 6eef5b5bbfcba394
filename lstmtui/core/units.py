"""How figures read on screen: losses, durations ("3m08s"), counts ("1.2M"), byte sizes, terminal-safe text.

The TUI and the commands both format through here, so a figure reads the same everywhere. Losses are
kept in nats per character and shown in one unit throughout, bits or nats per character (``--units``,
``$LSTMTUI_UNITS``, the TUI's units key), the unit named once where they are shown; an estimate reads
``≈1.234 ±0.012``.
"""

from __future__ import annotations

import math
import os

from lstmtui.core.errors import ConfigError

MISSING = "–"  # what a figure that does not exist yet shows
UNITS = ("bits", "nats")  # per character; bits first: the default
UNITS_ENV = "LSTMTUI_UNITS"
_UNIT_LABELS = {"bits": "bits/char", "nats": "nats/char"}
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_COUNT_UNITS = (("G", 1e9), ("M", 1e6), ("k", 1e3))
_SIZE_UNITS = (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10))


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def format_duration(seconds: float | None, missing: str = MISSING) -> str:
    """45 -> '45s', 188 -> '3m08s', 3720 -> '1h02m'; ``missing`` for None, negative or not finite."""
    if not _known(seconds) or seconds < 0:
        return missing
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def format_count(n: float | None, digits: int = 1, missing: str = MISSING) -> str:
    """1234 -> '1.2k', 3_300_000 -> '3.3M' (``digits`` decimals); below 1000 a whole number."""
    if not _known(n):
        return missing
    for unit, scale in _COUNT_UNITS:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return f"{n:.0f}"


def format_size(n_bytes: int) -> str:
    """A byte count in binary units: 1536 -> '1.5 kB', 3 << 20 -> '3.0 MB'."""
    for unit, scale in _SIZE_UNITS:
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} B"


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '1.5h' -> seconds; ValueError names what was typed."""
    clean = text.strip().lower()
    try:
        if clean and clean[-1] in _DURATION_UNITS:
            return float(clean[:-1]) * _DURATION_UNITS[clean[-1]]
        return float(clean)
    except ValueError:
        raise ValueError(f"not a duration: {clean!r} (use e.g. 90s, 15m, 1h)") from None


def is_finite_number(value: object) -> bool:
    """True for an int or float that is finite (not a bool, NaN, infinity or anything else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def printable(text: str) -> str:
    """Text safe for a terminal: control characters and lone surrogates escaped, never interpreted."""
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out).encode("utf-8", "backslashreplace").decode("utf-8")


def loss_unit(choice: str | None = None) -> str:
    """The unit losses are shown in: ``choice``, else $LSTMTUI_UNITS, else bits; ConfigError for anything else."""
    value = choice if choice is not None else os.environ.get(UNITS_ENV) or UNITS[0]
    unit = value.strip().lower()
    if unit not in UNITS:
        if choice is None:
            raise ConfigError(f"${UNITS_ENV} must be bits or nats, not {printable(value)!r}")
        raise ConfigError(f"units must be bits or nats, not {printable(value)!r}", "units")
    return unit


def other_unit(unit: str) -> str:
    """The unit a switch goes to."""
    return UNITS[1 - UNITS.index(unit)]


def unit_label(unit: str) -> str:
    """'bits/char' or 'nats/char'."""
    return _UNIT_LABELS[unit]


def in_unit(nats: float, unit: str) -> float:
    """A loss in nats per character, in ``unit``."""
    return nats / math.log(2.0) if unit == "bits" else nats


def format_loss(
    nats: float | None,
    unit: str,
    digits: int = 3,
    *,
    estimate: bool = False,
    stderr: float | None = None,
    missing: str = MISSING,
) -> str:
    """A loss given in nats, in ``unit`` without the unit's name: '1.234'; an estimate '≈1.234', with its
    standard error (``stderr``, in nats) '≈1.234 ±0.012'; ``missing`` when there is none (None, inf, NaN)."""
    if not _known(nats):
        return missing
    text = f"{in_unit(nats, unit):.{digits}f}"
    if not estimate and stderr is None:
        return text
    spread = f" ±{in_unit(stderr, unit):.{digits}f}" if _known(stderr) else ""
    return f"≈{text}{spread}"
