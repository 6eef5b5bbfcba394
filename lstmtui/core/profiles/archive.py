"""Profile archives: one uncompressed tar of meta.json and GROUP.safetensors, written and read with care.

Reading trusts nothing: only plain members with the names a profile has are accepted (no links,
paths or duplicates), meta.json is checked like a stored one, and each group file is checked
against its size and sha256 and its safetensors header before it becomes part of a profile.
"""

from __future__ import annotations

import os
import secrets
import stat
import tarfile
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles import fileio
from lstmtui.core.profiles.jsonfields import first_line, short
from lstmtui.core.profiles.meta import GROUP_RE, ProfileMeta
from lstmtui.core.profiles.names import validate_name
from lstmtui.core.profiles.tensorfiles import WEIGHT_GROUPS, check_weights, group_limit, read_header
from lstmtui.core.userfiles import kind_of

ARCHIVE_META_KEY = "meta.json"
MAX_ARCHIVE_MEMBERS = 64
MAX_META_BYTES = 256 << 20  # a long run's history is a few MB; anything near this is not ours


def export_version(name: str, vdir: Path, meta: ProfileMeta, file: Path) -> Path:
    """Write one version of a profile to file (atomically); FileNotFoundError if vdir is replaced meanwhile."""
    label = f"profile {name}"
    try:
        mode = os.stat(file).st_mode
    except OSError:
        mode = None  # absent (the usual case), or the write below says why not
    if mode is not None and not stat.S_ISREG(mode):  # never replace a device, a FIFO or a directory
        raise ProfileError(f"could not export profile {name} to {file}: it is {kind_of(mode)}; give a file name")
    for group, entry in meta.files.items():
        fileio.verify_file(label, vdir / f"{group}.safetensors", entry)
    meta_bytes = meta.to_bytes()
    tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_member(tar, ARCHIVE_META_KEY, len(meta_bytes), _BytesReader(meta_bytes))
                for group, entry in meta.files.items():
                    with open(vdir / f"{group}.safetensors", "rb") as src:
                        _add_member(tar, f"{group}.safetensors", entry.size, src)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, file)
    except FileNotFoundError as exc:
        fileio.unlink_quietly(tmp)
        if not vdir.is_dir():
            raise  # the version was replaced meanwhile: the caller looks again
        raise ProfileError(f"could not export profile {name} to {file}: {fileio.os_reason(exc)}") from None
    except OSError as exc:
        fileio.unlink_quietly(tmp)
        raise ProfileError(f"could not export profile {name} to {file}: {fileio.os_reason(exc)}") from None
    return file


class ArchiveReader:
    """An archive opened for import: its members listed and its meta.json checked on entry.

    ``target`` is the profile name to import under; ``fill(stage)`` writes the checked files into
    a staging directory (the store's commit renames it into place).
    """

    def __init__(self, file: Path | str, name: str | None = None) -> None:
        self.file = Path(file)
        self.label = f"profile archive {self.file.name}"
        self.name = name
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> ArchiveReader:
        self._tar = _open_tar(self.file)
        try:
            self._check()
        except BaseException:
            self._tar.close()
            self._tar.fileobj.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar.fileobj.close()  # tarfile leaves a file object it was given open

    def _check(self) -> None:
        label, tar = self.label, self._tar
        self.members = _archive_members(tar, label)
        if ARCHIVE_META_KEY not in self.members:
            raise ProfileError(f"{label}: no meta.json inside; is it an lstmtui profile export?")
        info = self.members[ARCHIVE_META_KEY]
        if info.size > MAX_META_BYTES:
            raise ProfileError(f"{label}: meta.json is {info.size} bytes, too large to be a profile's")
        meta = ProfileMeta.from_bytes(label, _archive_read(tar, info, label))
        target = self.name if self.name is not None else meta.name
        if target is None:
            raise ProfileError(f"{label}: it names no profile; give one with --name NEW")
        try:
            validate_name(target)
        except ProfileError as exc:
            raise ProfileError(f"{label}: {exc}; give another with --name NEW") from None
        expected = {f"{g}.safetensors" for g in meta.files}
        extra = set(self.members) - {ARCHIVE_META_KEY} - expected
        if extra:
            raise ProfileError(f"{label}: unexpected member {short(sorted(extra)[0])}")
        for group in meta.files:
            if f"{group}.safetensors" not in self.members:
                raise ProfileError(f"{label}: {group}.safetensors is missing")
        self._check_sizes(meta)
        self.target = target
        self.meta = replace(meta, name=target)

    def _check_sizes(self, meta: ProfileMeta) -> None:
        """Refuse, before writing a byte, a member larger than its group can be for the model meta.json states."""
        batch = meta.train_config.batch if meta.train_config is not None else None
        for group, entry in meta.files.items():
            member = self.members[f"{group}.safetensors"]
            limit = group_limit(meta.model, group, batch)
            if member.size > limit or entry.size > limit:
                raise ProfileError(
                    f"{self.label}: {group}.safetensors declares {max(member.size, entry.size):,} bytes, more than a "
                    f"model of {meta.model.parameter_count():,} parameters can need ({limit:,})"
                )
            if group in WEIGHT_GROUPS:
                self._check_weights_header(group, member, meta)

    def _check_weights_header(self, group: str, member: tarfile.TarInfo, meta: ProfileMeta) -> None:
        """The weights member's header must list the model's tensors and account for its whole size."""
        try:
            f = self._tar.extractfile(member)
        except Exception as exc:  # tarfile signals bad input with many exception types
            raise ProfileError(f"{self.label}: damaged archive ({first_line(exc)})") from None
        name = f"{group}.safetensors"
        header = read_header(f, member.size, self.label, name)
        check_weights(self.label, name, {key: t.shape for key, t in header.items()}, meta.model)

    def fill(self, stage: Path) -> None:
        """Copy and check every group file, then meta.json, into the staging directory."""
        label = self.label
        for group, entry in self.meta.files.items():
            member = self.members[f"{group}.safetensors"]
            if member.size != entry.size:
                raise ProfileError(f"{label}: {group}.safetensors is {member.size} bytes, meta.json says {entry.size}")
            dest = stage / f"{group}.safetensors"
            _copy_member(self._tar, member, dest, label)  # at most the size checked on entry
            fileio.verify_file(label, dest, entry)
            fileio.check_safetensors_header(label, dest)
        fileio.write_bytes(stage / ARCHIVE_META_KEY, self.meta.to_bytes())


