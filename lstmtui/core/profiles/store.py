"""ProfileStore: named trained models on disk, written atomically, read without trusting anything.

Layout under HOME/profiles/::

    NAME/v000012/meta.json            validated JSON; records each tensor file's sha256 and size
    NAME/v000012/GROUP.safetensors    one file per tensor group (best, latest, optim, state)
    .NAME.lock                        flock'd while a process writes NAME (holds its pid and host)
    .NAME.tmp-PID-RAND/               a save in progress (removed, or left by a killed process)

The highest-numbered complete version directory is the profile. A save writes a whole new version
into a temporary directory, fsyncs it, and renames it into place (the commit point); older versions
are deleted afterwards. Killing the process at any moment therefore leaves either the previous
version or the new one as the highest, and both are complete. Only the file names above are ever
opened, and nothing is unpickled.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import tarfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from lstmtui.core.config import ModelConfig
from lstmtui.core.errors import ConfigError, ProfileError, ProfileLockedError

FORMAT_VERSION = 1
MAX_NAME = 64
MAX_META_BYTES = 256 << 20  # a long run's history is a few MB; anything near this is not ours
MAX_GROUP_BYTES = 1 << 40
META_FILE = "meta.json"
ARCHIVE_META_KEY = "meta.json"
MAX_ARCHIVE_MEMBERS = 64
READ_RETRIES = 50  # a reader racing a fast writer looks again when the version it chose is replaced

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_GROUP_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_VERSION_RE = re.compile(r"v(\d{6,12})")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProfileInfo:
    """One entry of ProfileStore.list(): the validated meta, or why it could not be read."""

    name: str
    meta: dict[str, Any] | None
    error: str | None


def validate_name(name: str) -> str:
    """Return the name if it is a valid profile name; raise ProfileError saying why it is not."""
    if not isinstance(name, str) or not name:
        raise ProfileError("a profile name must not be empty")
    shown = _short(name)
    if len(name) > MAX_NAME:
        raise ProfileError(f"profile name {shown} is {len(name)} characters long; the limit is {MAX_NAME}")
    if not _NAME_RE.fullmatch(name):
        raise ProfileError(
            f"profile name {shown} may only hold letters, digits, '-', '_' and '.' (no '/', spaces or control characters)"
        )
    if name.startswith("."):
        raise ProfileError(f"profile name {shown} must not start with '.'")
    return name


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
        """A valid, unused name made from any text (e.g. a corpus file stem), adding -2, -3... if taken."""
        text = unicodedata.normalize("NFKD", str(base)).encode("ascii", "ignore").decode("ascii")
        text = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
        text = re.sub(r"\.{2,}", ".", text).strip("-.")[:MAX_NAME].rstrip("-.") or "profile"
        candidate, n = text, 2
        while (self.root / candidate).exists():
            suffix = f"-{n}"
            candidate = text[: MAX_NAME - len(suffix)].rstrip("-.") + suffix
            n += 1
        return validate_name(candidate)

    # ----- locking -----

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold an exclusive lock on the profile; ProfileLockedError at once if another holder has it."""
        import fcntl

        name = validate_name(name)
        lock_path = self.root / f".{name}.lock"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ProfileError(f"could not lock profile {name}: {_os_reason(exc)}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ProfileError(f"could not lock profile {name}: {_os_reason(exc)}") from None
                raise ProfileLockedError(
                    f"profile {name} is in use by {_lock_holder(fd)}; close it there first or use another profile name"
                ) from None
            holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder.encode() + b"\n", 0)
            except OSError:
                pass  # the holder note is a courtesy for the error message; the flock is the lock
            yield
        finally:
            os.close(fd)  # closing drops the flock; the file stays so the lock never changes inode

    # ----- saving -----

    def save(self, name: str, meta: dict[str, Any], tensors: dict[str, dict[str, Any]]) -> Path:
        """Write a new version atomically and return its directory.

        ``tensors`` maps group -> {key: tensor}; groups the previous version has but ``tensors``
        lacks are carried over unchanged. Sets format_version, name, updated (and created).
        Callers that write should hold ``lock(name)``.
        """
        import safetensors.torch

        name = validate_name(name)
        try:
            meta = json.loads(json.dumps(meta))  # a deep copy that also proves it is JSON
        except (TypeError, ValueError) as exc:
            raise TypeError(f"profile metadata must be JSON-serialisable: {exc}") from None
        if not isinstance(meta, dict):
            raise TypeError("profile metadata must be a dict")
        previous = self._previous(name)
        now = _now()
        meta["format_version"] = FORMAT_VERSION
        meta["name"] = name
        meta["updated"] = now
        if not isinstance(meta.get("created"), str):
            meta["created"] = (previous[1].get("created") if previous else None) or now

        blobs: dict[str, bytes] = {}
        files: dict[str, dict[str, Any]] = {}
        seen: dict[int, str] = {}
        for group, group_tensors in tensors.items():
            if not isinstance(group, str) or not _GROUP_RE.fullmatch(group):
                raise ValueError(f"tensor group name {group!r} must match {_GROUP_RE.pattern}")
            twin = seen.get(id(group_tensors))
            if twin is not None:  # the same dict passed twice (best is latest): serialise it once
                blobs[group], files[group] = blobs[twin], dict(files[twin])
                continue
            seen[id(group_tensors)] = group
            data = safetensors.torch.save(_cpu_copies(group, group_tensors))
            blobs[group] = data
            files[group] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        carried: list[tuple[str, Path]] = []
        if previous:
            old_dir, old_meta = previous
            for group, entry in old_meta.get("files", {}).items():
                if group not in files:
                    files[group] = entry
                    carried.append((group, old_dir))
        meta["files"] = files
        meta = _validate_meta(f"profile {name}", meta)
        meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

        def fill(stage: Path) -> None:
            written: dict[str, Path] = {}
            for group, data in blobs.items():
                path = stage / f"{group}.safetensors"
                same = written.get(files[group]["sha256"])
                if same is not None:
                    _carry(same, path)  # best == latest until validation improves: one copy on disk
                else:
                    _write_bytes(path, data)
                    written[files[group]["sha256"]] = path
            for group, old_dir in carried:
                _carry(old_dir / f"{group}.safetensors", stage / f"{group}.safetensors")
            _write_bytes(stage / META_FILE, meta_bytes)

        return self._commit(name, fill, "save")

    def _previous(self, name: str) -> tuple[Path, dict[str, Any]] | None:
        """The current version's directory and meta, or None when there is no readable one."""
        try:
            return self._snapshot(name)
        except ProfileError:
            return None

    def _commit(self, name: str, fill: Callable[[Path], None], action: str) -> Path:
        """Write a version with fill(stage_dir) in a temp dir, fsync it, and rename it into place."""
        pdir = self.root / name
        tmp: Path | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
            os.mkdir(tmp)
            stage = tmp / "stage"
            os.mkdir(stage)
            fill(stage)
            _fsync_dir(stage)
            committed = self._rename_in(pdir, tmp, stage)
        except OSError as exc:
            raise ProfileError(
                f"could not {action} profile {name}: {_os_reason(exc)}; the previous version is untouched"
            ) from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        self._collect(name, committed)
        return committed

    def _rename_in(self, pdir: Path, tmp: Path, stage: Path) -> Path:
        """Make the staged version the highest in pdir by one rename (the commit point)."""
        for _ in range(1000):
            versions = _versions(pdir)
            target = f"v{(versions[-1][0] + 1) if versions else 1:06d}"
            if not pdir.exists():
                # A new profile: the temp dir becomes the profile dir, holding its first version.
                os.rename(stage, tmp / target)
                stage = tmp / target
                _fsync_dir(tmp)  # the version's name must be on disk before the profile appears
                try:
                    os.rename(tmp, pdir)
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    continue  # created meanwhile by someone else: add a version to it instead
                _fsync_dir(self.root)
                return pdir / target
            try:
                os.rename(stage, pdir / target)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue  # another writer took this number; take the next one
            _fsync_dir(pdir)
            return pdir / target
        raise OSError(errno.EBUSY, "too many concurrent writers", str(pdir))

    def _collect(self, name: str, keep: Path) -> None:
        """Delete versions older than keep, and temp dirs left by dead processes; errors are harmless."""
        number = int(_VERSION_RE.fullmatch(keep.name).group(1))
        pdir = keep.parent
        for n, vdir in _versions(pdir):
            if n < number:
                # Renamed away first, so a reader sees the whole old version or none of it.
                doomed = pdir / f".old-{vdir.name}-{secrets.token_hex(4)}"
                try:
                    os.rename(vdir, doomed)
                except OSError:
                    continue  # another writer's clean-up got there first
        try:
            entries = [e.path for e in os.scandir(pdir) if e.name.startswith(".old-")]
        except OSError:
            entries = []
        for path in entries:
            shutil.rmtree(path, ignore_errors=True)
        self._clean_leftovers(name)

    def _clean_leftovers(self, name: str) -> None:
        pattern = re.compile(re.escape(f".{name}.") + r"(?:tmp|rm)-(\d+)-[0-9a-f]{8}")
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return
        for entry in entries:
            m = pattern.fullmatch(entry.name)
            if m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(entry.path, ignore_errors=True)

    # ----- loading -----

    def _snapshot(self, name: str) -> tuple[Path, dict[str, Any]]:
        """The current version's directory and its validated meta, read consistently."""
        name = validate_name(name)
        pdir = self.root / name
        for _ in range(READ_RETRIES):
            versions = _versions(pdir)
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

    def load_meta(self, name: str) -> dict[str, Any]:
        """The profile's validated metadata; ProfileError naming the profile and the problem."""
        return self._snapshot(name)[1]

    def load_tensors(self, name: str, group: str) -> dict[str, Any]:
        """One tensor group on CPU, after checking its size and sha256 against the metadata."""
        return self.load(name, [group])[1][group]

    def load(self, name: str, groups: list[str] | None = None) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Meta and tensor groups (default: all) from one consistent version, on CPU."""
        name = validate_name(name)
        for _ in range(READ_RETRIES):
            vdir, meta = self._snapshot(name)
            wanted = list(meta["files"]) if groups is None else groups
            try:
                return meta, {g: self._read_group(name, vdir, meta, g) for g in wanted}
            except FileNotFoundError:
                continue
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def _read_group(self, name: str, vdir: Path, meta: dict[str, Any], group: str) -> dict[str, Any]:
        import safetensors.torch

        if not isinstance(group, str) or not _GROUP_RE.fullmatch(group):
            raise ProfileError(f"profile {name}: {_short(group)} is not a tensor group name")
        entry = meta["files"].get(group)
        if entry is None:
            raise ProfileError(f"profile {name} has no '{group}' tensors")
        path = vdir / f"{group}.safetensors"
        _verify_file(f"profile {name}", path, entry)
        try:
            return safetensors.torch.load_file(path, device="cpu")
        except Exception as exc:  # safetensors raises its own error types for malformed files
            if not vdir.is_dir():
                raise FileNotFoundError(errno.ENOENT, "replaced while being read", str(path)) from None
            raise ProfileError(f"profile {name}: {path.name} cannot be read ({_first_line(exc)})") from None

    def list(self) -> list[ProfileInfo]:
        """Every profile, sorted by name, each with its meta or the reason it cannot be read."""
        try:
            entries = sorted(e.name for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ProfileError(f"cannot read the profile directory {self.root}: {_os_reason(exc)}") from None
        infos = []
        for name in entries:
            if len(name) > MAX_NAME or not _NAME_RE.fullmatch(name):
                continue  # not made by lstmtui; never touched
            try:
                infos.append(ProfileInfo(name, self.load_meta(name), None))
            except ProfileError as exc:
                infos.append(ProfileInfo(name, None, str(exc)))
        return infos

    # ----- managing -----

    def remove(self, name: str) -> None:
        """Delete a profile (refused while another process holds its lock)."""
        pdir = self.path(name)
        if not pdir.is_dir():
            raise ProfileError(f"no profile named {name} in {self.root}")
        with self.lock(name):
            doomed = self.root / f".{name}.rm-{os.getpid()}-{secrets.token_hex(4)}"
            try:
                os.rename(pdir, doomed)  # vanishes in one step; the slow delete follows
            except OSError as exc:
                raise ProfileError(f"could not remove profile {name}: {_os_reason(exc)}") from None
            shutil.rmtree(doomed, ignore_errors=True)
            _unlink_quietly(self.root / f".{name}.lock")

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
                _fsync_dir(self.root)
            except OSError as exc:
                raise ProfileError(f"could not rename profile {old} to {new}: {_os_reason(exc)}") from None
            _unlink_quietly(self.root / f".{old}.lock")

    def export(self, name: str, file: Path | str) -> Path:
        """Write the profile as one portable, uncompressed tar file (meta.json + GROUP.safetensors)."""
        file = Path(file)
        for _ in range(READ_RETRIES):
            vdir, meta = self._snapshot(name)
            try:
                return self._export(name, vdir, meta, file)
            except FileNotFoundError:
                continue
        raise ProfileError(f"profile {name} keeps changing while being read; try again")

    def _export(self, name: str, vdir: Path, meta: dict[str, Any], file: Path) -> Path:
        for group, entry in meta["files"].items():
            _verify_file(f"profile {name}", vdir / f"{group}.safetensors", entry)
        meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        tmp = file.with_name(f".{file.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    _add_member(tar, ARCHIVE_META_KEY, len(meta_bytes), _BytesReader(meta_bytes))
                    for group, entry in meta["files"].items():
                        with open(vdir / f"{group}.safetensors", "rb") as src:
                            _add_member(tar, f"{group}.safetensors", entry["size"], src)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, file)
        except FileNotFoundError as exc:
            _unlink_quietly(tmp)
            if not vdir.is_dir():
                raise  # the version was replaced meanwhile: the caller looks again
            raise ProfileError(f"could not export profile {name} to {file}: {_os_reason(exc)}") from None
        except OSError as exc:
            _unlink_quietly(tmp)
            raise ProfileError(f"could not export profile {name} to {file}: {_os_reason(exc)}") from None
        return file

    def import_(self, file: Path | str, name: str | None = None) -> str:
        """Import a file written by export(); everything is checked and nothing is unpickled."""
        file = Path(file)
        label = f"profile archive {file.name}"
        if name is not None:
            validate_name(name)
        try:
            if not file.is_file():
                raise ProfileError(f"cannot import {file}: no such file")
            tar = tarfile.open(file, mode="r:")
        except ProfileError:
            raise
        except Exception as exc:  # tarfile signals bad input with many exception types
            raise ProfileError(f"cannot import {file}: not an lstmtui profile archive ({_first_line(exc)})") from None
        with tar:
            members = _archive_members(tar, label)
            if ARCHIVE_META_KEY not in members:
                raise ProfileError(f"{label}: no meta.json inside; is it an lstmtui profile export?")
            info = members[ARCHIVE_META_KEY]
            if info.size > MAX_META_BYTES:
                raise ProfileError(f"{label}: meta.json is {info.size} bytes, too large to be a profile's")
            raw = _archive_read(tar, info, label)
            meta = _parse_meta(label, raw)
            target = name if name is not None else meta.get("name")
            if not isinstance(target, str):
                raise ProfileError(f"{label}: it names no profile; give one with --name NEW")
            try:
                validate_name(target)
            except ProfileError as exc:
                raise ProfileError(f"{label}: {exc}; give another with --name NEW") from None
            extra = set(members) - {ARCHIVE_META_KEY} - {f"{g}.safetensors" for g in meta["files"]}
            if extra:
                raise ProfileError(f"{label}: unexpected member {_short(sorted(extra)[0])}")
            for group in meta["files"]:
                if f"{group}.safetensors" not in members:
                    raise ProfileError(f"{label}: {group}.safetensors is missing")
            meta["name"] = target
            meta_bytes = json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

            def fill(stage: Path) -> None:
                for group, entry in meta["files"].items():
                    member = members[f"{group}.safetensors"]
                    if member.size != entry["size"]:
                        raise ProfileError(f"{label}: {group}.safetensors is {member.size} bytes, meta.json says {entry['size']}")
                    dest = stage / f"{group}.safetensors"
                    _copy_member(tar, member, dest, label)
                    _verify_file(label, dest, entry)
                    _check_safetensors_header(label, dest)
                _write_bytes(stage / META_FILE, meta_bytes)

            with self.lock(target):
                if self.exists(target):
                    raise ProfileError(
                        f"a profile named {target} already exists; import under another name with --name NEW"
                    )
                self._commit(target, fill, "import")
        return target


# ----- metadata validation -----


def _read_meta(label: str, path: Path, name: str) -> dict[str, Any]:
    """Read and validate one meta.json; FileNotFoundError passes through for the retry loops."""
    try:
        with _open_regular(label, path) as f:
            raw = f.read(MAX_META_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ProfileError(f"{label}: cannot read meta.json: {_os_reason(exc)}") from None
    if len(raw) > MAX_META_BYTES:
        raise ProfileError(f"{label}: meta.json is larger than {MAX_META_BYTES >> 20} MB; not a profile's")
    meta = _parse_meta(label, raw)
    meta["name"] = name  # the directory is the truth after a rename
    return meta


def _parse_meta(label: str, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
        meta = json.loads(text)
    except UnicodeDecodeError:
        raise ProfileError(f"{label}: meta.json is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise ProfileError(f"{label}: meta.json is not valid JSON ({_first_line(exc)[:120]})") from None
    return _validate_meta(label, meta)


def _validate_meta(label: str, meta: Any) -> dict[str, Any]:
    """Check the keys the store and its readers rely on; tolerate any extra keys."""

    def fail(problem: str) -> None:
        raise ProfileError(f"{label}: {problem}")

    if not isinstance(meta, dict):
        fail("meta.json does not hold a JSON object")
    version = meta.get("format_version")
    if version is None:
        fail("meta.json lacks format_version")
    if not _is_int(version) or version < 1:
        fail(f"format_version must be a positive whole number, not {_short(version)}")
    if version > FORMAT_VERSION:
        raise ProfileError(
            f"{label} was written by a newer lstmtui (format {_short(version)} > {FORMAT_VERSION}); upgrade lstmtui"
        )
    for key in ("model", "vocab", "files"):
        if key not in meta:
            fail(f"meta.json lacks '{key}'")
    model = meta["model"]
    if not isinstance(model, dict):
        fail("'model' must be a JSON object")
    if "vocab_size" not in model:
        fail("model settings lack vocab_size")
    try:
        config = ModelConfig.from_dict(model)
    except ConfigError as exc:
        fail(f"model settings are invalid: {_first_line(exc)}")
    except (TypeError, ValueError, OverflowError) as exc:
        fail(f"model settings are malformed ({_first_line(exc)[:120]})")
    vocab = meta["vocab"]
    if not isinstance(vocab, list) or not all(isinstance(c, str) and c for c in vocab):
        fail("'vocab' must be a list of non-empty strings")
    if len(set(vocab)) != len(vocab):
        fail("'vocab' lists a symbol twice")
    if len(vocab) != config.vocab_size:
        fail(f"vocabulary has {len(vocab)} symbols but the model expects {config.vocab_size}")
    files = meta["files"]
    if not isinstance(files, dict):
        fail("'files' must be a JSON object")
    for group, entry in files.items():
        if not _GROUP_RE.fullmatch(group):
            fail(f"{_short(group)} is not a tensor group name")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not _SHA_RE.fullmatch(entry["sha256"]):
            fail(f"files.{group} lacks a valid sha256")
        size = entry.get("size")
        if not _is_int(size) or not 0 <= size <= MAX_GROUP_BYTES:
            fail(f"files.{group}.size must be a byte count, not {_short(size)}")
    for key in ("name", "created", "updated", "lstmtui_version", "torch_version"):
        if key in meta and not isinstance(meta[key], str):
            fail(f"'{key}' must be a string, not {_short(meta[key])}")
    for key in ("progress", "train_config", "rng", "history", "corpus", "sampling"):
        if key in meta and not isinstance(meta[key], dict):
            fail(f"'{key}' must be a JSON object, not {_short(meta[key])}")
    progress = meta.get("progress", {})
    for key in ("epoch", "epoch_step", "step", "bad_epochs"):
        if key in progress and not (_is_int(progress[key]) and 0 <= progress[key] <= 1 << 62):
            fail(f"progress.{key} must be a whole number >= 0, not {_short(progress[key])}")
    if "best_step" in progress and not (_is_int(progress["best_step"]) and -1 <= progress["best_step"] <= 1 << 62):
        fail(f"progress.best_step must be a whole number, not {_short(progress['best_step'])}")
    for key in ("elapsed_s", "best_val_loss", "best_val_bpc"):
        value = progress.get(key)
        if value is not None and not _is_number(value):
            fail(f"progress.{key} must be a number, not {_short(value)}")
    if "finished" in progress and not isinstance(progress["finished"], bool):
        fail(f"progress.finished must be true or false, not {_short(progress['finished'])}")
    history = meta.get("history", {})
    for key in ("train", "val"):
        series = history.get(key)
        if series is None:
            continue
        if not isinstance(series, list) or not all(
            isinstance(point, list) and point and all(v is None or _is_number(v) for v in point) for point in series
        ):
            fail(f"history.{key} must be a list of [step, value, ...] number lists")
    return meta


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int or float (NaN and infinity included: a diverged run's history is still a history)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _short(value: Any, limit: int = 40) -> str:
    """A bounded, printable repr for error messages (huge ints and control characters included)."""
    try:
        text = repr(value)
    except ValueError:
        return "<a number too long to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason


# ----- files -----


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions(pdir: Path) -> list[tuple[int, Path]]:
    """Complete version directories of a profile, oldest first ([] if none or no profile)."""
    try:
        entries = list(os.scandir(pdir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ProfileError(f"profile {pdir.name}: cannot read its directory: {_os_reason(exc)}") from None
    found = []
    for entry in entries:
        m = _VERSION_RE.fullmatch(entry.name)
        if m and entry.is_dir(follow_symlinks=False):
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def _cpu_copies(group: str, tensors: dict[str, Any]) -> dict[str, Any]:
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


def _write_bytes(path: Path, data: bytes) -> None:
    """Create path with data and fsync it; O_EXCL because a staged file is always new."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _carry(src: Path, dest: Path) -> None:
    """Reuse an unchanged group file: a hard link (files are never modified), else a copy."""
    try:
        os.link(src, dest)
    except FileNotFoundError:
        raise
    except OSError:
        with open(src, "rb") as f:
            _write_bytes(dest, f.read())


