"""ProfileMeta: release 0.1's format loads, every field round-trips, and hostile values fail in one line."""

from __future__ import annotations

import copy
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles import (
    FORMAT_VERSION,
    CleaningRecord,
    CorpusProvenance,
    History,
    HistoryEvent,
    ProfileMeta,
    ProfileStore,
    Progress,
    RngState,
    SamplingDefaults,
    TrainPoint,
    ValPoint,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "release-0.1" / "profiles"
FIXTURE_META = FIXTURE / "release-0.1" / "v000003" / "meta.json"
VOCAB = [chr(c) for c in range(97, 97 + 6)]


def fixture_json() -> dict:
    return json.loads(FIXTURE_META.read_text())


def minimal(**extra) -> dict:
    data = {
        "format_version": 1,
        "model": ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=1).to_dict(),
        "vocab": list(VOCAB),
        "files": {},
    }
    data.update(extra)
    return data


# ----- format 1 (release 0.1) -----


def test_the_release_0_1_profile_reads_as_typed_values():
    meta = ProfileMeta.from_bytes("profile release-0.1", FIXTURE_META.read_bytes())
    assert meta.format_version == 1 and meta.name == "release-0.1"
    assert meta.model == ModelConfig(
        vocab_size=14, hidden=48, layers=2, dropout=0.0, input="embedding", embedding_dim=64
    )
    assert meta.vocab[:4] == ("\n", "+", "-", "0") and len(meta.vocab) == 14
    assert isinstance(meta.train_config, TrainConfig) and meta.train_config.max_steps == 25
    assert meta.progress.step == 25 and meta.progress.steps_per_epoch == 211 and meta.progress.best_step == 25
    assert meta.progress.best_val_loss == pytest.approx(2.6244987263698603) and meta.progress.finished is False
    assert meta.corpus.paths == ("/work/main/sample_corpora/arithmetic.txt",) and meta.corpus.n_chars == 60005
    assert meta.corpus.cleaning == CleaningRecord(
        "utf-8",
        True,
        False,
        0,
        ("decode utf-8", "newlines CRLF/CR to LF", "drop control characters except newline and tab", "Unicode NFC"),
    )
    assert meta.history.train[0] == TrainPoint(1, 2.64373, 0.07) and meta.history.train[0].loss == 2.64373
    assert meta.history.val[-1] == ValPoint(25, 2.6245, 3.78635, 0.28)
    assert meta.sampling == SamplingDefaults()
    assert meta.rng.python[0] == 3 and len(meta.rng.python[1]) == 625 and meta.rng.numpy[0] == "MT19937"
    assert meta.optim_groups[0]["betas"] == [0.9, 0.999] and meta.optim_groups[0]["params"] == list(range(11))
    assert set(meta.files) == {"latest", "best", "optim", "state"} and meta.files["state"].size == 11408
    assert meta.versions.lstmtui == "0.1.0" and meta.best_bpc() == pytest.approx(3.786351297353198)


def test_the_release_0_1_profile_writes_back_the_same_json_plus_the_sampling_defaults_it_implied():
    original = fixture_json()
    written = ProfileMeta.from_json("profile release-0.1", original).to_json()
    assert list(written) == list(original)  # the same keys in the same order
    added = {"repetition_penalty": 1.0, "repetition_window": 32, "no_repeat_ngram": 0}
    assert written["sampling"] == {**original["sampling"], **added}
    for key in original:
        if key != "sampling":
            assert written[key] == original[key], key


def test_the_store_loads_the_release_0_1_profile_and_its_checksummed_tensors(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "profiles")
    store = ProfileStore(tmp_path)
    meta, tensors = store.load("release-0.1")
    assert meta.progress.step == 25 and set(tensors) == set(meta.files)
    assert [i.name for i in store.list()] == ["release-0.1"] and store.list()[0].meta == meta


def test_only_model_vocab_and_files_are_required_and_the_rest_reads_as_defaults():
    meta = ProfileMeta.from_json("profile p", minimal())
    assert meta.progress == Progress() and meta.history == History() and meta.rng == RngState()
    assert meta.train_config is None and meta.corpus is None and meta.sampling == SamplingDefaults()
    assert meta.best_bpc() is None and meta.name is None
    for key in ("model", "vocab", "files"):
        data = minimal()
        del data[key]
        with pytest.raises(ProfileError, match=f"profile p: meta.json lacks '{key}'"):
            ProfileMeta.from_json("profile p", data)


def test_unknown_keys_are_tolerated_but_neither_exposed_nor_written():
    data = minimal(future_key={"x": 1}, progress={"step": 3, "new_counter": 9}, corpus={"paths": [], "extra": 1})
    meta = ProfileMeta.from_json("profile p", data)
    written = meta.to_json()
    assert "future_key" not in written and "new_counter" not in written["progress"]
    assert "extra" not in written["corpus"] and not hasattr(meta, "future_key")


# ----- round trips -----


