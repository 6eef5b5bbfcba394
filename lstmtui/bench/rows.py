"""One line of the bench table, the section names, and the progress-log type every section takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

SECTIONS = ("ceiling", "training", "quality", "generation", "tui", "service", "startup")
LN2 = math.log(2.0)
Log = Callable[[str], None]


def row(
    section: str,
    name: str,
    value: float | None,
    unit: str = "",
    detail: str = "",
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One line of the table: {"section", "name", "value", "unit", "detail", "target", "met"}."""
    return {
        "section": section,
        "name": name,
        "value": value,
        "unit": unit,
        "detail": detail,
        "target": target,
        "met": met,
    }


def quiet(_msg: str) -> None:
    """A log that drops progress lines."""