def _open_tar(file: Path) -> tarfile.TarFile:
    """The archive opened for reading: a regular file only (a FIFO or device would block or never end)."""
    try:
        raw = fileio.open_regular(f"cannot import {file}", file, kind=True)
    except FileNotFoundError:
        raise ProfileError(f"cannot import {file}: no such file") from None
    except OSError as exc:
        raise ProfileError(f"cannot import {file}: {fileio.os_reason(exc)}") from None
    try:
        return tarfile.open(fileobj=raw, mode="r:")
    except Exception as exc:  # tarfile signals bad input with many exception types
        raw.close()
        raise ProfileError(f"cannot import {file}: not an lstmtui profile archive ({first_line(exc)})") from None


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n < 0 else self._pos + n
        out = self._view[self._pos : end].tobytes()
        self._pos += len(out)
        return out


def _add_member(tar: tarfile.TarFile, name: str, size: int, fileobj: Any) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    tar.addfile(info, fileobj)


def _archive_members(tar: tarfile.TarFile, label: str) -> dict[str, tarfile.TarInfo]:
    """The archive's members by name; anything but plain files with known names is refused."""
    members: dict[str, tarfile.TarInfo] = {}
    try:
        for count, info in enumerate(tar, 1):
            if count > MAX_ARCHIVE_MEMBERS:
                raise ProfileError(f"{label}: too many members to be a profile export")
            name = info.name
            ok = name == ARCHIVE_META_KEY or (
                name.endswith(".safetensors") and GROUP_RE.fullmatch(name[: -len(".safetensors")])
            )
            if not ok:
                raise ProfileError(f"{label}: unexpected member {short(name)} (not part of a profile)")
            if not info.isreg():
                raise ProfileError(f"{label}: member {name} is not a plain file")
            if name in members:
                raise ProfileError(f"{label}: member {name} appears twice")
            members[name] = info
    except ProfileError:
        raise
    except Exception as exc:  # tarfile signals bad input with many exception types
        raise ProfileError(f"{label}: damaged archive ({first_line(exc)})") from None
    return members


def _archive_read(tar: tarfile.TarFile, info: tarfile.TarInfo, label: str) -> bytes:
    try:
        f = tar.extractfile(info)
        data = f.read(info.size) if f is not None else b""
    except Exception as exc:  # tarfile signals bad input with many exception types
        raise ProfileError(f"{label}: damaged archive ({first_line(exc)})") from None
    if len(data) != info.size:
        raise ProfileError(f"{label}: {info.name} is truncated")
    return data


def _copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: Path, label: str) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            src = tar.extractfile(info)
        except Exception as exc:  # tarfile signals bad input with many exception types
            raise ProfileError(f"{label}: damaged archive ({first_line(exc)})") from None
        left = info.size
        while left > 0:
            try:
                chunk = src.read(min(fileio.CHUNK, left))
            except Exception as exc:  # as above
                raise ProfileError(f"{label}: damaged archive ({first_line(exc)})") from None
            if not chunk:
                raise ProfileError(f"{label}: {info.name} is truncated")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            left -= len(chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
