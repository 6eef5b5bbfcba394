"""How figures read on screen: durations ("3m08s"), counts ("1.2M"), byte sizes, terminal-safe text; "15m" parsed.

The TUI and the commands both format through here, so a figure reads the same everywhere.
"""

from __future__ import annotations

import math

MISSING = "–"  # what a figure that does not exist yet shows
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