def full_meta() -> ProfileMeta:
    return ProfileMeta(
        model=ModelConfig(vocab_size=len(VOCAB), hidden=8, layers=2, input="onehot"),
        vocab=tuple(VOCAB),
        train_config=TrainConfig(epochs=3, lr=1e-3),
        progress=Progress(
            epoch=1,
            epoch_step=2,
            steps_per_epoch=10,
            step=12,
            elapsed_s=3.5,
            best_val_loss=1.25,
            best_val_bpc=1.25 / math.log(2),
            best_step=10,
            bad_epochs=1,
            base_lr=1e-3,
            lr_scale=0.5,
            hidden_policy="carry",
            finished=True,
            parameters=1234,
            device="cpu",
        ),
        corpus=CorpusProvenance(
            paths=("/a.txt", "-"),
            size_bytes=10,
            n_chars=9,
            sha256="a" * 64,
            file_sha256=("b" * 64,),
            cleaning=CleaningRecord("latin-1", False, True, 2, ("x",)),
            vocab_size=6,
            skipped=("/bin.dat",),
        ),
        sampling=SamplingDefaults(temperature=0.5, top_k=3, top_p=0.9, beam=2, length=77),
        history=History(
            train=(TrainPoint(1, 2.0, 0.1), TrainPoint(2, float("nan"), 0.2)),
            val=(ValPoint(2, 1.9, 2.7, 0.2),),
            events=(HistoryEvent(2, "fine-tune", ("/b.txt",)),),
        ),
        optim_groups=({"lr": 0.001, "betas": [0.9, 0.99], "params": [0, 1], "fused": None, "amsgrad": False},),
        rng=RngState(python=(3, tuple(range(624)) + (624,), None), numpy=("MT19937", tuple(range(624)), 5, 0, 0.0)),
        name="p",
        created="2026-01-01T00:00:00+00:00",
        updated="2026-01-02T00:00:00+00:00",
    )


def same(a: ProfileMeta, b: ProfileMeta) -> bool:
    """Equal, with NaN points equal to NaN points (a diverged run's history)."""
    return json.dumps(a.to_json()) == json.dumps(b.to_json())


def test_every_field_round_trips_through_json_and_bytes():
    meta = full_meta()
    again = ProfileMeta.from_bytes("profile p", meta.to_bytes())
    assert same(again, meta)
    assert replace(again, history=History()) == replace(meta, history=History())
    assert math.isnan(again.history.train[1].loss) and again.history.events[0].corpus == ("/b.txt",)


def test_a_saved_profile_meta_round_trips_through_the_store(tmp_path):
    store = ProfileStore(tmp_path)
    meta = full_meta()
    store.save("p", meta, {"latest": {"w": torch.ones(2)}})
    loaded = store.load_meta("p")
    assert loaded.files["latest"].size > 0 and loaded.format_version == FORMAT_VERSION
    assert loaded.versions.torch == torch.__version__ and loaded.created == meta.created
    assert same(replace(loaded, files={}, updated=None, versions=meta.versions), replace(meta, updated=None))


@settings(max_examples=60, deadline=None)
@given(
    step=st.integers(0, 2**62),
    epoch=st.integers(0, 2**40),
    elapsed=st.floats(0, 1e12),
    best=st.none() | st.floats(0, 1e6),
    finished=st.booleans(),
    losses=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=20),
    temperature=st.floats(0, 100),
    top_p=st.floats(1e-9, 1.0),
    paths=st.lists(st.text(max_size=30), max_size=4),
)
def test_any_in_range_values_round_trip(step, epoch, elapsed, best, finished, losses, temperature, top_p, paths):
    meta = ProfileMeta(
        model=ModelConfig(vocab_size=len(VOCAB), hidden=4, layers=1),
        vocab=tuple(VOCAB),
        progress=Progress(step=step, epoch=epoch, elapsed_s=elapsed, best_val_loss=best, finished=finished),
        history=History(train=tuple(TrainPoint(i, loss, None) for i, loss in enumerate(losses))),
        sampling=SamplingDefaults(temperature=temperature, top_p=top_p),
        corpus=CorpusProvenance(paths=tuple(paths)),
    )
    assert same(ProfileMeta.from_bytes("profile p", meta.to_bytes()), meta)


# ----- hostile values -----


