"""The corpus cache's entries: listing them, the size bound, least-recently-used eviction, clearing.

An entry is ``<key>.npy`` (the ids) and ``<key>.json`` (its header) in ``<cache dir>/corpora``;
its last use is the header file's modification time, which a cache hit renews. The bound is
``$LSTMTUI_CACHE_MAX`` if set, else the limit saved in ``<cache dir>/settings.json`` (``lstmtui
cache limit``), else ``DEFAULT_LIMIT``; ``0`` turns the cache off. After a new entry is written the
least recently used others are removed until the total fits; the new entry is kept even when it
alone is larger (its run is using it).

Removal only unlinks: a training that has an entry memory-mapped keeps reading the file it
mapped (on Linux and macOS an unlinked file lives on while mapped), and nothing here ever
truncates or rewrites a file in place. Only regular files whose names and contents are those the
cache writes are removed, through a directory descriptor opened without following links, so a
symbolic link, a FIFO or another program's file in the cache directory is never deleted or opened.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from lstmtui.core.errors import ConfigError

DEFAULT_LIMIT = 5 << 30
LIMIT_ENV = "LSTMTUI_CACHE_MAX"
SETTINGS_FILE = "settings.json"
CORPORA_DIR = "corpora"
INDEX_FILE = "hashes.json"
STALE_TMP_S = 24 * 3600
NPY_MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 64 << 20  # a vocabulary of every Unicode character is about 10 MB of JSON
_ENTRY_RE = re.compile(r"([0-9a-f]{64})\.(npy|json)")
_TMP_RE = re.compile(r"\.(?:[0-9a-f]{64}\.(?:npy|json)|hashes\.json|spool)\.[0-9a-f.]+\.tmp")
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)i?b?", re.IGNORECASE)
_SIZE_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DIR_FD = (
    os.open in os.supports_dir_fd
    and os.unlink in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
)


@dataclass(frozen=True)
class CacheEntry:
    """One cached corpus: its key, bytes on disk, last use, and what the header says about it."""

    key: str
    size: int
    last_used: float
    n_chars: int | None = None
    paths: tuple[str, ...] = ()
    complete: bool = True  # both files there and the header readable


@dataclass(frozen=True)
class CacheLimit:
    """The cache's size bound in bytes (0: the cache is off) and where it was set."""

    max_bytes: int
    source: str  # "LSTMTUI_CACHE_MAX", "settings" or "default"


@dataclass
class ClearReport:
    """What ``clear_cache`` removed, and the files it left because the cache did not write them."""

    entries: int = 0
    freed: int = 0
    left: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)  # temporary files of runs writing right now


def parse_size(text: str) -> int:
    """'5G', '500 MB', '1.5GiB', '1024' -> bytes (binary units); ValueError for anything else."""
    m = _SIZE_RE.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a size; use e.g. 5G, 500M or 0")
    return int(float(m.group(1)) * _SIZE_SCALE[m.group(2).lower()])


def cache_limit(root: Path) -> CacheLimit:
    """The bound in force: $LSTMTUI_CACHE_MAX, else the saved setting, else ``DEFAULT_LIMIT``."""
    env = os.environ.get(LIMIT_ENV, "").strip()
    if env:
        try:
            return CacheLimit(parse_size(env), LIMIT_ENV)
        except ValueError:
            raise ConfigError(
                f"{LIMIT_ENV}={env!r} is not a size; use e.g. 5G, 500M, or 0 to turn the cache off"
            ) from None
    saved = _read_settings(root).get("max_bytes")
    if isinstance(saved, int) and not isinstance(saved, bool) and saved >= 0:
        return CacheLimit(saved, "settings")
    return CacheLimit(DEFAULT_LIMIT, "default")


