"""ONNX export: both graphs match PyTorch on a trained profile, greedy text agrees, docs' generator runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmtui.cli import main
from lstmtui.core.checkpoint import load_model
from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileStore

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "onnx.md"
PROFILE = "tiny"
TOLERANCE = 1e-4
HAVE_ONNX = all(find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are not installed")

WORDS = "the king queen night sword crown fair love hath doth thou thee speak good lord my your and to of".split()


def generated_corpus(path: Path, chars: int = 20_000) -> str:
    """Seeded pseudo-verse: lines of words, capitals and punctuation, so the model learns some structure."""
    rng = np.random.default_rng(7)
    lines = []
    while sum(len(line) + 1 for line in lines) < chars:
        words = [WORDS[i] for i in rng.integers(0, len(WORDS), rng.integers(3, 9))]
        lines.append(" ".join(words).capitalize() + rng.choice([".", ",", "!", "?", ";"]))
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A small 2-layer profile trained for 200 steps (a few seconds) through the CLI, in a home of its own."""
    home = tmp_path_factory.mktemp("onnx-home")
    corpus = home / "verse.txt"
    text = generated_corpus(corpus)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMTUI_HOME", str(home))
        mp.setenv("LSTMTUI_CACHE", str(home / "cache"))
        code = main([
            "train", str(corpus), "--profile", PROFILE, "--home", str(home), "--hidden", "48", "--layers", "2",
            "--embedding-dim", "16", "--seq-len", "32", "--batch", "16", "--epochs", "6", "--max-steps", "200",
            "--lr", "0.01", "--warmup-steps", "0", "--sample-every", "0", "--eval-every", "0", "--threads", "1",
            "--plain",
        ])  # fmt: skip
    assert code == 0
    return home, text


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The trained profile exported through the CLI, with its PyTorch model for reference."""
    if not HAVE_ONNX:
        pytest.skip("onnx, onnxscript and onnxruntime are not installed")
    home, text = trained
    out = tmp_path_factory.mktemp("onnx-out") / "tiny.onnx"
    assert main(["profiles", "export", PROFILE, "--format", "onnx", str(out), "--home", str(home)]) == 0
    model, vocab, meta = load_model(ProfileStore(home), PROFILE)
    return out, model, vocab, meta, text


def sessions(out: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(out)), ort.InferenceSession(str(out.with_name("tiny.step.onnx")))


def zeros(model, batch: int = 1) -> np.ndarray:
    return np.zeros((model.config.layers, batch, model.config.hidden), dtype=np.float32)


def close(actual: np.ndarray, expected: torch.Tensor) -> None:
    np.testing.assert_allclose(actual, expected.numpy(), rtol=0, atol=TOLERANCE)


@needs_onnx
def test_export_writes_both_graphs_and_the_json(exported, capsys):
    out, model, vocab, meta, _ = exported
    info = json.loads(out.with_suffix(".json").read_text(encoding="ascii"))
    assert out.is_file() and out.with_name("tiny.step.onnx").is_file()
    assert info["format"] == "lstmtui-onnx" and info["files"] == {"sequence": "tiny.onnx", "step": "tiny.step.onnx"}
    assert info["vocab"] == vocab.to_list() == list(meta.vocab)
    assert info["model"]["layers"] == 2 and info["model"]["hidden"] == 48
    assert info["model"]["parameters"] == model.parameter_count()
    assert info["sampling"]["temperature"] == meta.sampling.temperature
    assert info["source"]["profile"] == PROFILE and info["default_start"] == "\n"
    assert info["graphs"]["step"]["outputs"]["logits"]["shape"] == ["batch", len(vocab)]
    seq, step = sessions(out)
    assert [i.name for i in seq.get_inputs()] == ["ids", "h_in", "c_in"]
    assert [o.name for o in step.get_outputs()] == ["logits", "h_out", "c_out"]
    assert seq.get_outputs()[0].shape == ["batch", "time", len(vocab)]


@needs_onnx
def test_sequence_graph_matches_pytorch_over_a_200_character_prime(exported):
    out, model, vocab, _, text = exported
    seq, _ = sessions(out)
    ids = np.asarray(vocab.encode(text[1000:1200]), dtype=np.int64)[None, :]
    assert ids.shape == (1, 200)
    with torch.no_grad():
        logits, (h, c) = model(torch.from_numpy(ids))
    got = seq.run(None, {"ids": ids, "h_in": zeros(model), "c_in": zeros(model)})
    close(got[0], logits)
    close(got[1], h)
    close(got[2], c)
    # The same prime in two calls, the state carried between them, gives the same result.
    first = seq.run(None, {"ids": ids[:, :130], "h_in": zeros(model), "c_in": zeros(model)})
    second = seq.run(None, {"ids": ids[:, 130:], "h_in": first[1], "c_in": first[2]})
    close(np.concatenate([first[0], second[0]], axis=1), logits)
    close(second[1], h)
    close(second[2], c)


@needs_onnx
def test_step_graph_matches_pytorch_character_by_character(exported):
    out, model, vocab, _, text = exported
    _, step = sessions(out)
    ids = vocab.encode(text[3000:3200]).astype(np.int64)
    with torch.no_grad():
        logits, (h, c) = model(torch.from_numpy(ids)[None, :])
    h_in, c_in = zeros(model), zeros(model)
    for t, cid in enumerate(ids):
        row, h_in, c_in = step.run(None, {"ids": np.array([cid]), "h_in": h_in, "c_in": c_in})
        close(row[0], logits[0, t])
    close(h_in, h)
    close(c_in, c)


@needs_onnx
def test_a_batch_of_rows_runs_each_row_on_its_own(exported):
    out, model, vocab, _, text = exported
    seq, step = sessions(out)
    ids = np.stack([vocab.encode(text[i : i + 50]) for i in (0, 500, 900)]).astype(np.int64)
    with torch.no_grad():
        logits, (h, c) = model(torch.from_numpy(ids))
        after, _ = model(torch.from_numpy(ids[:, :1]), (h, c))
    got = seq.run(None, {"ids": ids, "h_in": zeros(model, 3), "c_in": zeros(model, 3)})
    close(got[0], logits)
    stepped = step.run(None, {"ids": ids[:, 0], "h_in": got[1], "c_in": got[2]})
    close(stepped[0], after[:, 0])


def torch_greedy(model, vocab, prime: str, length: int) -> str:
    """Greedy continuation in PyTorch; torch.argmax returns the first maximum (the lowest id)."""
    with torch.no_grad():
        logits, state = model(torch.from_numpy(vocab.encode(prime).astype(np.int64))[None, :])
        out = []
        for _ in range(length):
            cid = int(torch.argmax(logits[0, -1]))
            out.append(cid)
            logits, state = model(torch.tensor([[cid]]), state)
    return vocab.decode(out)


def onnx_greedy(out: Path, model, vocab, prime: str, length: int) -> str:
    seq, step = sessions(out)
    ids = vocab.encode(prime).astype(np.int64)[None, :]
    logits, h, c = seq.run(None, {"ids": ids, "h_in": zeros(model), "c_in": zeros(model)})
    row, chosen = logits[0, -1], []
    for _ in range(length):
        cid = int(np.argmax(row))  # the first maximum: the lowest id, as on the PyTorch side
        chosen.append(cid)
        logits, h, c = step.run(None, {"ids": np.array([cid], dtype=np.int64), "h_in": h, "c_in": c})
        row = logits[0]
    return vocab.decode(chosen)


def doc_generator() -> str:
    """The Python block of docs/onnx.md, exactly as written there."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@needs_onnx
