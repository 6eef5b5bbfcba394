"""The defects found attacking lstmtui (issue 17), each through the command a user types.

Every hostile file is made here: a real profile trained once, then copied and damaged per test.
Each attack must end in one line `lstmtui: error: ...` naming the profile or file, exit status 2,
no traceback, and nothing allocated, written or blocked before the check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import threading
from pathlib import Path

import pytest
import safetensors.torch
import torch

from lstmtui import cli
from lstmtui.cli import main
from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileStore

TINY = "--hidden 16 --layers 1 --seq-len 16 --batch 4 --sample-every 0 --eval-every 0 --threads 1 --plain".split()
fifo_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real profile 'base' after 3 steps (its own home), with a corpus that stays where it was."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "words.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 300)
    home = root / "home"
    code = main(["train", str(corpus), "--home", str(home), "--profile", "base", "--max-steps", "3", *TINY])
    assert code == 0
    return home


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmtui: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def copy_profile(trained: Path, name: str) -> Path:
    """The trained profile copied into this test's home as ``name``; the path of its meta.json."""
    dest = ProfileStore().root / name
    shutil.copytree(trained / "profiles" / "base", dest)
    return sorted(dest.glob("v*"))[-1] / "meta.json"


def edit_meta(meta_path: Path, edit) -> None:
    data = json.loads(meta_path.read_text())
    edit(data)
    meta_path.write_text(json.dumps(data))


def replace_group(meta_path: Path, group: str, tensors: dict[str, torch.Tensor]) -> None:
    """Rewrite a tensor file and record its new size and checksum, so only its content is hostile."""
    import hashlib

    path = meta_path.parent / f"{group}.safetensors"
    path.unlink()
    safetensors.torch.save_file(tensors, str(path))
    data = path.read_bytes()
    edit_meta(
        meta_path, lambda m: m["files"].update({group: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}})
    )


@pytest.fixture
def no_big_models(monkeypatch):
    """Fail the test if a model over a million parameters is ever built."""
    real_init = CharLSTM.__init__

    def guarded(self, config):
        assert config.parameter_count() < 1_000_000, f"allocated a {config.parameter_count():,}-parameter model"
        real_init(self, config)

    monkeypatch.setattr(CharLSTM, "__init__", guarded)


def generate_and_train(capsys, tmp_path, name: str, *needles: str) -> None:
    """generate (plain, --json, --output) and train --profile each refuse the profile in one line."""
    out = tmp_path / "out.txt"
    for extra in ([], ["--json"], ["--output", str(out)]):
        code, _, err = run_cli(capsys, "generate", "--profile", name, "--length", "5", *extra)
        one_line_error(code, err, f"profile {name}", *needles)
    assert not out.exists()  # refused before the output was opened
    code, _, err = run_cli(capsys, "train", "--profile", name, "--max-steps", "5", "--plain", "--threads", "1")
    one_line_error(code, err, f"profile {name}", *needles)


# ----- hostile metadata ---------------------------------------------------------------------------


def test_a_lone_surrogate_in_the_vocabulary(trained, capsys, tmp_path):
    edit_meta(copy_profile(trained, "sur"), lambda m: m["vocab"].__setitem__(-1, "\ud800"))
    generate_and_train(capsys, tmp_path, "sur", "lone surrogate")


@pytest.mark.parametrize(
    "corpus",
    [{"paths": "abc"}, "abc", {"paths": [1, 2]}, {"size_bytes": "big"}, {"cleaning": 5}, {"skipped": {"a": 1}}],
    ids=str,
)
def test_corpus_metadata_of_the_wrong_types(trained, capsys, tmp_path, corpus):
    def edit(m):
        m["corpus"] = {**m["corpus"], **corpus} if isinstance(corpus, dict) else corpus

    edit_meta(copy_profile(trained, "types"), edit)
    generate_and_train(capsys, tmp_path, "types", "corpus")


@pytest.mark.parametrize("codec", ["rot13", "hex", "base64", "zlib"])
def test_a_codec_that_is_not_a_text_encoding_in_the_cleaning_record(trained, capsys, tmp_path, codec):
    edit_meta(copy_profile(trained, "codec"), lambda m: m["corpus"]["cleaning"].__setitem__("encoding", codec))
    generate_and_train(capsys, tmp_path, "codec", "not a text encoding")


