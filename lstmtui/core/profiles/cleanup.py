"""Deleting a profile's old versions and leftovers: only what lstmtui's own records name, never anything else.

A profile directory may be a symbolic link to another disk, and a user may keep other files in
it; deletion therefore never walks a tree blindly. A version is deleted file by file: the
``GROUP.safetensors`` files its meta.json lists, then meta.json, then the (now empty) directory.
Anything else in it (and a version whose meta.json cannot be read) stays where it is. Temporary
directories that lstmtui names itself (``.tmp-PID-RAND``) are removed whole once their process is gone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from lstmtui.core.profiles import fileio
from lstmtui.core.profiles.archive import MAX_META_BYTES
from lstmtui.core.profiles.meta import GROUP_RE

META_FILE = "meta.json"
OLD_RE = re.compile(r"\.old-v\d{6,12}-[0-9a-f]{8}")
TMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}")


def recorded_groups(vdir: Path) -> list[str] | None:
    """The groups a version's meta.json lists, or None when it cannot be read (then nothing is deleted)."""
    try:
        with fileio.open_regular(str(vdir), vdir / META_FILE) as f:
            data = json.loads(f.read(MAX_META_BYTES).decode("utf-8"))
        files = data["files"]
    except Exception:  # unreadable, damaged or not ours: keep the version as it is
        return None
    if not isinstance(files, dict):
        return None
    return [g for g in files if isinstance(g, str) and GROUP_RE.fullmatch(g)]


def discard_version(vdir: Path) -> bool:
    """Delete one version's recorded files, then its directory if nothing else is in it; whether it is gone."""
    groups = recorded_groups(vdir)
    if groups is None:
        try:
            os.rmdir(vdir)  # empty: a deletion killed after its meta.json went
        except OSError:
            return False
        return True
    for group in groups:
        fileio.unlink_quietly(vdir / f"{group}.safetensors")
    fileio.unlink_quietly(vdir / META_FILE)  # last: while it is there, what remains is still accounted for
    try:
        os.rmdir(vdir)
    except OSError:
        return False
    return True


def clean_stale_temps(directory: Path, pattern: re.Pattern[str] = TMP_RE) -> None:
    """Remove lstmtui's own temporary directories in ``directory`` whose process is gone."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False) and not fileio.pid_alive(int(m.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def retire_versions(pdir: Path, below: int) -> None:
    """Delete the versions numbered below ``below`` whose records can be read, and finish earlier deletions."""
    for n, vdir in fileio.versions(pdir):
        if n < below and recorded_groups(vdir) is not None:
            # Renamed away first, so a reader sees the whole old version or none of it.
            try:
                os.rename(vdir, pdir / f".old-{vdir.name}-{secrets.token_hex(4)}")
            except OSError:
                continue  # another writer's clean-up got there first
    discard_old(pdir)


def discard_old(pdir: Path) -> None:
    """Finish deleting versions an earlier clean-up renamed away (``.old-vNNN-RAND``)."""
    try:
        entries = [
            Path(e.path) for e in os.scandir(pdir) if OLD_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        ]
    except OSError:
        return
    for path in entries:
        discard_version(path)


def discard_profile(path: Path) -> list[str]:
    """Delete a profile's directory (``path`` itself may be a link to it) by its records; what was kept.

    Its versions go file by file, lstmtui's temporary directories whole; then the directory, and
    the link if ``path`` is one. Returns the names of the entries kept (files lstmtui did not
    write, versions whose records cannot be read); the directory stays when there are any.
    """
    target = path.resolve() if path.is_symlink() else path
    kept: list[str] = []
    try:
        entries = list(os.scandir(target))
    except FileNotFoundError:
        entries = []
    except OSError:
        return [path.name]
    for entry in entries:
        entry_path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if is_dir and (fileio.VERSION_RE.fullmatch(entry.name) or OLD_RE.fullmatch(entry.name)):
            if not discard_version(entry_path):
                kept.append(entry.name)
        elif is_dir and TMP_RE.fullmatch(entry.name):
            shutil.rmtree(entry_path, ignore_errors=True)
        else:
            kept.append(entry.name)
    if kept:
        return sorted(kept)
    try:
        os.rmdir(target)
    except FileNotFoundError:
        pass
    except OSError:
        return [target.name]
    if path.is_symlink():
        fileio.unlink_quietly(path)
    return []