def test_greedy_text_is_the_same_in_pytorch_onnxruntime_and_the_docs_generator(exported, tmp_path):
    out, model, vocab, _, text = exported
    prime = text[2000:2200]
    expected = torch_greedy(model, vocab, prime, 100)
    assert len(expected) == 100
    assert onnx_greedy(out, model, vocab, prime, 100) == expected
    script = tmp_path / "generate_onnx.py"
    script.write_text(doc_generator(), encoding="utf-8")
    assert len(doc_generator().strip().splitlines()) <= 40
    done = subprocess.run(
        [sys.executable, str(script), str(out), prime, "100", "0"],
        capture_output=True, text=True, encoding="utf-8", timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == prime + expected + "\n"


@needs_onnx
def test_docs_generator_samples_with_the_profiles_defaults(exported, tmp_path):
    out, _, vocab, _, _ = exported
    script = tmp_path / "generate_onnx.py"
    script.write_text(doc_generator(), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(out), "The king", "60"],
        capture_output=True, text=True, encoding="utf-8", timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("The king") and len(done.stdout) == len("The king") + 60 + 1
    assert not vocab.missing(done.stdout)


@needs_onnx
def test_one_hot_input_exports_too_after_another_export_in_the_same_process(exported, tmp_path):
    # `exported` ran a first export in this process: a second one must keep its time size free too.
    from lstmtui.core.onnx_export import export_model

    torch.manual_seed(3)
    model = CharLSTM(ModelConfig(vocab_size=12, hidden=16, layers=1, input="onehot")).eval()
    result = export_model(model, list("abcdefghij \n"), tmp_path / "onehot.onnx")
    assert not model.training  # the caller's model is left as it was
    assert {p.name for p in result.files} == {"onehot.onnx", "onehot.step.onnx", "onehot.json"}
    import onnxruntime as ort

    ids = torch.randint(0, 12, (2, 30))  # 30 steps: the graph was traced with 3
    with torch.no_grad():
        logits, (h, c) = model(ids)
    state = np.zeros((1, 2, 16), dtype=np.float32)
    got = ort.InferenceSession(str(result.sequence)).run(None, {"ids": ids.numpy(), "h_in": state, "c_in": state})
    close(got[0], logits)
    close(got[1], h)
    close(got[2], c)


def test_missing_exporter_packages_are_a_one_line_error(trained, tmp_path, monkeypatch, capsys):
    home, _ = trained
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` raise ImportError
    out = tmp_path / "tiny.onnx"
    code = main(["profiles", "export", PROFILE, "--format", "onnx", str(out), "--home", str(home)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "onnxscript" in err and "pip install 'lstmtui[onnx]'" in err
    assert list(tmp_path.iterdir()) == []


def test_an_onnx_file_name_must_end_in_onnx(trained, tmp_path, capsys):
    home, _ = trained
    code = main(["profiles", "export", PROFILE, "--format", "onnx", str(tmp_path / "tiny.bin"), "--home", str(home)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "must end in .onnx" in err
    assert list(tmp_path.iterdir()) == []


def test_the_archive_stays_the_default_format(trained, tmp_path, capsys):
    home, _ = trained
    assert main(["profiles", "export", PROFILE, str(tmp_path / "tiny.tar"), "--home", str(home)]) == 0
    assert main(["profiles", "import", str(tmp_path / "tiny.tar"), "--name", "copy", "--home", str(home)]) == 0
    assert ProfileStore(home).exists("copy")
