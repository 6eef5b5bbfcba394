"""ProfileStore: named trained models on disk, written atomically, read without trusting anything.

Layout under HOME/profiles/::

    NAME/v000012/meta.json            checked JSON (ProfileMeta); records each tensor file's sha256 and size
    NAME/v000012/GROUP.safetensors    one file per tensor group (best, latest, optim, state)
    NAME/.tmp-PID-RAND/               a new version being saved (removed, or left by a killed process)
    .NAME.tmp-PID-RAND/               a new profile's first save in progress (likewise)
    .NAME.lock                        flock'd while a process writes NAME (holds its pid and host)

The highest-numbered complete version directory is the profile. A save writes a whole new version
into a temporary directory, fsyncs it, and renames it into place (the commit point); older versions
are deleted afterwards, file by file as their own records name them (see cleanup). Killing the
process at any moment therefore leaves either the previous version or the new one as the highest,
and both are complete. NAME may be a symbolic link to a directory elsewhere: it is followed, and a
new version is staged inside it so that its rename never crosses file systems. Only the file
names above are ever opened, and nothing is unpickled.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles import cleanup, fileio
from lstmtui.core.profiles.archive import MAX_META_BYTES, ArchiveReader, export_version
from lstmtui.core.profiles.jsonfields import first_line, short
from lstmtui.core.profiles.locks import ProfileLock
from lstmtui.core.profiles.meta import FORMAT_VERSION, GROUP_RE, ProfileMeta
from lstmtui.core.profiles.names import MAX_NAME, NAME_RE, validate_name
from lstmtui.core.profiles.parts import FileEntry, Versions
from lstmtui.core.profiles.tensorfiles import TensorEntry

META_FILE = "meta.json"
READ_RETRIES = 50  # a reader racing a fast writer looks again when the version it chose is replaced

Tensors = dict[str, Any]  # key -> torch.Tensor


@dataclass(frozen=True)
class ProfileInfo:
    """One entry of ProfileStore.list(): the checked meta, or why it could not be read."""

    name: str
    meta: ProfileMeta | None
    error: str | None


def default_home() -> Path:
    """$LSTMTUI_HOME, or the platform's user data directory for lstmtui."""
    env = os.environ.get("LSTMTUI_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("lstmtui", appauthor=False))


class ProfileStore:
    """Profiles under HOME/profiles: atomic saves, checked loads, locks, list/rm/rename/export/import."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.root = self.home / "profiles"

    # ----- names and paths -----

    def path(self, name: str) -> Path:
        """The profile's directory: HOME/profiles/NAME."""
        return self.root / validate_name(name)

    def exists(self, name: str) -> bool:
        """Whether a profile (or something in its place) exists under this name."""
        return self.path(name).is_dir()

    def unique_name(self, base: str) -> str:
        """A valid, unused name made from any text (e.g. a corpus file stem), adding -2, -3... if taken.

        A name is taken by a saved profile and also by its lock file: a run that has started but not
        yet saved holds ``.NAME.lock`` already, and a second run under that name would be refused.
        """
        text = unicodedata.normalize("NFKD", str(base)).encode("ascii", "ignore").decode("ascii")
        text = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
        text = re.sub(r"\.{2,}", ".", text).strip("-.")[:MAX_NAME].rstrip("-.") or "profile"
        candidate, n = text, 2
        while (self.root / candidate).exists() or (self.root / f".{candidate}.lock").exists():
            suffix = f"-{n}"
            candidate = text[: MAX_NAME - len(suffix)].rstrip("-.") + suffix
            n += 1
        return validate_name(candidate)

    def lock(self, name: str) -> ProfileLock:
        """The profile's exclusive lock, to hold with ``with`` (ProfileLockedError if another holds it)."""
        return ProfileLock(self.root, validate_name(name))

    # ----- saving -----

    def save(self, name: str, meta: ProfileMeta, tensors: dict[str, Tensors]) -> Path:
        """Write a new version atomically and return its directory.

        ``tensors`` maps group -> {key: tensor}; groups the previous version has but ``tensors``
        lacks are carried over unchanged. Sets format_version, name, versions, updated (and created
        if the meta has none). Callers that write should hold ``lock(name)``.
        """
        name = validate_name(name)
        label = f"profile {name}"
        if not isinstance(meta, ProfileMeta):
            raise TypeError(f"profile metadata must be a ProfileMeta, not {type(meta).__name__}")
        previous = self._previous(name)
        blobs, files = _serialise(tensors)
        carried: list[tuple[str, Path]] = []
        if previous:
            old_dir, old_meta = previous
            for group, entry in old_meta.files.items():
                if group not in files:
                    files[group] = entry
                    carried.append((group, old_dir))
        now = _now()
        meta = replace(
            meta,
            format_version=FORMAT_VERSION,
            name=name,
            updated=now,
            created=meta.created or (previous[1].created if previous else None) or now,
            files=files,
            versions=_versions_now(),
        )
        meta_bytes = meta.to_bytes()
        ProfileMeta.from_bytes(label, meta_bytes)  # never write what could not be read back

        def fill(stage: Path) -> None:
            written: dict[str, Path] = {}
            for group, data in blobs.items():
                path = stage / f"{group}.safetensors"
                same = written.get(files[group].sha256)
                if same is not None:
                    fileio.carry(same, path)  # best == latest until validation improves: one copy on disk
                else:
                    fileio.write_bytes(path, data)
                    written[files[group].sha256] = path
            for group, old_dir in carried:
                fileio.carry(old_dir / f"{group}.safetensors", stage / f"{group}.safetensors")
            fileio.write_bytes(stage / META_FILE, meta_bytes)

        return self._commit(name, fill, "save")

    def _previous(self, name: str) -> tuple[Path, ProfileMeta] | None:
        """The current version's directory and meta, or None when there is no readable one."""
        try:
            return self._snapshot(name)
        except ProfileError:
            return None

    def _commit(self, name: str, fill: Callable[[Path], None], action: str) -> Path:
        """Write a version with fill(stage_dir) in a temp dir, fsync it, and rename it into place.

        An existing profile's version is staged inside its own directory, which may be a link to
        another disk: the rename into place never crosses file systems.
        """
        pdir = self.root / name
        existed = pdir.is_dir()
        tmp: Path | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            token = f"{os.getpid()}-{secrets.token_hex(4)}"
            tmp = pdir / f".tmp-{token}" if existed else self.root / f".{name}.tmp-{token}"
            os.mkdir(tmp)
            stage = tmp / "stage"
            os.mkdir(stage)
            fill(stage)
            fileio.fsync_dir(stage)
            committed = self._rename_in(pdir, tmp, stage)
        except OSError as exc:
            kept = "the previous version is untouched" if existed else f"no profile {name} was created"
            raise ProfileError(f"could not {action} profile {name}: {fileio.os_reason(exc)}; {kept}") from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._collect(name, committed)
        return committed

    def _rename_in(self, pdir: Path, tmp: Path, stage: Path) -> Path:
        """Make the staged version the highest in pdir by one rename (the commit point)."""
        for _ in range(1000):
            versions = fileio.versions(pdir)
            target = f"v{(versions[-1][0] + 1) if versions else 1:06d}"
            if not pdir.exists():
                # A new profile: the temp dir becomes the profile dir, holding its first version.
                os.rename(stage, tmp / target)
                stage = tmp / target
                fileio.fsync_dir(tmp)  # the version's name must be on disk before the profile appears
                try:
                    os.rename(tmp, pdir)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    continue  # created meanwhile by someone else: add a version to it instead
                fileio.fsync_dir(self.root)
                return pdir / target
            try:
                os.rename(stage, pdir / target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue  # another writer took this number; take the next one
            fileio.fsync_dir(pdir)
            return pdir / target
        raise OSError(errno.EBUSY, "too many concurrent writers", str(pdir))

    def _collect(self, name: str, keep: Path) -> None:
        """Delete versions older than keep (by their records), and temp dirs left by dead processes."""
        number = int(fileio.VERSION_RE.fullmatch(keep.name).group(1))
        cleanup.retire_versions(keep.parent, number)
        cleanup.clean_stale_temps(keep.parent)
        self._clean_leftovers(name)

    def _clean_leftovers(self, name: str) -> None:
        """Temp dirs of dead processes (removed whole: lstmtui named them) and removals a killed process left."""
        cleanup.clean_stale_temps(self.root, re.compile(re.escape(f".{name}.") + r"tmp-(\d+)-[0-9a-f]{8}"))
        pattern = re.compile(re.escape(f".{name}.") + r"rm-(\d+)-[0-9a-f]{8}")
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        for entry in entries:
            m = pattern.fullmatch(entry.name)
            if m and not fileio.pid_alive(int(m.group(1))):
                cleanup.discard_profile(Path(entry.path))

    # ----- loading -----

    def _snapshot(self, name: str) -> tuple[Path, ProfileMeta]:
        """The current version's directory and its checked meta, read consistently."""
        name = validate_name(name)
        pdir = self.root / name
        for _ in range(READ_RETRIES):
            versions = fileio.versions(pdir)
            if not versions:
                if not pdir.is_dir():
                    raise ProfileError(f"no profile named {name} in {self.root}")
                raise ProfileError(f"profile {name} has no saved version (an interrupted first save?); remove it")
            vdir = versions[-1][1]
            try:
                return vdir, _read_meta(f"profile {name}", vdir / META_FILE, name)
            except FileNotFoundError:
                continue  # a newer version replaced this one while we looked; look again
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def load_meta(self, name: str) -> ProfileMeta:
        """The profile's checked metadata; ProfileError naming the profile and the problem."""
        return self._snapshot(name)[1]

    def load_tensors(self, name: str, group: str) -> Tensors:
        """One tensor group on CPU, after checking its size and sha256 against the metadata."""
        return self.load(name, [group])[1][group]

    def load(self, name: str, groups: list[str] | None = None) -> tuple[ProfileMeta, dict[str, Tensors]]:
        """Meta and tensor groups (default: all) from one consistent version, on CPU."""
        name = validate_name(name)
        for _ in range(READ_RETRIES):
            vdir, meta = self._snapshot(name)
            wanted = list(meta.files) if groups is None else groups
            try:
                return meta, {g: self._read_group(name, vdir, meta, g) for g in wanted}
            except FileNotFoundError:
                continue
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def tensor_header(self, name: str, group: str) -> dict[str, TensorEntry]:
        """The tensors a group file lists (dtype and shape each), from its header alone.

        The file's real size must be what the metadata records and the header must account for
        every byte, so what it lists is what loading it would allocate.
        """
        name = validate_name(name)
        for _ in range(READ_RETRIES):
            vdir, meta = self._snapshot(name)
            entry = meta.files.get(group)
            if entry is None:
                raise ProfileError(f"profile {name} has no '{group}' tensors")
            try:
                return fileio.tensor_header(f"profile {name}", vdir / f"{group}.safetensors", entry)
            except FileNotFoundError:
                continue
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def _read_group(self, name: str, vdir: Path, meta: ProfileMeta, group: str) -> Tensors:
        import safetensors.torch

        if not isinstance(group, str) or not GROUP_RE.fullmatch(group):
            raise ProfileError(f"profile {name}: {short(group)} is not a tensor group name")
        entry = meta.files.get(group)
        if entry is None:
            raise ProfileError(f"profile {name} has no '{group}' tensors")
        path = vdir / f"{group}.safetensors"
        fileio.verify_file(f"profile {name}", path, entry)
        try:
            return safetensors.torch.load_file(path, device="cpu")
        except Exception as exc:  # safetensors raises its own error types for malformed files
            if not vdir.is_dir():
                raise FileNotFoundError(errno.ENOENT, "replaced while being read", str(path)) from None
            raise ProfileError(f"profile {name}: {path.name} cannot be read ({first_line(exc)})") from None

    def list(self) -> list[ProfileInfo]:
        """Every profile, sorted by name, each with its meta or the reason it cannot be read."""
        try:
            entries = sorted(e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ProfileError(f"cannot read the profile directory {self.root}: {fileio.os_reason(exc)}") from None
        infos = []
        for name in entries:
            if len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
                continue  # not made by lstmtui; never touched
            try:
                infos.append(ProfileInfo(name, self.load_meta(name), None))
            except ProfileError as exc:
                infos.append(ProfileInfo(name, None, str(exc)))
        return infos

    # ----- managing -----

    def remove(self, name: str) -> None:
        """Delete a profile (refused while another process holds its lock).

        Only what its version records name is deleted (see cleanup); a profile directory that is a
        link loses its versions, then the link. If other files are in it, they and the directory
        stay and ProfileError says so.
        """
        pdir = self.path(name)
        if not pdir.is_dir():
            raise ProfileError(f"no profile named {name} in {self.root}")
        with self.lock(name):
            doomed = self.root / f".{name}.rm-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                os.rename(pdir, doomed)  # vanishes in one step; the slow delete follows
            except OSError as exc:
                raise ProfileError(f"could not remove profile {name}: {fileio.os_reason(exc)}") from None
            kept = cleanup.discard_profile(doomed)
            if kept:
                os.rename(doomed, pdir)  # back where the user keeps it, with what lstmtui did not write
                place = pdir.resolve() if pdir.is_symlink() else pdir
                raise ProfileError(
                    f"removed the saved versions of profile {name}, but {place} also holds {short(kept[0])}"
                    f"{f' and {len(kept) - 1} more' if len(kept) > 1 else ''}, which lstmtui did not write; "
                    f"it is left as it is"
                )

    def rename(self, old: str, new: str) -> None:
        """Rename a profile atomically; refused if the new name is taken or the profile is in use."""
        src, dst = self.path(old), self.path(new)
        if not src.is_dir():
            raise ProfileError(f"no profile named {old} in {self.root}")
        if old == new:
            return
        with self.lock(old), self.lock(new):
            if dst.exists():
                raise ProfileError(f"a profile named {new} already exists; remove it or pick another name")
            try:
                os.rename(src, dst)
                fileio.fsync_dir(self.root)
            except OSError as exc:
                raise ProfileError(f"could not rename profile {old} to {new}: {fileio.os_reason(exc)}") from None

    def export(self, name: str, file: Path | str) -> Path:
        """Write the profile as one portable, uncompressed tar file (meta.json + GROUP.safetensors)."""
        file = Path(file)
        for _ in range(READ_RETRIES):
            vdir, meta = self._snapshot(name)
            try:
                return export_version(name, vdir, meta, file)
            except FileNotFoundError:
                continue
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def import_(self, file: Path | str, name: str | None = None) -> str:
        """Import a file written by export(); everything is checked and nothing is unpickled."""
        if name is not None:
            validate_name(name)
        with ArchiveReader(file, name) as archive:
            target = archive.target
            with self.lock(target):
                if self.exists(target):
                    raise ProfileError(
                        f"a profile named {target} already exists; import under another name with --name NEW"
                    )
                self._commit(target, archive.fill, "import")
        return target


# ----- helpers -----


def _serialise(tensors: dict[str, Tensors]) -> tuple[dict[str, bytes], dict[str, FileEntry]]:
    """Each group's safetensors bytes and file entry; a group dict given twice is serialised once."""
    import safetensors.torch

    blobs: dict[str, bytes] = {}
    files: dict[str, FileEntry] = {}
    seen: dict[int, str] = {}
    for group, group_tensors in tensors.items():
        if not isinstance(group, str) or not GROUP_RE.fullmatch(group):
            raise ValueError(f"tensor group name {group!r} must match {GROUP_RE.pattern}")
        twin = seen.get(id(group_tensors))
        if twin is not None:  # the same dict passed twice (best is latest): serialise it once
            blobs[group], files[group] = blobs[twin], files[twin]
            continue
        seen[id(group_tensors)] = group
        data = safetensors.torch.save(_cpu_copies(group, group_tensors))
        blobs[group] = data
        files[group] = FileEntry(hashlib.sha256(data).hexdigest(), len(data))
    return blobs, files


def _cpu_copies(group: str, tensors: Tensors) -> Tensors:
    """Contiguous CPU copies that own their memory (safetensors refuses shared or strided storage)."""
    import torch

    if not isinstance(tensors, dict):
        raise TypeError(f"tensor group {group!r} must be a dict of tensors")
    out = {}
    for key, value in tensors.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            raise TypeError(f"tensor group {group!r}: {key!r} is not a named tensor")
        out[key] = value.detach().to("cpu", copy=True).contiguous()
    return out


def _versions_now() -> Versions:
    import torch

    from lstmtui import __version__

    return Versions(lstmtui=__version__, torch=torch.__version__)


def _read_meta(label: str, path: Path, name: str) -> ProfileMeta:
    """Read and check one meta.json; FileNotFoundError passes through for the retry loops."""
    try:
        with fileio.open_regular(label, path) as f:
            raw = f.read(MAX_META_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ProfileError(f"{label}: cannot read meta.json: {fileio.os_reason(exc)}") from None
    if len(raw) > MAX_META_BYTES:
        raise ProfileError(f"{label}: meta.json is larger than {MAX_META_BYTES >> 20} MB; not a profile's")
    return replace(ProfileMeta.from_bytes(label, raw), name=name)  # the directory is the truth after a rename


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