def at(data: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(data)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


BAD = [
    (("vocab", 0), "\ud800", "lone surrogate"),
    (("vocab", 0), "ab", "single characters"),
    (("vocab",), "abcdef", "'vocab' must be a list"),
    (("corpus",), {"paths": "abc"}, "corpus.paths must be a list of strings"),
    (("corpus",), {"paths": [1]}, "corpus.paths must be a list of strings"),
    (("corpus",), {"n_chars": -1}, "corpus.n_chars must be a whole number"),
    (("corpus",), {"sha256": "xyz"}, "corpus.sha256 must be a sha256"),
    (("corpus",), {"file_sha256": ["nothex"]}, "corpus.file_sha256 must list sha256"),
    (("corpus",), {"cleaning": {"encoding": "rot13"}}, "'rot13' is not a text encoding"),
    (("corpus",), {"cleaning": {"encoding": "no-such-codec"}}, "is not a text encoding"),
    (("corpus",), {"cleaning": {"lowercase": "yes"}}, "corpus.cleaning.lowercase must be true or false"),
    (("progress",), {"step": 10**400}, "progress.step must be a whole number"),
    (("progress",), {"step": 2**63}, "progress.step must be a whole number"),
    (("progress",), {"step": True}, "progress.step must be a whole number"),
    (("progress",), {"epoch": None}, "progress.epoch must not be null"),
    (("progress",), {"elapsed_s": float("nan")}, "progress.elapsed_s must be a number"),
    (("progress",), {"elapsed_s": -1}, "progress.elapsed_s must be a number"),
    (("progress",), {"best_val_loss": -0.5}, "progress.best_val_loss must be a number >= 0"),
    (("progress",), {"best_val_loss": 10**400}, "progress.best_val_loss must be a number"),
    (("progress",), {"best_step": -2}, "progress.best_step must be a whole number"),
    (("progress",), {"device": "x" * 5000}, "progress.device is longer than"),
    (("sampling",), {"top_p": 0}, "sampling.top_p must be a number"),
    (("sampling",), {"temperature": float("inf")}, "sampling.temperature must be a number"),
    (("sampling",), {"beam": 10**9}, "sampling.beam must be a whole number"),
    (("sampling",), {"length": "500"}, "sampling.length must be a whole number"),
    (("train_config",), {"lr": float("nan")}, "train_config is invalid"),
    (("train_config",), {"batch": 0}, "train_config is invalid"),
    (("train_config",), {"device": ["cpu"]}, "train_config.device must be a string"),
    (("train_config",), [], "'train_config' must be a JSON object"),
    (("history",), {"train": [[1.5, 2.0]]}, "history.train must be a list of [step, value, ...]"),
    (("history",), {"train": [[1, None]]}, "history.train must be"),
    (("history",), {"val": [[1]]}, "history.val must be"),
    (("history",), {"train": "abc"}, "history.train must be"),
    (("history",), {"events": [{"step": "x"}]}, "history.events[0].step must be a whole number"),
    (("rng",), {"python": [3, [1, 2], None]}, "rng.python is not a saved Python random state"),
    (("rng",), {"numpy": ["MT19937", [0] * 624, 999, 0, 0.0]}, "rng.numpy is not a saved numpy random state"),
    (("optim_groups",), {"lr": 1}, "'optim_groups' must be a list"),
    (("optim_groups",), [{"params": ["0"]}], "optim_groups[0].params must be a list of parameter indices"),
    (("optim_groups",), [{"betas": [0.9, 1.5]}], "optim_groups[0].betas must be two numbers"),
    (("optim_groups",), [{"lr": float("nan")}], "optim_groups[0].lr must be a flag, a string or a finite number"),
    (("optim_groups",), [{"x": {"nested": 1}}], "optim_groups[0].x must be"),
    (("files",), {"best": {"sha256": "0" * 64, "size": 2**41}}, "files.best.size must be a byte count"),
    (("created",), 5, "'created' must be a string"),
    (("format_version",), 2, "written by a newer lstmtui (format 2 > 1); upgrade lstmtui"),
    (("format_version",), True, "format_version must be a positive whole number"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[f"{'.'.join(map(str, p))}-{m[:20]}" for p, _, m in BAD])
def test_hostile_values_fail_in_one_line_naming_the_profile_and_the_field(path, value, message):
    with pytest.raises(ProfileError) as info:
        ProfileMeta.from_json("profile evil", at(minimal(), path, value))
    text = str(info.value)
    assert text.startswith("profile evil") and message in text, text
    assert "\n" not in text and len(text) < 300


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_best_reads_as_none_yet(value):
    meta = ProfileMeta.from_json("profile p", minimal(progress={"best_val_loss": value, "best_val_bpc": value}))
    assert meta.progress.best_val_loss is None and meta.progress.best_val_bpc is None and meta.best_bpc() is None
    assert meta.to_json()["progress"]["best_val_loss"] is None


def test_a_corpus_path_that_is_not_valid_unicode_still_saves_and_loads(tmp_path):
    path = "/data/caf\udce9.txt"  # how Python names a file whose name is not UTF-8
    store = ProfileStore(tmp_path)
    meta = ProfileMeta.from_json("profile p", minimal(corpus={"paths": [path]}))
    store.save("p", meta, {"latest": {"w": torch.ones(1)}})
    assert store.load_meta("p").corpus.paths == (path,)


def test_save_refuses_a_profile_meta_it_could_not_read_back(tmp_path):
    store = ProfileStore(tmp_path)
    meta = ProfileMeta.from_json("profile p", minimal())
    with pytest.raises(ProfileError, match="profile p: 'vocab' holds '\\\\ud800', a lone surrogate"):
        store.save("p", replace(meta, vocab=("\ud800",) + meta.vocab[1:]), {"latest": {"w": torch.ones(1)}})
    with pytest.raises(ProfileError, match="profile p: vocabulary has 5 symbols but the model expects 6"):
        store.save("p", replace(meta, vocab=meta.vocab[1:]), {"latest": {"w": torch.ones(1)}})
    assert not store.exists("p")
