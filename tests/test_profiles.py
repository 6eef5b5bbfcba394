"""ProfileStore: round trips, atomic saves under kill -9, checksums, locks, bad input, export/import."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lstmtui.core.config import ModelConfig
from lstmtui.core.errors import ProfileError, ProfileLockedError
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import (
    FORMAT_VERSION,
    ProfileMeta,
    ProfileStore,
    archive,
    default_home,
    fileio,
    validate_name,
)

REPO = Path(__file__).resolve().parent.parent
VOCAB = [chr(c) for c in range(32, 32 + 20)]


def make_meta_json(step: int = 0, **extra) -> dict:
    """A profile's meta.json as a dict, as a short training run writes it."""
    meta = {
        "format_version": FORMAT_VERSION,
        "files": {},
        "model": ModelConfig(vocab_size=len(VOCAB), hidden=16, layers=2).to_dict(),
        "vocab": list(VOCAB),
        "train_config": {"epochs": 5},
        "progress": {
            "epoch": 1,
            "epoch_step": 0,
            "step": step,
            "elapsed_s": 1.5,
            "best_val_loss": 2.0,
            "best_step": step,
            "bad_epochs": 0,
            "finished": False,
        },
        "history": {"train": [[1, 3.0, 0.1], [2, 2.5, 0.2]], "val": [[2, 2.4, 3.46, 0.2]]},
        "corpus": {"paths": ["/data/tiny.txt"], "size_bytes": 10, "sha256": "0" * 64},
        "sampling": {"temperature": 0.8},
    }
    meta.update(extra)
    return meta


def make_meta(step: int = 0, **extra) -> ProfileMeta:
    return ProfileMeta.from_json("test meta", make_meta_json(step, **extra))


def make_tensors(fill: float = 0.0) -> dict:
    model = CharLSTM(ModelConfig(vocab_size=len(VOCAB), hidden=16, layers=2))
    weights = {k: v.detach().clone().fill_(fill) for k, v in model.state_dict().items()}
    return {
        "best": weights,
        "latest": {k: v + 1 for k, v in weights.items()},
        "optim": {"0.exp_avg": torch.full((4, 3), fill), "0.step": torch.tensor(float(fill))},
        "state": {"torch_rng": torch.get_rng_state()},
    }


def version_dir(store: ProfileStore, name: str) -> Path:
    return sorted(p for p in store.path(name).iterdir() if p.name.startswith("v"))[-1]


@pytest.fixture
def store(tmp_path) -> ProfileStore:
    return ProfileStore(tmp_path / "home")


# ----- home and names -----


def test_home_comes_from_argument_then_env_then_platformdirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMTUI_HOME", str(tmp_path / "env"))
    assert default_home() == tmp_path / "env"
    assert ProfileStore().root == tmp_path / "env" / "profiles"
    assert ProfileStore(tmp_path / "arg").path("x") == tmp_path / "arg" / "profiles" / "x"
    monkeypatch.delenv("LSTMTUI_HOME")
    import platformdirs

    assert default_home() == Path(platformdirs.user_data_dir("lstmtui", appauthor=False))