@pytest.mark.parametrize("codec", ["rot13", "hex", "undefined", "punycode"])
def test_an_encoding_option_that_is_not_a_text_encoding(tmp_path, capsys, codec):
    corpus = tmp_path / "c.txt"
    corpus.write_text("plain words here\n" * 200)
    code, _, err = run_cli(capsys, "train", str(corpus), "--profile", "enc", *TINY, "--encoding", codec)
    one_line_error(code, err, "--encoding", codec)
    assert not ProfileStore().exists("enc")
    assert not (ProfileStore().root / ".enc.lock").exists()  # a failed first run leaves no lock file behind


def strict_json(line: str):
    def refuse(token):
        raise AssertionError(f"non-JSON token {token} in {line[:80]}")

    return json.loads(line, parse_constant=refuse)


def test_a_nan_best_is_no_best_yet_and_every_log_line_is_strict_json(trained, capsys, tmp_path):
    meta_path = copy_profile(trained, "nanbest")
    edit_meta(meta_path, lambda m: m["progress"].update(best_val_loss=float("nan"), best_val_bpc=float("nan")))
    assert "NaN" in meta_path.read_text()
    assert ProfileStore().load_meta("nanbest").progress.best_val_loss is None
    log = tmp_path / "log.jsonl"
    code, _, err = run_cli(
        capsys, "train", "--profile", "nanbest", "--max-steps", "5", "--eval-every", "1", "--log-jsonl", str(log)
    )
    assert code == 0, err
    events = [strict_json(line) for line in log.read_text().splitlines()]
    assert [e for e in events if e.get("event") == "finished"]
    best = ProfileStore().load_meta("nanbest").progress.best_val_loss
    assert best is not None and math.isfinite(best)  # a new best was recorded after the NaN one


def test_the_log_writer_writes_non_finite_numbers_as_null():
    import io

    import numpy as np

    from lstmtui.commands.train import JsonlWriter

    class Event:
        kind = "step"

        def to_dict(self):
            return {"loss": float("nan"), "lr": float("inf"), "more": [float("-inf"), {"x": np.float32("nan")}], "n": 1}

    stream = io.StringIO()
    JsonlWriter(stream)(Event())
    assert strict_json(stream.getvalue()) == {"loss": None, "lr": None, "more": [None, {"x": None}], "n": 1}


# ----- profiles claiming more than they hold -------------------------------------------------------


def claim_huge(meta_path: Path) -> int:
    """Claim a 4096 x 6 model in the metadata, with file sizes to match it; the real files stay tiny."""

    def edit(m):
        m["model"].update(hidden=4096, layers=6)
        m["train_config"].update(hidden=4096, layers=6)
        size = ModelConfig.from_dict(m["model"]).parameter_count() * 4 + 2000
        for group in ("best", "latest"):
            m["files"][group]["size"] = size

    edit_meta(meta_path, edit)
    return json.loads(meta_path.read_text())["files"]["best"]["size"]


def test_a_tiny_profile_claiming_a_huge_model_with_matching_sizes(trained, capsys, tmp_path, no_big_models):
    claim_huge(copy_profile(trained, "big"))
    generate_and_train(capsys, tmp_path, "big", "truncated or altered")


def test_a_weights_file_stretched_to_the_claimed_size_is_refused_by_its_header(
    trained, capsys, tmp_path, no_big_models
):
    meta_path = copy_profile(trained, "sparse")
    size = claim_huge(meta_path)
    for group in ("best", "latest"):
        with open(meta_path.parent / f"{group}.safetensors", "r+b") as f:
            f.truncate(size)  # sparse: the real size now matches, the header does not
    generate_and_train(capsys, tmp_path, "sparse", "not a valid safetensors file")


def test_weights_whose_shapes_are_not_the_models_are_refused_before_building_it(trained, capsys, monkeypatch):
    meta_path = copy_profile(trained, "shapes")
    edit_meta(meta_path, lambda m: (m["model"].update(hidden=17), m["train_config"].update(hidden=17)))
    monkeypatch.setattr(CharLSTM, "__init__", lambda *a: pytest.fail("a model was built"))
    code, _, err = run_cli(capsys, "generate", "--profile", "shapes", "--length", "5")
    one_line_error(code, err, "profile shapes", "best.safetensors holds", "its model settings need")