def _open_regular(label: str, path: Path):
    """Open a file for reading only if it is a regular file (a FIFO or device would hang or never end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ProfileError(f"{label}: {path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _verify_file(label: str, path: Path, entry: dict[str, Any]) -> None:
    """Check a group file's size and sha256 before anything parses it."""
    try:
        with _open_regular(label, path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != entry["size"]:
                raise ProfileError(
                    f"{label}: {path.name} is truncated or altered ({size} bytes, expected {entry['size']})"
                )
            digest = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        if path.parent.is_dir():
            raise ProfileError(f"{label}: {path.name} is missing") from None
        raise  # the whole version was replaced meanwhile: the caller looks again
    except OSError as exc:
        raise ProfileError(f"{label}: cannot read {path.name}: {_os_reason(exc)}") from None
    if digest.hexdigest() != entry["sha256"]:
        raise ProfileError(f"{label}: {path.name} is corrupt (its checksum does not match)")


def _check_safetensors_header(label: str, path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            list(f.keys())
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise ProfileError(f"{label}: {path.name} is not a valid safetensors file ({_first_line(exc)})") from None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def _lock_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"process {int(info['pid'])} on {str(info['host'])[:64]}"
    except Exception:  # the note may be half-written or absent; the lock itself is what matters
        return "another process"


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ----- archives -----


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
                name.endswith(".safetensors") and _GROUP_RE.fullmatch(name[: -len(".safetensors")])
            )
            if not ok:
                raise ProfileError(f"{label}: unexpected member {_short(name)} (not part of a profile)")
            if not info.isreg():
                raise ProfileError(f"{label}: member {name} is not a plain file")
            if name in members:
                raise ProfileError(f"{label}: member {name} appears twice")
            members[name] = info
    except ProfileError:
        raise
    except Exception as exc:  # tarfile signals bad input with many exception types
        raise ProfileError(f"{label}: damaged archive ({_first_line(exc)})") from None
    return members


def _archive_read(tar: tarfile.TarFile, info: tarfile.TarInfo, label: str) -> bytes:
    try:
        f = tar.extractfile(info)
        data = f.read(info.size) if f is not None else b""
    except Exception as exc:  # tarfile signals bad input with many exception types
        raise ProfileError(f"{label}: damaged archive ({_first_line(exc)})") from None
    if len(data) != info.size:
        raise ProfileError(f"{label}: {info.name} is truncated")
    return data


def _copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: Path, label: str) -> None:
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            src = tar.extractfile(info)
        except Exception as exc:  # tarfile signals bad input with many exception types
            raise ProfileError(f"{label}: damaged archive ({_first_line(exc)})") from None
        left = info.size
        while left > 0:
            try:
                chunk = src.read(min(_CHUNK, left))
            except Exception as exc:  # as above
                raise ProfileError(f"{label}: damaged archive ({_first_line(exc)})") from None
            if not chunk:
                raise ProfileError(f"{label}: {info.name} is truncated")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            left -= len(chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