def save_cache_limit(root: Path, max_bytes: int | None) -> None:
    """Save the bound in ``<root>/settings.json``; None returns to the default. OSError if it cannot be written."""
    settings = _read_settings(root)
    if max_bytes is None:
        settings.pop("max_bytes", None)
    else:
        settings["max_bytes"] = int(max_bytes)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{SETTINGS_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
        os.replace(tmp, root / SETTINGS_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def _read_settings(root: Path) -> dict:
    try:
        value = json.loads(read_regular_file(root / SETTINGS_FILE, 1 << 16))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_regular_file(path: Path, limit: int) -> bytes:
    """A regular file's bytes; OSError if it is missing, not a regular file (never blocking on a FIFO) or too large."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    data = _read_regular(fd, limit)
    if data is None:
        raise OSError(errno.EINVAL, f"not a regular file of at most {limit} bytes", str(path))
    return data


def _read_regular(fd: int, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of an open regular file, or None (not one, too large, unreadable); closes ``fd``."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def list_entries(root: Path) -> list[CacheEntry]:
    """The entries under ``root``, least recently used first; [] when there is no cache."""
    try:
        with _Dir(root / CORPORA_DIR) as d:
            return _entries(d)
    except FileNotFoundError:
        return []


def evict(corpora: Path, keep: str, max_bytes: int) -> list[CacheEntry]:
    """Remove the least recently used entries but ``keep`` until the total fits ``max_bytes``; return them."""
    removed: list[CacheEntry] = []
    try:
        with _Dir(corpora) as d:
            entries = _entries(d)
            total = sum(e.size for e in entries)
            for entry in entries:
                if total <= max_bytes:
                    break
                if entry.key != keep and _remove_entry(d, entry.key):
                    removed.append(entry)
                    total -= entry.size
    except OSError:
        pass  # a cache that cannot be listed is left as it is; the run goes on
    return removed


def remove_entry(corpora: Path, key: str) -> None:
    """Remove a damaged entry's files (regular files only); errors are ignored."""
    try:
        with _Dir(corpora) as d:
            for name in (f"{key}.json", f"{key}.npy"):
                if d.is_regular(name):
                    d.unlink(name)
    except OSError:
        pass


def touch_entry(corpora: Path, key: str) -> None:
    """Mark an entry used now (its header file's modification time); errors are ignored."""
    try:
        os.utime(corpora / f"{key}.json", follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass


def clear_cache(root: Path) -> ClearReport:
    """Remove every entry, the hash index and stale temporary files; leave anything the cache did not write.

    OSError when the cache directory cannot be opened (a symbolic link, say).
    """
    report = ClearReport()
    try:
        d = _Dir(root / CORPORA_DIR)
    except FileNotFoundError:
        return report
    with d:
        for entry in _entries(d):
            if _remove_entry(d, entry.key):
                report.entries += 1
                report.freed += entry.size
        now = time.time()
        for name in sorted(d.names()):
            st = d.lstat(name)
            if st is None:
                continue
            if not stat.S_ISREG(st.st_mode):
                report.left.append(name)
            elif _TMP_RE.fullmatch(name):
                if now - st.st_mtime < STALE_TMP_S:
                    report.in_use.append(name)
                else:
                    d.unlink(name)
            elif name == INDEX_FILE and isinstance(d.read_json(name), dict):
                d.unlink(name)
            else:
                report.left.append(name)
    return report


def _entries(d: _Dir) -> list[CacheEntry]:
    """Every key with at least one file the cache wrote, least recently used first."""
    parts: dict[str, dict[str, os.stat_result]] = {}
    for name in d.names():
        m = _ENTRY_RE.fullmatch(name)
        if not m:
            continue
        st = d.lstat(name)
        if st is not None and stat.S_ISREG(st.st_mode):
            parts.setdefault(m.group(1), {})[m.group(2)] = st
    entries = []
    for key, files in parts.items():
        header = d.read_json(f"{key}.json") if "json" in files else None
        ours_npy = "npy" in files and d.starts_with(f"{key}.npy", NPY_MAGIC)
        if not isinstance(header, dict) and not ours_npy:
            continue  # nothing here that the cache wrote
        header = header if isinstance(header, dict) else {}
        n_chars = header.get("n_chars")
        paths = header.get("paths")
        entries.append(
            CacheEntry(
                key=key,
                size=sum(st.st_size for st in files.values()),
                last_used=max(st.st_mtime for st in files.values()) if "json" not in files else files["json"].st_mtime,
                n_chars=n_chars if isinstance(n_chars, int) and not isinstance(n_chars, bool) else None,
                paths=tuple(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else (),
                complete=ours_npy and isinstance(n_chars, int) and "vocab" in header,
            )
        )
    entries.sort(key=lambda e: (e.last_used, e.key))
    return entries


def _remove_entry(d: _Dir, key: str) -> bool:
    """Unlink an entry's files that the cache wrote (header first, so no reader finds half an entry)."""
    removed = False
    json_name, npy_name = f"{key}.json", f"{key}.npy"
    if d.is_regular(json_name) and isinstance(d.read_json(json_name), dict):
        removed |= d.unlink(json_name)
    if d.is_regular(npy_name) and d.starts_with(npy_name, NPY_MAGIC):
        removed |= d.unlink(npy_name)
    return removed


class _Dir:
    """A directory opened without following a symbolic link; its files are reached through it.

    Where the platform has no directory descriptors, paths are used and each file is checked
    with ``lstat`` first.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        if _DIR_FD:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        elif not stat.S_ISDIR(os.lstat(self.path).st_mode):
            raise NotADirectoryError(f"{self.path} is not a directory")

    def __enter__(self) -> _Dir:
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str) -> dict:
        return {"dir_fd": self.fd} if self.fd is not None else {}

    def _name(self, name: str) -> str | Path:
        return name if self.fd is not None else self.path / name

    def names(self) -> list[str]:
        """The directory's entries."""
        return os.listdir(self.fd if self.fd is not None else self.path)

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a link is not followed), or None if it has gone."""
        try:
            return os.stat(self._name(name), follow_symlinks=False, **self._at(name))
        except OSError:
            return None

    def is_regular(self, name: str) -> bool:
        """Whether ``name`` is a regular file (not a link, directory, FIFO or device)."""
        st = self.lstat(name)
        return st is not None and stat.S_ISREG(st.st_mode)

    def read(self, name: str, limit: int) -> bytes | None:
        """Up to ``limit`` bytes of a regular file, or None (a link, a FIFO, too large, unreadable)."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self._name(name), flags, **self._at(name))
        except OSError:
            return None
        return _read_regular(fd, limit)

    def read_json(self, name: str) -> object:
        """A regular file's JSON value, or None when it is not one."""
        data = self.read(name, MAX_HEADER_BYTES)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def starts_with(self, name: str, magic: bytes) -> bool:
        """Whether a regular file begins with ``magic``."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self._name(name), flags, **self._at(name))
        except OSError:
            return False
        try:
            return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, len(magic)) == magic
        except OSError:
            return False
        finally:
            os.close(fd)

    def unlink(self, name: str) -> bool:
        """Unlink ``name`` (never following a link); False if it could not be removed."""
        try:
            os.unlink(self._name(name), **self._at(name))
        except FileNotFoundError:
            return False
        except OSError:  # e.g. Windows refuses to delete a file that is mapped
            return False
        return True