def test_weight_shapes_are_those_of_the_model():
    from lstmtui.core.profiles.tensorfiles import weight_shapes

    for config in (
        ModelConfig(vocab_size=7, hidden=8, layers=3, input="onehot"),
        ModelConfig(vocab_size=5, hidden=4, layers=1, input="embedding", embedding_dim=3),
    ):
        model = {k: tuple(v.shape) for k, v in CharLSTM(config).state_dict().items()}
        assert weight_shapes(config) == model


def test_corrupt_optimizer_state(trained, capsys):
    meta_path = copy_profile(trained, "optim")
    replace_group(meta_path, "optim", {"x.exp_avg": torch.zeros(3)})
    code, _, err = run_cli(capsys, "train", "--profile", "optim", "--max-steps", "5")
    one_line_error(code, err, "profile optim: optim.safetensors: 'x.exp_avg' does not name")
    meta_path = copy_profile(trained, "optim2")
    replace_group(meta_path, "optim", {"0.exp_avg": torch.zeros(3, 3), "0.step": torch.tensor(1.0)})
    code, _, err = run_cli(capsys, "train", "--profile", "optim2", "--max-steps", "5")
    one_line_error(code, err, "profile optim2: optim.safetensors: 0.exp_avg has shape [3, 3]")


def test_corrupt_random_states(trained, capsys):
    meta_path = copy_profile(trained, "rng")
    replace_group(meta_path, "state", {"torch_rng": torch.zeros(10, dtype=torch.uint8)})
    code, _, err = run_cli(capsys, "train", "--profile", "rng", "--max-steps", "5")
    one_line_error(code, err, "profile rng: state.safetensors: torch_rng is not a saved torch random state")
    meta_path = copy_profile(trained, "hc")
    state = safetensors.torch.load_file(str(meta_path.parent / "state.safetensors"))
    replace_group(meta_path, "state", {**state, "h": torch.zeros(2, 4, 5), "c": torch.zeros(2, 4, 5)})
    code, _, err = run_cli(capsys, "train", "--profile", "hc", "--max-steps", "5")
    one_line_error(code, err, "profile hc: state.safetensors: h has shape [2, 4, 5]")
    meta_path = copy_profile(trained, "pyrng")
    edit_meta(meta_path, lambda m: m["rng"]["python"].__setitem__(0, 99))
    code, _, err = run_cli(capsys, "train", "--profile", "pyrng", "--max-steps", "5")
    one_line_error(code, err, "profile pyrng: its Python or numpy random state is damaged")


# ----- files named on the command line -------------------------------------------------------------


