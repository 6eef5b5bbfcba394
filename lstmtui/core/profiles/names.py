"""Profile names: one path component of letters, digits, '-', '_' and '.', never hidden, at most 64 long."""

from __future__ import annotations

import re

from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles.jsonfields import short

MAX_NAME = 64
NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_name(name: str) -> str:
    """Return the name if it is a valid profile name; raise ProfileError saying why it is not."""
    if not isinstance(name, str) or not name:
        raise ProfileError("a profile name must not be empty")
    shown = short(name)
    if len(name) > MAX_NAME:
        raise ProfileError(f"profile name {shown} is {len(name)} characters long; the limit is {MAX_NAME}")
    if not NAME_RE.fullmatch(name):
        raise ProfileError(
            f"profile name {shown} may only hold letters, digits, '-', '_' and '.' "
            "(no '/', spaces or control characters)"
        )
    if name.startswith("."):
        raise ProfileError(f"profile name {shown} must not start with '.'")
    return name