@pytest.mark.parametrize("name", ["a", "my-model_v1.2", "A" * 64, "x..y"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name, words",
    [
        ("", "empty"),
        ("a/b", "'/'"),
        ("../evil", "'/'"),
        ("..", "start with '.'"),
        (".", "start with '.'"),
        (".hidden", "start with '.'"),
        ("a\\b", "letters, digits"),
        ("a b", "letters, digits"),
        ("a\nb", "control"),
        ("tab\there", "control"),
        ("nul\x00", "control"),
        ("x" * 65, "65 characters"),
        ("caf\u00e9", "letters, digits"),
    ],
)
def test_bad_names_are_refused_with_a_reason(store, name, words):
    with pytest.raises(ProfileError, match="profile name|empty") as info:
        store.save(name, make_meta(), make_tensors())
    assert words in str(info.value)
    assert "\n" not in str(info.value)
    assert not store.root.exists() or not any(store.root.iterdir())


def test_unique_name_sanitises_and_counts(store):
    assert store.unique_name("my corpus (v2)") == "my-corpus-v2"
    assert store.unique_name("../../etc/passwd") == "etc-passwd"
    assert store.unique_name("...") == "profile"
    assert store.unique_name("Ünïcode") == "Unicode"
    long = store.unique_name("x" * 200)
    assert long == "x" * 64
    store.save("tiny", make_meta(), make_tensors())
    assert store.unique_name("tiny") == "tiny-2"
    store.save("tiny-2", make_meta(), make_tensors())
    assert store.unique_name("tiny") == "tiny-3"
    store.save(long, make_meta(), make_tensors())
    assert store.unique_name("x" * 200) == "x" * 62 + "-2"


# ----- round trip -----


def test_round_trip_keeps_every_tensor_and_the_meta(store):
    tensors = make_tensors(0.25)
    path = store.save("tiny", make_meta(step=7), tensors)
    assert path.parent == store.path("tiny") and store.exists("tiny")
    assert sorted(p.name for p in path.iterdir()) == [
        "best.safetensors",
        "latest.safetensors",
        "meta.json",
        "optim.safetensors",
        "state.safetensors",
    ]
    meta = store.load_meta("tiny")
    assert meta.format_version == FORMAT_VERSION and meta.name == "tiny"
    assert meta.progress.step == 7 and list(meta.vocab) == VOCAB
    assert meta.history == make_meta().history
    assert isinstance(meta.created, str) and isinstance(meta.updated, str)
    for group, expected in tensors.items():
        loaded = store.load_tensors("tiny", group)
        assert loaded.keys() == expected.keys()
        for key, value in expected.items():
            assert loaded[key].device.type == "cpu"
            assert torch.equal(loaded[key], value), (group, key)
    both = store.load("tiny")
    assert set(both[1]) == {"best", "latest", "optim", "state"}


def test_saving_again_replaces_the_version_keeps_created_and_carries_missing_groups(store):
    store.save("tiny", make_meta(step=1), make_tensors(1.0))
    created = store.load_meta("tiny").created
    store.save("tiny", make_meta(step=2), {"latest": make_tensors(2.0)["latest"]})
    meta = store.load_meta("tiny")
    assert meta.progress.step == 2 and meta.created == created
    assert [p.name for p in store.path("tiny").iterdir()] == ["v000002"]  # the old version is gone
    assert torch.equal(store.load_tensors("tiny", "latest")["head.bias"], torch.full((len(VOCAB),), 3.0))
    assert torch.equal(store.load_tensors("tiny", "best")["head.bias"], torch.full((len(VOCAB),), 1.0))


def test_views_shared_and_strided_tensors_are_saved_as_copies(store):
    base = torch.arange(12.0, requires_grad=True)
    view = base.detach().view(3, 4)
    tensors = {"latest": {"a": view, "b": view.t(), "c": view[1:], "d": base}}
    store.save("shared", make_meta(), tensors)
    loaded = store.load_tensors("shared", "latest")
    assert torch.equal(loaded["b"], view.t()) and torch.equal(loaded["c"], view[1:])
    assert not loaded["d"].requires_grad


def test_save_refuses_meta_it_could_not_load_again(store):
    with pytest.raises(ProfileError, match="profile tiny: vocabulary has 2 symbols"):
        store.save("tiny", replace(make_meta(), vocab=("a", "b")), make_tensors())
    with pytest.raises(ProfileError, match="profile tiny: 'vocab' holds '\\\\ud800', a lone surrogate"):
        store.save("tiny", replace(make_meta(), vocab=("\ud800",) + tuple(VOCAB[1:])), make_tensors())
    with pytest.raises(TypeError):
        store.save("tiny", replace(make_meta(), optim_groups=({"lr": object()},)), make_tensors())
    assert not store.exists("tiny")


def test_missing_profile_and_missing_group(store):
    with pytest.raises(ProfileError, match="no profile named ghost"):
        store.load_meta("ghost")
    store.save("tiny", make_meta(), {"latest": make_tensors()["latest"]})
    with pytest.raises(ProfileError, match="profile tiny has no 'best' tensors"):
        store.load_tensors("tiny", "best")
    with pytest.raises(ProfileError, match="not a tensor group"):
        store.load_tensors("tiny", "../meta")


# ----- corruption -----


def test_truncated_tensor_file_is_refused(store):
    store.save("tiny", make_meta(), make_tensors())
    path = version_dir(store, "tiny") / "latest.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ProfileError, match=r"profile tiny: latest.safetensors is truncated or altered"):
        store.load_tensors("tiny", "latest")
    assert store.load_tensors("tiny", "best")  # the other groups still load


@pytest.mark.parametrize("offset", [0, 9, -1])
def test_bit_flipped_tensor_file_is_refused(store, offset):
    store.save("tiny", make_meta(), make_tensors())
    path = version_dir(store, "tiny") / "best.safetensors"
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(ProfileError, match=r"profile tiny: best.safetensors is corrupt"):
        store.load_tensors("tiny", "best")


def test_a_tensor_file_that_is_not_safetensors_is_refused_even_with_a_matching_checksum(store):
    store.save("tiny", make_meta(), make_tensors())
    vdir = version_dir(store, "tiny")
    junk = b"\xff" * 64
    (vdir / "best.safetensors").write_bytes(junk)
    meta = json.loads((vdir / "meta.json").read_text())
    import hashlib

    meta["files"]["best"] = {"sha256": hashlib.sha256(junk).hexdigest(), "size": len(junk)}
    (vdir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ProfileError, match="profile tiny: best.safetensors cannot be read"):
        store.load_tensors("tiny", "best")


def test_deleted_tensor_file_is_reported(store):
    store.save("tiny", make_meta(), make_tensors())
    (version_dir(store, "tiny") / "optim.safetensors").unlink()
    with pytest.raises(ProfileError, match="profile tiny: optim.safetensors is missing"):
        store.load_tensors("tiny", "optim")


def meta_mutations():
    def drop(key):
        return lambda m: m.pop(key)

    def put(path, value):
        def f(m):
            target = m
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value

        return f

    return [
        (drop("format_version"), "lacks format_version"),
        (put(["format_version"], "1"), "format_version must be"),
        (put(["format_version"], 3), "written by a newer lstmtui (format 3 > 1); upgrade lstmtui"),
        (drop("model"), "lacks 'model'"),
        (put(["model"], [1, 2]), "'model' must be a JSON object"),
        (put(["model", "hidden"], 10**9), re.compile(r"hidden\b.* must be between")),
        (put(["model", "layers"], 10**9), re.compile(r"layers\b.* must be between")),
        (put(["model", "hidden"], "256"), re.compile(r"hidden\b.* must be a whole number")),
        (put(["model", "dropout"], 10**400), "model settings"),
        (put(["model", "input"], "pickle"), re.compile(r"input\b.* must be one of")),
        (drop("vocab"), "lacks 'vocab'"),
        (put(["vocab"], "abc"), "'vocab' must be a list"),
        (put(["vocab"], VOCAB[:-1] + [VOCAB[0]]), "lists a symbol twice"),
        (put(["vocab"], VOCAB[:-1] + [7]), "'vocab' must be a list"),
        (put(["progress"], []), "'progress' must be a JSON object"),
        (put(["progress", "step"], -5), "progress.step must be"),
        (put(["progress", "epoch"], 1.5), "progress.epoch must be"),
        (put(["progress", "best_val_loss"], "low"), "progress.best_val_loss must be a number"),
        (put(["progress", "finished"], "yes"), "progress.finished must be true or false"),
        (put(["history", "train"], [[1, "x"]]), "history.train must be"),
        (put(["history", "val"], 5), "history.val must be"),
        (put(["history"], "long"), "'history' must be a JSON object"),
        (put(["created"], 5), "'created' must be a string"),
        (put(["files", "best", "sha256"], "zz"), "files.best lacks a valid sha256"),
        (put(["files", "best", "size"], -1), "files.best.size must be a byte count"),
        (put(["files", "../x"], {}), "is not a tensor group name"),
    ]


@pytest.mark.parametrize("mutate, message", meta_mutations())
def test_bad_metadata_gives_one_line_naming_profile_and_problem(store, mutate, message):
    store.save("tiny", make_meta(), make_tensors())
    path = version_dir(store, "tiny") / "meta.json"
    meta = json.loads(path.read_text())
    mutate(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(ProfileError) as info:
        store.load_meta("tiny")
    text = str(info.value)
    assert text.startswith("profile tiny"), text
    assert message.search(text) if isinstance(message, re.Pattern) else message in text, text
    assert "\n" not in text and len(text) < 300


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not valid JSON"),
        (b'{"format_version": 1,', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
        (b"[1, 2]", "does not hold a JSON object"),
        (b"1" * 5000, "not valid JSON"),
    ],
)
def test_unparsable_metadata_is_refused(store, raw, message):
    store.save("tiny", make_meta(), make_tensors())
    (version_dir(store, "tiny") / "meta.json").write_bytes(raw)
    with pytest.raises(ProfileError, match=f"profile tiny: .*{message}"):
        store.load_meta("tiny")


def test_absurd_sizes_are_refused_before_any_tensor_is_built(store, monkeypatch):
    store.save("tiny", make_meta(), make_tensors())
    path = version_dir(store, "tiny") / "meta.json"
    meta = json.loads(path.read_text())
    meta["model"]["hidden"] = 10**9
    meta["model"]["vocab_size"] = len(VOCAB)
    path.write_text(json.dumps(meta))

    def no_allocation(*args, **kwargs):
        raise AssertionError("a tensor file was read for an invalid profile")

    monkeypatch.setattr(fileio, "verify_file", no_allocation)
    with pytest.raises(ProfileError, match="profile tiny: model settings are invalid: .*hidden"):
        store.load_tensors("tiny", "best")


def test_list_reports_corrupt_profiles_and_still_lists_the_others(store):
    for name in ("b-good", "a-good", "c-bad"):
        store.save(name, make_meta(), make_tensors())
    (version_dir(store, "c-bad") / "meta.json").write_text("{not json")
    (store.root / "stray file.txt").write_text("ignored")
    (store.root / "empty").mkdir()
    infos = store.list()
    assert [i.name for i in infos] == ["a-good", "b-good", "c-bad", "empty"]
    assert infos[0].meta.name == "a-good" and infos[0].error is None
    assert infos[2].meta is None and infos[2].error.startswith("profile c-bad: meta.json is not valid JSON")
    assert "no saved version" in infos[3].error
    assert ProfileStore(store.home / "nowhere").list() == []


# ----- nothing is unpickled -----


class _Exploit:
    """A pickle that would create a marker file if anything ever unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_pickle_in_a_profile_is_never_loaded(store, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    store.save("tiny", make_meta(), make_tensors())
    vdir = version_dir(store, "tiny")
    for place in (store.path("tiny"), vdir):
        for filename in ("model.pt", "data.pkl", "optim.pt", "checkpoint.pth"):
            (place / filename).write_bytes(payload)
    # A pickle posing as a group file, and a group the meta does not list.
    (vdir / "extra.safetensors").write_bytes(payload)
    (store.root / "evil").mkdir()
    (store.root / "evil" / "model.pt").write_bytes(payload)
    torch_pickle = tmp_path / "torch.pt"
    torch.save({"x": _Exploit(marker)}, torch_pickle)
    (vdir / "latest.pt").write_bytes(torch_pickle.read_bytes())

    assert store.load_meta("tiny").name == "tiny"
    for group in ("best", "latest", "optim", "state"):
        store.load_tensors("tiny", group)
    with pytest.raises(ProfileError):
        store.load_tensors("tiny", "extra")
    assert [i.name for i in store.list()] == ["evil", "tiny"]
    archive = store.export("tiny", tmp_path / "tiny.tar")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(
            ["meta.json", "best.safetensors", "latest.safetensors", "optim.safetensors", "state.safetensors"]
        )
    store.import_(archive, "copy")
    (version_dir(store, "tiny") / "best.safetensors").write_bytes(payload)
    with pytest.raises(ProfileError, match="corrupt|truncated"):
        store.load_tensors("tiny", "best")
    assert not marker.exists()


# ----- atomicity -----


def _saver_child(home: Path, size: int, report_fd: int) -> None:
    """Save the profile over and over, each version self-consistent (tensors filled with its step)."""
    try:
        # The parent's OpenMP pool does not survive fork(); one thread keeps torch off it.
        torch.set_num_threads(1)
        store = ProfileStore(home)
        step = store.load_meta("kill").progress.step
        while True:
            step += 1
            tensors = {g: {"w": torch.full((size,), float(step))} for g in ("best", "latest", "optim")}
            store.save("kill", make_meta(step=step), tensors)
            os.write(report_fd, b".")
    finally:
        os._exit(1)


def kill_during_saves(store: ProfileStore, kills: int, seed: int) -> tuple[list[int], int]:
    """Fork savers and SIGKILL each at a random moment; check the profile after every kill."""
    size = 200_000  # 800 kB per group: a save takes tens of ms, so most kills land mid-save
    if not store.exists("kill"):
        store.save("kill", make_meta(step=0), {g: {"w": torch.zeros(size)} for g in ("best", "latest", "optim")})
    rng = random.Random(seed)
    steps, interrupted = [store.load_meta("kill").progress.step], 0
    for _ in range(kills):
        read_fd, write_fd = os.pipe()
        pid = os.fork()  # a fork skips the torch import a fresh interpreter would spend seconds on
        if pid == 0:
            os.close(read_fd)
            _saver_child(store.home, size, write_fd)
        os.close(write_fd)
        try:
            for _ in range(rng.randint(0, 2)):  # let it finish a few saves, then kill mid-way
                ready, _, _ = select.select([read_fd], [], [], 60)
                assert ready and os.read(read_fd, 1), "the saving child stopped"
            time.sleep(rng.uniform(0.0, 0.08))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_fd)
        interrupted += (
            any(".tmp-" in p.name for p in store.root.iterdir()) or len(list(store.path("kill").iterdir())) > 1
        )
        meta, groups = store.load("kill")
        step = meta.progress.step
        assert step >= steps[-1]  # never goes back to an older version
        for group in ("best", "latest", "optim"):
            assert torch.equal(groups[group]["w"], torch.full((size,), float(step))), (group, step)
        steps.append(step)
    return steps, interrupted


def test_kill_9_at_random_moments_during_saves_always_leaves_a_loadable_profile(store):
    steps, _ = kill_during_saves(store, kills=20, seed=7)
    assert steps[-1] > steps[0]  # the children did save between kills
    store.save("kill", make_meta(step=steps[-1] + 1), {})
    leftovers = [p.name for p in store.root.iterdir() if ".tmp-" in p.name]
    assert leftovers == []  # the next save cleans up what killed ones left
    assert len(list(store.path("kill").iterdir())) == 1


def test_a_version_dir_that_never_got_committed_is_ignored(store):
    store.save("tiny", make_meta(step=1), make_tensors())
    # What a save killed before its rename leaves: a half-written temp dir of a dead process.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = store.root / f".tiny.tmp-{dead.pid}-deadbeef"
    (stale / "stage").mkdir(parents=True)
    (stale / "stage" / "meta.json").write_text("{half")
    assert store.load_meta("tiny").progress.step == 1
    assert [i.name for i in store.list()] == ["tiny"]
    store.save("tiny", make_meta(step=2), {})
    assert not stale.exists()


# ----- disk full, unwritable -----


def test_disk_full_during_a_save_leaves_the_previous_version_and_no_temp_files(store, monkeypatch):
    store.save("tiny", make_meta(step=1), make_tensors(1.0))
    real_write = fileio.write_bytes
    calls = []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 2:
            real_write(path, data[: len(data) // 2])  # a partial file, as a real ENOSPC leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(fileio, "write_bytes", full_disk)
    with pytest.raises(ProfileError) as info:
        store.save("tiny", make_meta(step=2), make_tensors(2.0))
    text = str(info.value)
    assert text.startswith("could not save profile tiny: No space left on device")
    assert "previous version is untouched" in text and "\n" not in text
    assert store.load_meta("tiny").progress.step == 1
    assert torch.equal(store.load_tensors("tiny", "best")["head.bias"], torch.ones(len(VOCAB)))
    assert sorted(p.name for p in store.root.iterdir()) == ["tiny"]


def test_unwritable_home_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = ProfileStore(blocker / "home")  # root ignores chmod, but nobody can mkdir under a file
    with pytest.raises(ProfileError, match="could not save profile tiny: Not a directory"):
        store.save("tiny", make_meta(), make_tensors())
    with pytest.raises(ProfileError, match="could not lock profile tiny"):
        with store.lock("tiny"):
            pass


# ----- locks -----

LOCK_HOLDER = """
import sys
from lstmtui.core.profiles import ProfileStore
with ProfileStore(sys.argv[1]).lock("tiny"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_a_second_process_gets_a_clear_lock_error_and_the_lock_dies_with_its_holder(store):
    store.save("tiny", make_meta(), make_tensors())
    child = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(store.home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(ProfileLockedError, match=rf"profile tiny is in use by process {child.pid} on "):
            with store.lock("tiny"):
                pass
        with pytest.raises(ProfileLockedError):
            store.remove("tiny")
        with pytest.raises(ProfileLockedError):
            store.rename("tiny", "other")
        assert store.load_meta("tiny")  # readers need no lock
    finally:
        child.kill()
        child.wait()
    with store.lock("tiny"):  # a killed holder's lock is gone
        store.save("tiny", make_meta(step=3), {})
    assert store.load_meta("tiny").progress.step == 3


def test_the_lock_is_exclusive_within_one_process_too(store):
    with store.lock("tiny"):
        with pytest.raises(ProfileLockedError, match=f"process {os.getpid()}"):
            with store.lock("tiny"):
                pass
        with store.lock("other"):
            pass
    with store.lock("tiny"):
        pass


# ----- rename, remove -----


def test_rename_and_remove(store):
    store.save("old", make_meta(), make_tensors())
    store.save("taken", make_meta(), make_tensors())
    with pytest.raises(ProfileError, match="a profile named taken already exists"):
        store.rename("old", "taken")
    with pytest.raises(ProfileError, match="no profile named ghost"):
        store.rename("ghost", "new")
    with pytest.raises(ProfileError, match="profile name"):
        store.rename("old", "../new")
    store.rename("old", "new")
    assert not store.exists("old") and store.load_meta("new").name == "new"
    assert store.load_tensors("new", "best")
    store.remove("new")
    assert not store.exists("new") and [i.name for i in store.list()] == ["taken"]
    with pytest.raises(ProfileError, match="no profile named new"):
        store.remove("new")


# ----- export, import -----


def test_export_import_round_trip_and_name_collisions(store, tmp_path):
    tensors = make_tensors(0.5)
    store.save("tiny", make_meta(step=4), tensors)
    archive = store.export("tiny", tmp_path / "tiny.lstmtui")
    other = ProfileStore(tmp_path / "other-machine")
    assert other.import_(archive) == "tiny"
    meta = other.load_meta("tiny")
    assert meta.progress.step == 4 and meta.created == store.load_meta("tiny").created
    for group, expected in tensors.items():
        loaded = other.load_tensors("tiny", group)
        assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    with pytest.raises(ProfileError, match="a profile named tiny already exists; .*--name NEW"):
        store.import_(archive)
    assert store.import_(archive, name="tiny-copy") == "tiny-copy"
    assert store.load_meta("tiny-copy").name == "tiny-copy"
    with pytest.raises(ProfileError, match="profile name"):
        store.import_(archive, name="a/b")


def _tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def test_import_refuses_archive_tricks_and_damage(store, tmp_path):
    store.save("tiny", make_meta(), make_tensors())
    good = store.export("tiny", tmp_path / "good.tar")
    with tarfile.open(good) as tar:
        parts = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    meta_bytes = parts["meta.json"]
    escape = tmp_path / "escaped"
    link = tarfile.TarInfo("best.safetensors")
    link.type, link.linkname = tarfile.SYMTYPE, str(escape)
    cases = {
        "traversal": ([(_reg("../escaped"), b"x"), (_reg("meta.json"), meta_bytes)], "unexpected member '../escaped'"),
        "absolute": ([(_reg(str(escape)), b"x")], "unexpected member"),
        "nested": ([(_reg("tiny/meta.json"), meta_bytes)], "unexpected member"),
        "symlink": ([(_reg("meta.json"), meta_bytes), (link, None)], "not a plain file"),
        "pickle": ([(_reg("meta.json"), meta_bytes), (_reg("model.pt"), b"\x80\x04")], "unexpected member 'model.pt'"),
        "twice": ([(_reg("meta.json"), meta_bytes), (_reg("meta.json"), meta_bytes)], "appears twice"),
        "no-meta": ([(_reg("best.safetensors"), parts["best.safetensors"])], "no meta.json"),
        "missing-group": (
            [(_reg("meta.json"), meta_bytes), (_reg("best.safetensors"), parts["best.safetensors"])],
            "is missing",
        ),
        "bad-json": ([(_reg("meta.json"), b"{oops")], "not valid JSON"),
        "flipped": (
            [(_reg(n), (d[:-1] + bytes([d[-1] ^ 1])) if n == "optim.safetensors" else d) for n, d in parts.items()],
            "optim.safetensors is corrupt",
        ),
    }
    for label, (members, message) in cases.items():
        path = _tar_with(tmp_path / f"{label}.tar", members)
        with pytest.raises(ProfileError, match=message):
            store.import_(path, name=f"imp-{label}")
        assert not store.exists(f"imp-{label}"), label
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(ProfileError, match="not an lstmtui profile archive"):
        store.import_(tmp_path / "plain.txt", name="x")
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(ProfileError):
        store.import_(truncated, name="x")
    with pytest.raises(ProfileError, match="no such file"):
        store.import_(tmp_path / "nope.tar")
    assert not escape.exists()
    assert [i.name for i in store.list()] == ["tiny"]
    assert not [p for p in store.root.iterdir() if ".tmp-" in p.name]


def test_export_refuses_a_corrupt_profile(store, tmp_path):
    store.save("tiny", make_meta(), make_tensors())
    path = version_dir(store, "tiny") / "latest.safetensors"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ProfileError, match="latest.safetensors is corrupt"):
        store.export("tiny", tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_profile_saved_from_gpu_tensors_loads_on_cpu_and_back(store):
    tensors = {group: {k: v.to("cuda") for k, v in values.items()} for group, values in make_tensors(0.5).items()}
    store.save("gpu", make_meta(), tensors)
    loaded = store.load_tensors("gpu", "best")
    assert all(v.device.type == "cpu" for v in loaded.values())
    assert all(torch.equal(loaded[k].to("cuda"), v) for k, v in tensors["best"].items())


def test_equal_groups_share_one_file_and_stay_separate_tensors(store):
    weights = make_tensors(1.0)["best"]
    vdir = store.save("tiny", make_meta(), {"best": weights, "latest": weights})
    assert (vdir / "best.safetensors").stat().st_ino == (vdir / "latest.safetensors").stat().st_ino
    best = store.load_tensors("tiny", "best")
    latest = store.load_tensors("tiny", "latest")
    best["head.bias"].add_(1)  # loaded tensors are independent of each other and of the files
    assert torch.equal(latest["head.bias"], torch.ones(len(VOCAB)))
    assert torch.equal(store.load_tensors("tiny", "best")["head.bias"], torch.ones(len(VOCAB)))


def test_a_fifo_or_device_in_place_of_a_profile_file_is_refused_without_hanging(store):
    store.save("tiny", make_meta(), make_tensors())
    vdir = version_dir(store, "tiny")
    (vdir / "best.safetensors").unlink()
    os.symlink("/dev/zero", vdir / "best.safetensors")
    with pytest.raises(ProfileError, match="profile tiny: best.safetensors is not a regular file"):
        store.load_tensors("tiny", "best")
    (vdir / "meta.json").unlink()
    os.mkfifo(vdir / "meta.json")
    with pytest.raises(ProfileError, match="profile tiny: meta.json is not a regular file"):
        store.load_meta("tiny")


def test_a_diverged_history_with_nan_and_infinity_still_saves_and_loads(store):
    history = {"train": [[1, float("nan"), 0.1], [2, float("inf"), 0.2]], "val": []}
    meta = make_meta(history=history, progress={"step": 2, "best_val_loss": None})
    store.save("diverged", meta, make_tensors())
    loaded = store.load_meta("diverged").history.train
    assert loaded[0][1] != loaded[0][1] and loaded[1][1] == float("inf")


def test_readers_never_see_a_half_replaced_profile_while_a_writer_saves(store):
    import threading

    size = 50_000
    store.save("busy", make_meta(step=0), {g: {"w": torch.zeros(size)} for g in ("best", "latest")})
    done = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            for step in range(1, 41):
                store.save(
                    "busy",
                    make_meta(step=step),
                    {g: {"w": torch.full((size,), float(step))} for g in ("best", "latest")},
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads == 0:
        meta, groups = store.load("busy")
        step = meta.progress.step
        assert all(torch.equal(groups[g]["w"], torch.full((size,), float(step))) for g in ("best", "latest"))
        reads += 1
    thread.join()
    assert not errors
    assert store.load_meta("busy").progress.step == 40


def test_two_unlocked_writers_racing_still_leave_one_loadable_profile(store):
    import threading

    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(seed: int):
        try:
            barrier.wait()
            for i in range(10):
                store.save(
                    "race",
                    make_meta(step=seed * 100 + i),
                    {"latest": {"w": torch.full((1000,), float(seed * 100 + i))}},
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    meta, groups = store.load("race")
    assert torch.equal(groups["latest"]["w"], torch.full((1000,), float(meta.progress.step)))


def test_a_reader_whose_version_is_replaced_mid_read_looks_again(store, monkeypatch):
    store.save("busy", make_meta(step=1), {"latest": {"w": torch.full((10,), 1.0)}})
    real_snapshot = ProfileStore._snapshot
    calls = []

    def snapshot_then_save(self, name):
        found = real_snapshot(self, name)
        calls.append(found[0].name)
        if len(calls) == 1:  # a writer replaces (and deletes) the version this reader just chose
            store.save("busy", make_meta(step=2), {"latest": {"w": torch.full((10,), 2.0)}})
        return found

    monkeypatch.setattr(ProfileStore, "_snapshot", snapshot_then_save)
    meta, groups = store.load("busy")
    assert calls[0] == "v000001" and calls[-1] == "v000002"  # (the save in between looks too)
    assert meta.progress.step == 2 and torch.equal(groups["latest"]["w"], torch.full((10,), 2.0))


# ----- hostile archives, linked profile directories, locks of failed writes (issue 17) -----


def _archive_parts(store: ProfileStore, tmp_path: Path) -> dict[str, bytes]:
    store.save("tiny", make_meta(), make_tensors())
    with tarfile.open(store.export("tiny", tmp_path / "good.tar")) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def _spy_writes(monkeypatch) -> list[Path]:
    written: list[Path] = []
    real_copy = archive._copy_member
    monkeypatch.setattr(
        archive,
        "_copy_member",
        lambda tar, info, dest, label: (written.append(dest), real_copy(tar, info, dest, label)),
    )
    return written


def test_an_archive_member_larger_than_its_model_can_need_is_refused_before_writing(store, tmp_path, monkeypatch):
    parts = _archive_parts(store, tmp_path)
    meta = json.loads(parts["meta.json"])
    big = bytes(3_000_000)
    meta["files"]["best"] = {"sha256": hashlib.sha256(big).hexdigest(), "size": len(big)}
    members = {**parts, "meta.json": json.dumps(meta).encode(), "best.safetensors": big}
    path = _tar_with(tmp_path / "big.tar", [(_reg(n), d) for n, d in members.items()])
    written = _spy_writes(monkeypatch)
    with pytest.raises(ProfileError, match=r"best.safetensors declares 3,000,000 bytes, more than a model of"):
        store.import_(path, name="big")
    assert written == [] and not store.exists("big")
    assert sorted(p.name for p in store.root.iterdir()) == ["tiny"]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse archive")
@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({}, "best.safetensors declares 4,294,967,296 bytes, more than a model of"),
        ({"hidden": 4096, "layers": 6}, "best.safetensors is not a valid safetensors file"),  # sizes that could fit
    ],
)
def test_a_small_sparse_archive_declaring_4_gib_writes_nothing(store, tmp_path, monkeypatch, model, message):
    parts = _archive_parts(store, tmp_path)
    meta = json.loads(parts["meta.json"])
    meta["model"].update(model)
    meta["train_config"].update(model)
    src = tmp_path / "src"
    src.mkdir()
    for name, data in parts.items():
        (src / name).write_bytes(data)
    with open(src / "best.safetensors", "r+b") as f:
        f.truncate(4 << 30)  # a hole: zeros that cost no disk
    meta["files"]["best"]["size"] = 4 << 30
    (src / "meta.json").write_text(json.dumps(meta))
    tar_path = tmp_path / "sparse.tar"
    subprocess.run(["tar", "-S", "-cf", str(tar_path), "-C", str(src), *parts], check=True, timeout=120)
    assert tar_path.stat().st_size < 1 << 20
    written = _spy_writes(monkeypatch)
    with pytest.raises(ProfileError, match=message):
        store.import_(tar_path, name="sparse")
    assert written == [] and not store.exists("sparse")
    assert sorted(p.name for p in store.root.iterdir()) == ["tiny"]


def test_a_failed_import_leaves_no_lock_and_says_nothing_was_created(store, tmp_path, monkeypatch):
    parts = _archive_parts(store, tmp_path)
    flipped = {n: (d[:-1] + bytes([d[-1] ^ 1])) if n == "optim.safetensors" else d for n, d in parts.items()}
    bad = _tar_with(tmp_path / "bad.tar", [(_reg(n), d) for n, d in flipped.items()])
    with pytest.raises(ProfileError, match="optim.safetensors is corrupt"):
        store.import_(bad, name="bad")
    good = _tar_with(tmp_path / "good2.tar", [(_reg(n), d) for n, d in parts.items()])

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(fileio, "write_bytes", full_disk)
    with pytest.raises(ProfileError) as info:
        store.import_(good, name="full")
    assert "no profile full was created" in str(info.value) and "previous version" not in str(info.value)
    assert sorted(p.name for p in store.root.iterdir()) == ["tiny"]


def test_a_released_lock_of_a_missing_profile_is_deleted_and_never_shared(store):
    with store.lock("new"):
        assert (store.root / ".new.lock").exists()
    assert not (store.root / ".new.lock").exists()  # no profile came of it
    first = store.lock("new").__enter__()
    stale = os.open(store.root / ".new.lock", os.O_RDWR)  # a taker that opened the file before it was deleted
    first.release()
    import fcntl

    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # it gets the old file's flock...
    try:
        with store.lock("new"):  # ...but the lock is the file at the path, which a new taker gets
            pass
    finally:
        os.close(stale)


def _linked_profile(store: ProfileStore, tmp_path: Path) -> Path:
    """Profile 'far' whose directory is a link to another place (a disk of its own), holding a user's files."""
    store.save("far", make_meta(step=1), make_tensors(1.0))
    elsewhere = tmp_path / "other-disk" / "far"
    elsewhere.parent.mkdir()
    shutil.move(str(store.root / "far"), elsewhere)
    os.symlink(elsewhere, store.root / "far")
    (elsewhere / "notes.txt").write_text("mine")
    (elsewhere / "v000000").mkdir()  # named like a version, but no records: not lstmtui's
    (elsewhere / "v000000" / "draft.txt").write_text("also mine")
    return elsewhere


def test_a_linked_profile_directory_is_followed_and_only_recorded_files_are_deleted(store, tmp_path):
    elsewhere = _linked_profile(store, tmp_path)
    store.save("far", make_meta(step=2), make_tensors(2.0))
    store.save("far", make_meta(step=3), {"best": make_tensors(3.0)["best"]})
    assert (store.root / "far").is_symlink()  # still a link: written through, never replaced
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.txt", "v000000", "v000003"]
    assert (elsewhere / "v000000" / "draft.txt").read_text() == "also mine"
    assert store.load_meta("far").progress.step == 3 and [i.name for i in store.list()] == ["far"]
    with pytest.raises(ProfileError, match=r"removed the saved versions of profile far, but .* also holds 'notes.txt'"):
        store.remove("far")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.txt", "v000000"]
    assert (store.root / "far").is_symlink() and (elsewhere / "notes.txt").read_text() == "mine"
    shutil.rmtree(elsewhere / "v000000")
    (elsewhere / "notes.txt").unlink()
    store.save("far", make_meta(step=4), make_tensors(4.0))
    store.remove("far")
    assert not elsewhere.exists() and not os.path.lexists(store.root / "far")
    assert list(store.root.iterdir()) == []


def test_an_old_version_whose_records_cannot_be_read_is_kept(store):
    store.save("tiny", make_meta(step=1), make_tensors())
    old = version_dir(store, "tiny")
    (old / "meta.json").write_text("{damaged")
    (old / "extra.bin").write_bytes(b"x")
    store.save("tiny", make_meta(step=2), make_tensors())
    assert old.is_dir() and (old / "extra.bin").exists()
    assert store.load_meta("tiny").progress.step == 2


def test_unique_name_skips_a_name_a_run_holds_before_its_first_save(store):
    with store.lock("fresh"):
        assert not store.exists("fresh")
        assert store.unique_name("fresh") == "fresh-2"