def run_with_timeout(args: list[str], seconds: float = 30) -> int:
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.update(code=main(args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{args} blocked"
    return result["code"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.timeout(60)
def test_a_prime_file_that_never_ends_is_refused(trained, capsys):
    copy_profile(trained, "p")
    code = run_with_timeout(["generate", "--profile", "p", "--prime-file", "/dev/zero"])
    one_line_error(code, capsys.readouterr().err, "--prime-file /dev/zero is a character device")


@fifo_only
@pytest.mark.timeout(60)
def test_fifos_never_block_any_file_option(trained, capsys, tmp_path, monkeypatch):
    from lstmtui.tui.keymap import load_keymap

    copy_profile(trained, "p")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    cases = [
        (["generate", "--profile", "p", "--prime-file", str(fifo)], "is a FIFO, not a regular file"),
        (["generate", "--profile", "p", "--length", "5", "--output", str(fifo)], "is a FIFO that no process reads"),
        (["train", "--profile", "p", "--max-steps", "5", "--log-jsonl", str(fifo)], "is a FIFO that no process reads"),
        (["profiles", "import", str(fifo)], "it is a FIFO, not a regular file"),
        (["profiles", "export", "p", str(fifo)], "it is a FIFO"),
    ]
    if Path("/dev/zero").exists():
        cases.append((["profiles", "import", "/dev/zero"], "it is a character device"))
    for args, needle in cases:
        code = run_with_timeout(args)
        one_line_error(code, capsys.readouterr().err, needle)
    assert fifo.is_fifo()  # export did not replace it
    assert ProfileStore().load_meta("p").progress.step == 3  # the refused train never started
    keymap = load_keymap(fifo)
    assert keymap.keymap == {} and "is a FIFO" in keymap.problems[0]


@fifo_only
@pytest.mark.timeout(60)
def test_an_output_fifo_with_a_reader_is_written(trained, capsys, tmp_path):
    copy_profile(trained, "p")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a process reading: like `--output >(cat)`
    try:
        assert (
            run_with_timeout(["generate", "--profile", "p", "--length", "7", "--seed", "1", "--output", str(fifo)]) == 0
        )
        written = os.read(reader, 1 << 16).decode()
    finally:
        os.close(reader)
    assert len(written) >= 7 and written in capsys.readouterr().out


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_output_device_is_one_line(trained, capsys, tmp_path):
    copy_profile(trained, "p")
    code, _, err = run_cli(capsys, "generate", "--profile", "p", "--length", "5", "--output", "/dev/full")
    one_line_error(code, err, "--output /dev/full: cannot write")
    code, _, err = run_cli(capsys, "generate", "--profile", "p", "--output", str(tmp_path))
    one_line_error(code, err, "is a directory")


# ----- the command line ----------------------------------------------------------------------------


def test_abbreviated_options_are_refused(trained, capsys):
    copy_profile(trained, "p")
    for args in (
        ["train", "--profile", "p", "--warm", "7"],
        ["train", "--profile", "p", "--max-s", "9"],
        ["train", "--profile", "p", "--sav", "1"],
        ["train", "--profile", "p", "--eval-e", "5"],
        ["generate", "--profile", "p", "--temp", "0.5"],
        ["profiles", "list", "--js"],
        ["--hidd", "5"],
    ):
        code, _, err = run_cli(capsys, *args)
        one_line_error(code, err, "unrecognized arguments")
    assert ProfileStore().load_meta("p").progress.step == 3


def test_no_parser_accepts_abbreviations():
    def walk(parser: argparse.ArgumentParser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from walk(sub)

    parsers = [*walk(cli.build_subcommand_parser()), cli.build_parser()]
    assert len(parsers) > 10 and not [p.prog for p in parsers if p.allow_abbrev]


def test_global_options_may_come_before_the_command(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 300)
    home = tmp_path / "elsewhere"
    code, _, err = run_cli(
        capsys, "--home", str(home), "train", str(corpus), "--profile", "g", "--max-steps", "2", *TINY
    )
    assert code == 0, err
    assert ProfileStore(home).exists("g") and not ProfileStore().exists("g")
    code, out, err = run_cli(capsys, "--home", str(home), "profiles", "list", "--json")
    assert code == 0 and json.loads(out.splitlines()[0])["name"] == "g", err
    code, out, err = run_cli(
        capsys, "--home", str(home), "--threads", "1", "generate", "--profile", "g", "--length", "5"
    )
    assert code == 0, err
    # a corpus file named like a command is given with a path; an option's value is never a command
    assert cli.command_first(["./train"]) is None
    assert cli.command_first(["--profile", "train", "c.txt"]) is None
    assert cli.command_first(["--", "train"]) is None
    assert cli.command_first(["--home", "d", "ps"]) == ["ps", "--home", "d"]
    code, out, _ = run_cli(capsys, "--help")
    assert "./train" in out


@pytest.mark.parametrize(
    "args",
    [
        ["train", "c.txt", "--profile", ""],
        ["generate", "--profile", ""],
        ["--profile", ""],
        ["stop", ""],
    ],
    ids=" ".join,
)
def test_an_empty_profile_name_is_refused(capsys, args):
    code, _, err = run_cli(capsys, *args)
    one_line_error(code, err, "name is empty")
    assert not ProfileStore().list()


def test_generate_threads_are_bounded_as_trains_are(capsys):
    code, _, err = run_cli(capsys, "generate", "--profile", "p", "--threads", "1000000000")
    one_line_error(code, err, "--threads", "between 0 and 1024")
