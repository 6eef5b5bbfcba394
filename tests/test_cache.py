"""The corpus cache's bound, eviction, damaged entries, full disks, clearing, and `lstmtui cache`."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from lstmtui.cli import main
from lstmtui.core.corpus import cache as corpus_cache
from lstmtui.core.corpus import load as corpus_load
from lstmtui.core.corpus import load_corpus
from lstmtui.core.corpus.cache_entries import (
    DEFAULT_LIMIT,
    CacheLimit,
    cache_limit,
    clear_cache,
    list_entries,
    parse_size,
    save_cache_limit,
)
from lstmtui.core.errors import ConfigError

TEXT = "the cache holds encoded corpora, Zoë's too — " * 40


@pytest.fixture(autouse=True)
def cache_every_corpus(monkeypatch):
    """Small corpora are cached too, so the tests stay small."""
    monkeypatch.setattr(corpus_load, "CACHE_MIN_BYTES", 0)


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "cache"


def corpus_file(tmp_path: Path, name: str, text: str = TEXT) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def load(path: Path, root: Path, notes: list[str] | None = None, **kw):
    return load_corpus([path], cache_dir=root, notice=(notes.append if notes is not None else None), **kw)


def entry_files(root: Path) -> list[str]:
    corpora = root / "corpora"
    return sorted(p.name for p in corpora.iterdir() if p.suffix in (".npy", ".json") and len(p.stem) == 64)


def only_key(root: Path) -> str:
    keys = {name.split(".")[0] for name in entry_files(root)}
    assert len(keys) == 1, keys
    return keys.pop()


# --- the bound --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("5G", 5 << 30), ("500M", 500 << 20), ("500 MB", 500 << 20), ("1.5GiB", 3 << 29), ("1024", 1024), ("0", 0)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1G", "5X", "1e9"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_limit_from_default_settings_and_environment(root, monkeypatch):
    monkeypatch.delenv("LSTMTUI_CACHE_MAX", raising=False)
    assert cache_limit(root) == CacheLimit(DEFAULT_LIMIT, "default") and DEFAULT_LIMIT == 5 << 30
    save_cache_limit(root, 123 << 20)
    assert cache_limit(root) == CacheLimit(123 << 20, "settings")
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", "2G")
    assert cache_limit(root).max_bytes == 2 << 30 and cache_limit(root).source == "LSTMTUI_CACHE_MAX"
    save_cache_limit(root, None)
    monkeypatch.delenv("LSTMTUI_CACHE_MAX")
    assert cache_limit(root).source == "default"


def test_bad_limit_in_environment_is_a_one_line_error(tmp_path, root, monkeypatch):
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", "plenty")
    with pytest.raises(ConfigError, match="LSTMTUI_CACHE_MAX='plenty' is not a size") as exc:
        load(corpus_file(tmp_path, "a.txt"), root)
    assert "\n" not in str(exc.value)


def test_least_recently_used_entries_are_evicted_after_a_write(tmp_path, root, monkeypatch):
    a, b, c = (corpus_file(tmp_path, f"{n}.txt", TEXT + n * 50) for n in "abc")
    load(a, root)
    key_a = only_key(root)
    load(b, root)
    one_entry = sum(e.size for e in list_entries(root)) // 2 + 200
    key_b = next(e.key for e in list_entries(root) if e.key != key_a)
    os.utime(root / "corpora" / f"{key_a}.json", (1000, 1000))
    os.utime(root / "corpora" / f"{key_b}.json", (2000, 2000))
    load(a, root)  # a cache hit makes a the most recently used
    assert (root / "corpora" / f"{key_a}.json").stat().st_mtime > 2000
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", str(2 * one_entry))
    third = load(c, root)
    kept = [e.key for e in list_entries(root)]
    assert key_b not in kept and key_a in kept and len(kept) == 2
    assert sum(e.size for e in list_entries(root)) <= 2 * one_entry
    assert third.text() == TEXT + "c" * 50


def test_an_entry_larger_than_the_bound_is_kept_and_the_rest_evicted(tmp_path, root, monkeypatch):
    load(corpus_file(tmp_path, "a.txt"), root)
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", "100")
    big = load(corpus_file(tmp_path, "b.txt", TEXT * 3), root)
    entries = list_entries(root)
    assert len(entries) == 1 and entries[0].paths == (str((tmp_path / "b.txt").resolve()),)
    assert isinstance(big.data, np.memmap) and big.text() == TEXT * 3


def test_zero_bound_turns_the_cache_off(tmp_path, root, monkeypatch):
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", "0")
    c = load(corpus_file(tmp_path, "a.txt"), root)
    assert not isinstance(c.data, np.memmap) and c.text() == TEXT
    assert not (root / "corpora").exists()


# --- full disks and damaged entries -----------------------------------------------------------


def full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("spool", [True, False])
def test_full_disk_while_writing_loads_uncached_with_a_warning(tmp_path, root, monkeypatch, spool):
    monkeypatch.setattr(corpus_cache._NpyWriter, "write", full_disk)
    if not spool:
        monkeypatch.setattr(corpus_cache.Spool, "create", classmethod(lambda cls, d: None))
    notes: list[str] = []
    c = load(corpus_file(tmp_path, "a.txt"), root, notes, chunk_bytes=64)
    assert c.text() == TEXT and not isinstance(c.data, np.memmap)
    assert len(notes) == 1 and notes[0].startswith("warning: cannot write the corpus cache")
    assert "disk is full" in notes[0]
    assert entry_files(root) == [] and not list((root / "corpora").glob("*.tmp"))


def test_full_disk_while_writing_the_header_leaves_no_half_entry(tmp_path, root, monkeypatch):
    real = corpus_cache._atomic_write_bytes

    def no_room_for_entries(path: Path, data: bytes) -> None:
        if len(path.stem) == 64:
            full_disk()
        real(path, data)

    monkeypatch.setattr(corpus_cache, "_atomic_write_bytes", no_room_for_entries)
    notes: list[str] = []
    assert load(corpus_file(tmp_path, "a.txt"), root, notes).text() == TEXT
    assert notes and "disk is full" in notes[0]
    assert entry_files(root) == []


def test_without_a_notice_callback_warnings_arrive_as_a_progress_stage(tmp_path, root, monkeypatch):
    monkeypatch.setattr(corpus_cache._NpyWriter, "write", full_disk)
    stages: list[tuple[str, int, int]] = []
    load_corpus([corpus_file(tmp_path, "a.txt")], cache_dir=root, progress=lambda *a: stages.append(a))
    warnings = [s for s in stages if s[0].startswith(corpus_load.NOTICE_PREFIXES)]
    assert len(warnings) == 1 and warnings[0][1:] == (0, 0)


def damage_truncate(npy: Path, header: Path) -> None:
    with open(npy, "r+b") as f:
        f.truncate(npy.stat().st_size - 10)


def damage_garbage_npy(npy: Path, header: Path) -> None:
    npy.write_bytes(b"garbage")


def damage_appended(npy: Path, header: Path) -> None:
    with open(npy, "ab") as f:
        f.write(b"\x00" * 16)


def damage_ids(npy: Path, header: Path) -> None:
    with open(npy, "r+b") as f:
        f.seek(-5, os.SEEK_END)
        f.write(b"\xff" * 5)  # ids beyond the vocabulary


def damage_header(npy: Path, header: Path) -> None:
    header.write_text('{"format": 1, "n_chars": ')


def damage_missing_data(npy: Path, header: Path) -> None:
    npy.unlink()


def damage_stale_header(npy: Path, header: Path) -> None:
    data = json.loads(header.read_text())
    data["n_chars"] += 7  # the header of another version of the entry
    header.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage",
    [
        damage_truncate,
        damage_garbage_npy,
        damage_appended,
        damage_ids,
        damage_header,
        damage_missing_data,
        damage_stale_header,
    ],
)
def test_damaged_entry_is_removed_and_the_corpus_read_again(tmp_path, root, damage):
    path = corpus_file(tmp_path, "a.txt")
    load(path, root)
    key = only_key(root)
    damage(root / "corpora" / f"{key}.npy", root / "corpora" / f"{key}.json")
    notes: list[str] = []
    c = load(path, root, notes)
    assert c.text() == TEXT
    assert len(notes) == 1 and notes[0].startswith(f"warning: the corpus cache entry {key[:12]} was damaged")
    assert "\n" not in notes[0]
    notes.clear()
    again = load(path, root, notes)  # the damaged entry was replaced by a good one
    assert notes == [] and isinstance(again.data, np.memmap) and again.text() == TEXT


def test_damaged_entry_that_cannot_be_rewritten_still_loads(tmp_path, root, monkeypatch):
    path = corpus_file(tmp_path, "a.txt")
    load(path, root)
    key = only_key(root)
    damage_truncate(root / "corpora" / f"{key}.npy", None)
    monkeypatch.setattr(corpus_cache._NpyWriter, "write", full_disk)
    notes: list[str] = []
    assert load(path, root, notes).text() == TEXT
    assert [n.split(" (")[0] for n in notes] == [
        f"warning: the corpus cache entry {key[:12]} was damaged",
        f"warning: cannot write the corpus cache in {root / 'corpora'}",
    ]
    assert entry_files(root) == []  # the broken entry is gone


# --- entries in use ---------------------------------------------------------------------------


def test_an_entry_in_use_survives_eviction_and_clearing(tmp_path, root, monkeypatch):
    in_use = load(corpus_file(tmp_path, "a.txt"), root)
    assert isinstance(in_use.data, np.memmap)
    monkeypatch.setenv("LSTMTUI_CACHE_MAX", "1")
    load(corpus_file(tmp_path, "b.txt", TEXT + "b"), root)  # evicts a's entry
    assert len(list_entries(root)) == 1
    assert in_use.text() == TEXT
    clear_cache(root)
    assert list_entries(root) == [] and in_use.text() == TEXT


def test_rewriting_an_entry_replaces_the_file_never_writes_into_the_mapped_one(tmp_path, root):
    path = corpus_file(tmp_path, "a.txt")
    in_use = load(path, root)
    key = only_key(root)
    npy = root / "corpora" / f"{key}.npy"
    mapped_inode = npy.stat().st_ino
    (root / "corpora" / f"{key}.json").unlink()  # a miss: the entry is written again
    again = load(path, root)
    assert npy.stat().st_ino != mapped_inode
    assert in_use.text() == TEXT and again.text() == TEXT


# --- clearing ---------------------------------------------------------------------------------


def test_clear_removes_only_what_the_cache_wrote(tmp_path, root):
    load(corpus_file(tmp_path, "a.txt"), root)
    load(corpus_file(tmp_path, "b.txt", TEXT + "b"), root)
    save_cache_limit(root, 1 << 30)
    corpora = root / "corpora"
    outside = tmp_path / "precious.npy"
    outside.write_bytes(b"\x93NUMPY precious")
    fake_key = "f" * 64
    (corpora / f"{fake_key}.npy").symlink_to(outside)  # a link to someone else's file
    os.mkfifo(corpora / f"{'e' * 64}.json")  # opening it to read would block
    (corpora / f"{'d' * 64}.json").mkdir()
    (corpora / f"{'c' * 64}.npy").write_bytes(b"not written by lstmtui")
    (corpora / "notes.txt").write_text("mine")
    stale, fresh = corpora / f".{'a' * 64}.npy.123.tmp", corpora / ".spool.456.7f.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (1, 1))
    report = clear_cache(root)
    assert report.entries == 2 and report.freed > 0
    assert sorted(report.left) == sorted(
        [f"{fake_key}.npy", f"{'e' * 64}.json", f"{'d' * 64}.json", f"{'c' * 64}.npy", "notes.txt"]
    )
    assert report.in_use == [fresh.name]
    assert outside.read_bytes() == b"\x93NUMPY precious" and (corpora / f"{fake_key}.npy").is_symlink()
    assert (corpora / "notes.txt").exists() and fresh.exists() and not stale.exists()
    assert not (corpora / "hashes.json").exists()
    assert (root / "settings.json").exists() and list_entries(root) == []


def test_clear_refuses_a_corpora_directory_that_is_a_link(tmp_path, root):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = elsewhere / f"{'a' * 64}.npy"
    victim.write_bytes(b"\x93NUMPY something important")
    root.mkdir()
    (root / "corpora").symlink_to(elsewhere)
    with pytest.raises(OSError):
        clear_cache(root)
    with pytest.raises(OSError):
        list_entries(root)
    assert victim.exists()


# --- `lstmtui cache` --------------------------------------------------------------------------


def test_cache_command_lists_entries_against_the_bound(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LSTMTUI_CACHE_MAX", raising=False)
    root = Path(os.environ["LSTMTUI_CACHE"])
    a, b = corpus_file(tmp_path, "a.txt"), corpus_file(tmp_path, "b.txt", TEXT + "b")
    load_corpus([a])
    load_corpus([a, b])
    assert main(["cache"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"corpus cache: {root / 'corpora'}"
    assert out[1].split() == ["ENTRY", "SIZE", "LAST", "USED", "CHARS", "SOURCES"]
    assert f"{a.resolve()}, {b.resolve()}" in out[2] and out[3].endswith(str(a.resolve()))
    assert out[4].startswith("2 entries, ") and "of 5.0 GB (the default" in out[4]
    entries = list_entries(root)
    assert main(["cache", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total_bytes"] == sum(e.size for e in entries) and listed["max_bytes"] == DEFAULT_LIMIT
    assert [e["key"] for e in listed["entries"]] == [e.key for e in reversed(entries)]
    assert listed["entries"][1]["n_chars"] == len(TEXT)


def test_cache_command_clears_and_sets_the_bound(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LSTMTUI_CACHE_MAX", raising=False)
    root = Path(os.environ["LSTMTUI_CACHE"])
    load_corpus([corpus_file(tmp_path, "a.txt")])
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.startswith("removed 1 entry (")
    assert list_entries(root) == []
    assert main(["cache", "limit", "10G"]) == 0
    assert "10.0 GB (set by `lstmtui cache limit`)" in capsys.readouterr().out
    assert cache_limit(root) == CacheLimit(10 << 30, "settings")
    assert main(["cache", "limit", "default"]) == 0
    assert cache_limit(root).source == "default"
    capsys.readouterr()
    assert main(["cache", "limit", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmtui: error: cache bound 'lots' is not a size") and err.count("\n") == 1


def test_cache_command_refuses_a_linked_cache_directory_in_one_line(tmp_path, capsys):
    root = Path(os.environ["LSTMTUI_CACHE"])
    root.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "corpora").symlink_to(tmp_path / "elsewhere")
    assert main(["cache", "clear"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lstmtui: error: cannot use the cache directory {root}") and err.count("\n") == 1


def test_a_fifo_in_place_of_an_entry_never_blocks_a_run(tmp_path, root):
    path = corpus_file(tmp_path, "a.txt")
    load(path, root)
    key = only_key(root)
    for name in (f"{key}.npy", f"{key}.json", "hashes.json"):
        (root / "corpora" / name).unlink()
        os.mkfifo(root / "corpora" / name)
        notes: list[str] = []
        assert load(path, root, notes).text() == TEXT  # a blocking open would hang here
        assert all(n.startswith("warning: ") for n in notes)
        (root / "corpora" / name).unlink()
        load(path, root)
