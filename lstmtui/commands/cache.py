"""`lstmtui cache`: list the corpus cache's entries, clear it, or set its size bound."""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time

from lstmtui.core.errors import ConfigError, LstmtuiError

SOURCES_SHOWN = 2  # source paths listed per entry before "+N more"


class CacheError(LstmtuiError):
    """The cache directory cannot be read or changed."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `cache` and its actions."""
    parser = subparsers.add_parser(
        "cache",
        help="list, clear or bound the corpus cache",
        description="List, clear or bound the cache of encoded corpora.",
        epilog=(
            "Encoded corpora are cached, memory-mapped, so the next run on the same corpus starts at once. "
            "Without an action, list the entries. The cache lives in $LSTMTUI_CACHE or the platform's user "
            "cache directory. It is bounded: 5 GB by default, `lstmtui cache limit SIZE` saves another bound, "
            "$LSTMTUI_CACHE_MAX overrides both; the least recently used entries are removed when a new one "
            "makes it too large."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    p = actions.add_parser("list", help="list the entries: sources, size, last use, characters")
    # its own dest: a subparser's default would otherwise overwrite a --json given before ACTION
    p.add_argument("--json", dest="list_json", action="store_true", help="print one JSON object instead (for scripts)")
    actions.add_parser("clear", help="remove every entry (runs using one keep reading it)")
    p = actions.add_parser(
        "limit",
        help="show or set the size bound",
        description=(
            "Show the size bound, or save a new one: SIZE such as 5G or 500M, 0 to turn the cache off, "
            "or default. $LSTMTUI_CACHE_MAX, when set, overrides the saved bound."
        ),
    )
    p.add_argument("size", nargs="?", metavar="SIZE", help="the new bound: e.g. 10G, 500M, 0 (off) or default")
    parser.add_argument("--json", action="store_true", help="with no action: list as one JSON object")
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Carry out one cache action."""
    from lstmtui.core.corpus import default_cache_dir

    root = default_cache_dir()
    action = args.action or "list"
    try:
        if action == "clear":
            return _clear(root)
        if action == "limit":
            return _limit(root, args.size)
        return _list_json(root) if args.json or getattr(args, "list_json", False) else _list(root)
    except OSError as exc:
        why = "its corpora folder is a symbolic link, which lstmtui does not follow" if exc.errno == errno.ELOOP else ""
        raise CacheError(f"cannot use the cache directory {root}: {why or exc.strerror or exc}") from None


def _summary(root) -> tuple[list, int, object]:
    from lstmtui.core.corpus.cache_entries import cache_limit, list_entries

    entries = list_entries(root)
    return entries, sum(e.size for e in entries), cache_limit(root)


def _list(root) -> int:
    from lstmtui.core.units import format_count, format_size, printable

    entries, total, limit = _summary(root)
    print(f"corpus cache: {printable(str(root / 'corpora'))}")
    if entries:
        rows = [("ENTRY", "SIZE", "LAST USED", "CHARS", "SOURCES")]
        for e in reversed(entries):  # most recently used first
            sources = ", ".join(printable(p) for p in e.paths[:SOURCES_SHOWN]) or "?"
            if len(e.paths) > SOURCES_SHOWN:
                sources += f" +{len(e.paths) - SOURCES_SHOWN} more"
            if not e.complete:
                sources += " (incomplete)"
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
            chars = format_count(e.n_chars) if e.n_chars is not None else "?"
            rows.append((e.key[:12], format_size(e.size), when, chars, sources))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
    print(f"{count}, {format_size(total)} of {_bound(limit)}")
    return 0


def _bound(limit) -> str:
    from lstmtui.core.units import format_size

    size = "no cache (the bound is 0)" if limit.max_bytes == 0 else format_size(limit.max_bytes)
    where = {
        "LSTMTUI_CACHE_MAX": "set by $LSTMTUI_CACHE_MAX",
        "settings": "set by `lstmtui cache limit`",
        "default": "the default; change it with `lstmtui cache limit SIZE` or $LSTMTUI_CACHE_MAX",
    }[limit.source]
    return f"{size} ({where})"


def _list_json(root) -> int:
    entries, total, limit = _summary(root)
    out = {
        "directory": str(root / "corpora"),
        "total_bytes": total,
        "max_bytes": limit.max_bytes,
        "limit_source": limit.source,
        "entries": [
            {
                "key": e.key,
                "size_bytes": e.size,
                "last_used": e.last_used,
                "n_chars": e.n_chars,
                "paths": list(e.paths),
                "complete": e.complete,
            }
            for e in reversed(entries)
        ],
    }
    print(json.dumps(out, indent=2))
    return 0


def _clear(root) -> int:
    from lstmtui.core.corpus.cache_entries import clear_cache
    from lstmtui.core.units import format_size, printable

    report = clear_cache(root)
    print(f"removed {report.entries} entr{'y' if report.entries == 1 else 'ies'} ({format_size(report.freed)})")
    if report.in_use:
        print(f"kept {len(report.in_use)} temporary file(s) of runs writing the cache now")
    if report.left:
        shown = ", ".join(printable(n) for n in report.left[:5]) + (" ..." if len(report.left) > 5 else "")
        print(f"left {len(report.left)} file(s) lstmtui did not write: {shown}", file=sys.stderr)
    return 0


def _limit(root, size: str | None) -> int:
    from lstmtui.core.corpus.cache_entries import LIMIT_ENV, cache_limit, parse_size, save_cache_limit

    if size is not None:
        if size.strip().lower() == "default":
            value = None
        else:
            try:
                value = parse_size(size)
            except ValueError:
                raise ConfigError(
                    f"cache bound {size!r} is not a size; use e.g. 10G, 500M, 0 (no cache) or default"
                ) from None
        save_cache_limit(root, value)
    limit = cache_limit(root)
    print(f"cache bound: {_bound(limit)}")
    if size is not None and limit.source == LIMIT_ENV:
        print(f"note: ${LIMIT_ENV} is set and overrides the saved bound", file=sys.stderr)
    return 0
