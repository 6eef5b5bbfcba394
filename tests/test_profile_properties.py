"""Property tests: no meta.json content makes the profile loader (or `profiles show`) fail but cleanly."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmtui.commands import profiles as profiles_command
from lstmtui.core.config import ModelConfig
from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles import ProfileMeta, ProfileStore

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.sampled_from([10**9, 2**63, -(2**63), 10**400, 1e308, -0.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=40,
)

# Paths into a valid meta whose values the mutations replace or delete.
PATHS = [
    ("format_version",),
    ("name",),
    ("created",),
    ("updated",),
    ("model",),
    ("model", "vocab_size"),
    ("model", "hidden"),
    ("model", "layers"),
    ("model", "dropout"),
    ("model", "input"),
    ("model", "embedding_dim"),
    ("vocab",),
    ("vocab", 0),
    ("files",),
    ("files", "best"),
    ("files", "best", "sha256"),
    ("files", "best", "size"),
    ("progress",),
    ("progress", "epoch"),
    ("progress", "step"),
    ("progress", "best_val_loss"),
    ("progress", "best_step"),
    ("progress", "finished"),
    ("progress", "elapsed_s"),
    ("history",),
    ("history", "train"),
    ("history", "val"),
    ("history", "train", 0),
    ("history", "val", 0, 2),
    ("corpus",),
    ("corpus", "paths"),
    ("train_config",),
    ("train_config", "epochs"),
    ("sampling",),
    ("rng",),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[ProfileStore, Path, dict]:
    """One real profile whose meta.json the examples overwrite."""
    store = ProfileStore(tmp_path_factory.mktemp("props"))
    vocab = [chr(c) for c in range(97, 97 + 8)]
    meta = {
        "model": ModelConfig(vocab_size=len(vocab), hidden=4, layers=1).to_dict(),
        "vocab": vocab,
        "train_config": {"epochs": 3},
        "progress": {
            "epoch": 1,
            "step": 10,
            "best_val_loss": 1.5,
            "best_step": 10,
            "finished": False,
            "elapsed_s": 2.0,
        },
        "history": {"train": [[1, 2.0, 0.1], [10, 1.7, 2.0]], "val": [[10, 1.5, 2.16, 2.0]]},
        "corpus": {"paths": ["/c/a.txt"]},
        "sampling": {"temperature": 0.8},
        "rng": {"python": [3, [0] * 624 + [624], None]},
    }
    meta = ProfileMeta.from_json("test meta", {"format_version": 1, "files": {}, **meta})
    vdir = store.save("p", meta, {"best": {"w": torch.ones(3)}, "latest": {"w": torch.zeros(3)}})
    return store, vdir / "meta.json", json.loads((vdir / "meta.json").read_text())


def check_loader(store: ProfileStore, meta_path: Path, raw: bytes) -> None:
    """Either a clean ProfileError, or a meta that list/show/load_tensors can all use."""
    meta_path.write_bytes(raw)
    try:
        meta = store.load_meta("p")
    except ProfileError as exc:
        text = str(exc)
        assert text.startswith("profile p") and "\n" not in text
        return
    assert len(meta.vocab) == meta.model.vocab_size
    for group in meta.files:
        try:
            store.load_tensors("p", group)
        except ProfileError:
            pass
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        profiles_command._show(store, "p", as_json=False)
        profiles_command._show(store, "p", as_json=True)
        profiles_command._list(store)
        profiles_command._list_json(store)
    assert "profile p" in out.getvalue()


@SETTINGS
@given(value=json_values)
def test_any_json_document_loads_or_fails_cleanly(saved, value):
    store, meta_path, _ = saved
    check_loader(store, meta_path, json.dumps(value).encode())


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_any_bytes_load_or_fail_cleanly(saved, raw):
    store, meta_path, _ = saved
    check_loader(store, meta_path, raw)


@SETTINGS
@given(
    edits=st.lists(st.tuples(st.sampled_from(PATHS), st.booleans(), json_values), min_size=1, max_size=4),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
)
def test_a_valid_meta_with_any_fields_replaced_or_removed_loads_or_fails_cleanly(saved, edits, extra):
    store, meta_path, base = saved
    meta = copy.deepcopy(base)
    for path, delete, value in edits:
        target = meta
        try:
            for part in path[:-1]:
                target = target[part]
            if delete:
                del target[path[-1]]
            else:
                target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit changed the shape above this path
    if isinstance(meta, dict):
        meta.update(extra)
    check_loader(store, meta_path, json.dumps(meta).encode())


def test_the_unmodified_meta_loads(saved):
    store, meta_path, base = saved
    meta_path.write_text(json.dumps(base))
    assert store.load_meta("p").progress.step == 10
