"""Bad input through the commands a user types (issue 7): one line `lstmtui: error: ...`, exit 2, no traceback.

Only the cases not already covered elsewhere:
- corpora: tests/test_corpus.py checks the engine's CorpusError for every bad corpus, and
  tests/test_train_cli.py runs missing, empty, PNG, Latin-1, UTF-16 and too-short ones through
  `lstmtui train`; here the rest go through `lstmtui train` too (a FIFO, a device, a directory
  with no text files, one character, unreadable, JPEG, NUL bytes, UTF-32, truncated UTF-8, a
  single 50 MB line that trains);
- options: every size, rate, length and count option at zero, negative, NaN or infinity, for
  `lstmtui train` and for the TUI's own command line (refused before the app starts), values that
  are not numbers, and `lstmtui generate`'s sampling options beyond tests/test_generate_cli.py's;
- profiles whose meta claims a model its files or this machine cannot hold: refused before
  anything is allocated (tests/test_profiles.py covers names, damaged files, bad JSON, newer
  formats, pickles and sizes beyond the limits at the store level).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstmtui.cli import main
from lstmtui.core import checkpoint
from lstmtui.core.config import ModelConfig
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileMeta, ProfileStore

TINY = [
    "--hidden",
    "32",
    "--layers",
    "1",
    "--seq-len",
    "16",
    "--batch",
    "8",
    "--epochs",
    "1",
    "--sample-every",
    "0",
    "--eval-every",
    "0",
    "--threads",
    "1",
    "--plain",
]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in this process; argparse's own exits are caught like the console script's would be."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lstmtui: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


# ----- corpora through `lstmtui train` ---------------------------------------------------------------


CORPORA = {
    "no-text-files": (
        lambda d: (write(d / "imgs" / "a.png", b"\x89PNG\r\n\x1a\n\x00\x00"), d / "imgs")[1],
        "no text files",
    ),
    "one-character": (lambda d: write(d / "one.txt", "x"), "only 1 character"),
    "one-distinct-character": (lambda d: write(d / "a.txt", "a" * 5000), "one distinct character"),
    "control-characters-only": (lambda d: write(d / "c.txt", b"\x01\x02\x1b" * 100), "no text after cleaning"),
    "jpeg": (lambda d: write(d / "photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(1, 256)) * 20), "JPEG image"),
    "nul-bytes": (lambda d: write(d / "bin.dat", b"hello\x00world" * 100), "binary"),
    "utf32-without-bom": (
        lambda d: write(d / "w.txt", "plain words\n".encode("utf-32-le") * 100),
        "encoding to utf-32-le",
    ),
    "truncated-utf8": (lambda d: write(d / "t.txt", ("abc " * 500 + "é").encode()[:-1]), "truncated"),
    "directory-of-nothing": (lambda d: (d / "empty-dir").mkdir() or d / "empty-dir", "no text files"),
}


@pytest.mark.parametrize("kind", sorted(CORPORA))
def test_bad_corpus_through_train(tmp_path, capsys, kind):
    make, needle = CORPORA[kind]
    path = make(tmp_path)
    code, _, err = run_cli(capsys, "train", str(path), *TINY)
    assert_one_line_error(code, err, needle)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(30)
def test_fifo_corpus_through_train_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = {}
    t = threading.Thread(target=lambda: result.update(code=main(["train", str(fifo), *TINY])), daemon=True)
    t.start()
    t.join(15)
    assert not t.is_alive(), "reading a FIFO blocked"
    _, err = capsys.readouterr()
    assert_one_line_error(result["code"], err, "FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.timeout(30)
def test_device_corpus_through_train_is_refused(capsys):
    code, _, err = run_cli(capsys, "train", "/dev/zero", *TINY)
    assert_one_line_error(code, err, "character device")


def test_unreadable_corpus_through_train(tmp_path, capsys, monkeypatch):
    path = write(tmp_path / "secret.txt", "some words " * 500)
    path.chmod(0)
    if os.geteuid() == 0:
        # Root reads anything: make the open fail the way it does for a user without permission.
        real_open = open

        def deny(file, *a, **k):
            if isinstance(file, (str, Path)) and Path(file).resolve() == path.resolve():
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *a, **k)

        monkeypatch.setattr("builtins.open", deny)
    try:
        code, _, err = run_cli(capsys, "train", str(path), *TINY)
    finally:
        path.chmod(0o600)
    assert_one_line_error(code, err, "permission denied")


@pytest.mark.timeout(120)
def test_a_single_50_mb_line_trains(tmp_path, capsys):
    word = b"lorem ipsum dolor sit amet "
    path = write(tmp_path / "line.txt", word * (50_000_000 // len(word)))
    code, out, err = run_cli(
        capsys, "train", str(path), *TINY, "--max-steps", "3", "--val-fraction", "0.0005", "--profile", "line"
    )
    assert code == 0, err
    assert "finished (max_steps)" in out
    assert ProfileStore().load_meta("line").corpus.n_chars == path.stat().st_size


def test_a_missing_corpus_for_the_app_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    from lstmtui.tui.app import LstmtuiApp

    monkeypatch.setattr(LstmtuiApp, "run", lambda self, *a, **k: pytest.fail("the app started"))
    code, _, err = run_cli(capsys, str(tmp_path / "nope.txt"))
    assert_one_line_error(code, err, "does not exist")


# ----- options ------------------------------------------------------------------------------------


BAD_OPTIONS = [
    ["--hidden", "-5"],
    ["--layers", "0"],
    ["--embedding-dim", "0"],
    ["--embedding-dim", "-1"],
    ["--seq-len", "-1"],
    ["--batch", "0"],
    ["--epochs", "-2"],
    ["--lr", "-0.001"],
    ["--lr", "nan"],
    ["--lr", "inf"],
    ["--lr", "1000"],
    ["--min-lr-ratio", "-0.1"],
    ["--min-lr-ratio", "2"],
    ["--warmup-steps", "-1"],
    ["--grad-clip", "-1"],
    ["--weight-decay", "-1"],
    ["--weight-decay", "nan"],
    ["--grad-clip", "nan"],
    ["--dropout", "-0.1"],
    ["--dropout", "nan"],
    ["--val-fraction", "-0.1"],
    ["--val-fraction", "0.9"],
    ["--seed", "-1"],
    ["--threads", "-1"],
    ["--max-steps", "-1"],
    ["--time-budget", "-5m"],
    ["--time-budget", "nan"],
    ["--eval-every", "-1"],
    ["--eval-max-chars", "0"],
    ["--sample-every", "-1"],
    ["--sample-length", "-1"],
    ["--sample-temperature", "-0.5"],
    ["--sample-temperature", "inf"],
    ["--early-stop", "-1"],
    ["--save-every", "-1"],
    ["--save-every", "inf"],
    ["--min-char-count", "-1"],
    ["--encoding", "no-such-codec"],
    ["--batch", "8192", "--seq-len", "10000"],  # allowed sizes, but far more memory than any machine here
]


def _flag(option: list[str]) -> str:
    return option[-2] if option[-2].startswith("--") else option[0]


@pytest.mark.parametrize("option", BAD_OPTIONS, ids=lambda o: " ".join(o))
def test_bad_training_option_through_train(tmp_path, capsys, option):
    corpus = write(tmp_path / "c.txt", "some words and more words\n" * 200)
    code, _, err = run_cli(capsys, "train", str(corpus), *TINY, *option)
    line = assert_one_line_error(code, err)
    if option[0] != "--batch":
        assert _flag(option) in line or "encoding" in line, line


def test_an_error_naming_a_setting_gets_the_option_that_sets_it_on_the_command_line():
    """The engine names settings in words and by field; the CLI puts the command's own option in front."""
    from lstmtui.commands import tui
    from lstmtui.commands.common import error_line
    from lstmtui.core.errors import ConfigError, CorpusError

    parser = tui.build_parser()
    cases = {
        ("hidden size must be between 1 and 8192, not 0", "hidden"): "--hidden: hidden size must be",
        ("early-stop patience (epochs) must be ...", "early_stop_patience"): "--early-stop: early-stop",
        ("time budget (seconds) must be ...", "time_budget_s"): "--time-budget: time budget",
        ("w.txt is UTF-32; set the corpus encoding to utf-32", "encoding"): "--encoding: w.txt is UTF-32",
    }
    for (message, field), expected in cases.items():
        error = (CorpusError if field == "encoding" else ConfigError)(message, field)
        assert error_line(error, parser).startswith(expected)
    # a setting the command has no option for, or an error naming none: the message alone
    assert error_line(ConfigError("vocabulary size must be ...", "vocab_size"), parser) == "vocabulary size must be ..."
    assert error_line(ConfigError("no option here"), parser) == "no option here"
    assert error_line(ConfigError("hidden size must be ...", "hidden"), None) == "hidden size must be ..."


@pytest.mark.parametrize("option", [o for o in BAD_OPTIONS if o[0] != "--batch"], ids=lambda o: " ".join(o))
def test_bad_training_option_for_the_app_is_refused_before_it_starts(tmp_path, capsys, monkeypatch, option):
    from lstmtui.tui.app import LstmtuiApp

    monkeypatch.setattr(LstmtuiApp, "run", lambda self, *a, **k: pytest.fail("the app started"))
    corpus = write(tmp_path / "c.txt", "some words and more words\n" * 200)
    code, _, err = run_cli(capsys, str(corpus), *option)
    assert_one_line_error(code, err)


@pytest.mark.parametrize(
    "args",
    [
        ["train", "c.txt", "--hidden", "many"],
        ["train", "c.txt", "--lr", "fast"],
        ["train", "c.txt", "--input", "rnn"],
        ["train", "c.txt", "--precision", "fp16"],
        ["train", "c.txt", "--no-such-option"],
        ["train", "c.txt", "--time-budget", "5y"],
        ["--batch", "lots"],
        ["generate", "--profile", "p", "--top-p", "most"],
        ["profiles", "frobnicate"],
    ],
    ids=lambda a: " ".join(a),
)
def test_values_that_are_not_numbers_or_choices_are_one_line(capsys, args):
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "--help")


@pytest.mark.parametrize(
    "option",
    [
        ["--temperature", "nan"],
        ["--temperature", "inf"],
        ["--temperature", "-1e-9"],
        ["--top-p", "-0.5"],
        ["--top-p", "nan"],
        ["--top-p", "inf"],
        ["--top-k", "-5"],
        ["--length", "-1"],
        ["--which", "worst"],
    ],
    ids=lambda o: " ".join(o),
)
def test_bad_sampling_options_through_generate(capsys, option):
    code, _, err = run_cli(capsys, "generate", "--profile", "anything", *option)
    line = assert_one_line_error(code, err)
    assert option[0] in line or "which" in line, line


# ----- profiles claiming models they cannot hold --------------------------------------------------


def _tiny_profile(store: ProfileStore, name: str) -> Path:
    """A real, small profile (untrained weights) and the path of its meta.json."""
    config = ModelConfig(vocab_size=3, hidden=8, layers=1)
    weights = {k: v.detach().clone() for k, v in CharLSTM(config).state_dict().items()}
    meta = {
        "model": config.to_dict(),
        "vocab": ["a", "b", " "],
        "train_config": {"hidden": 8, "layers": 1, "epochs": 5},
        "corpus": {"paths": [], "sha256": "0" * 64},
        "progress": {"step": 1, "epoch": 0, "epoch_step": 1},
    }
    meta = ProfileMeta.from_json("test meta", {"format_version": 1, "files": {}, **meta})
    store.save(name, meta, {"best": weights, "latest": weights, "optim": {}, "state": {}})
    return sorted(store.path(name).glob("v*"))[-1] / "meta.json"


def _claim(meta_path: Path, **model) -> None:
    meta = json.loads(meta_path.read_text())
    meta["model"].update(model)
    meta["train_config"].update(model)
    meta_path.write_text(json.dumps(meta))


@pytest.fixture
def no_big_models(monkeypatch):
    """Fail the test if a model over a million parameters is ever built."""
    real_init = CharLSTM.__init__

    def guarded(self, config):
        assert config.parameter_count() < 1_000_000, f"allocated a {config.parameter_count():,}-parameter model"
        real_init(self, config)

    monkeypatch.setattr(CharLSTM, "__init__", guarded)


def test_generate_refuses_a_profile_claiming_a_huge_model_before_allocating(capsys, no_big_models):
    store = ProfileStore()
    _claim(_tiny_profile(store, "big"), hidden=8192, layers=16)  # within the limits: 31 GiB of weights
    code, _, err = run_cli(capsys, "generate", "--profile", "big", "--length", "5", "--no-memorisation")
    assert_one_line_error(code, err, "profile big", "too small for the 8,324,669,635 parameters")


def test_generate_refuses_a_hidden_size_of_a_billion(capsys, no_big_models):
    store = ProfileStore()
    _claim(_tiny_profile(store, "huge"), hidden=10**9)
    code, _, err = run_cli(capsys, "generate", "--profile", "huge", "--length", "5")
    assert_one_line_error(code, err, "profile huge", "hidden size must be between")


def test_a_model_larger_than_memory_is_refused_before_allocating(capsys, monkeypatch):
    store = ProfileStore()
    _tiny_profile(store, "fits-not")
    monkeypatch.setattr(checkpoint, "available_memory", lambda device: 1000)  # a machine with 1 kB of RAM
    monkeypatch.setattr(checkpoint, "CharLSTM", lambda config: pytest.fail("a model was allocated"))
    code, _, err = run_cli(capsys, "generate", "--profile", "fits-not", "--length", "5")
    assert_one_line_error(code, err, "profile fits-not", "needs about", "this machine has")


def test_training_on_a_profile_claiming_a_huge_model_is_refused_before_allocating(tmp_path, capsys, no_big_models):
    store = ProfileStore()
    meta_path = _tiny_profile(store, "bigger")
    _claim(meta_path, hidden=8192, layers=16)
    before = meta_path.read_bytes()
    corpus = write(tmp_path / "ab.txt", "ab ba " * 400)
    code, _, err = run_cli(
        capsys, "train", str(corpus), "--profile", "bigger", "--epochs", "6", "--threads", "1", "--plain"
    )
    assert_one_line_error(code, err, "profile bigger", "too small for the 8,324,669,635 parameters")
    assert meta_path.read_bytes() == before  # the profile is untouched


# ----- property: any model settings in a profile load or fail cleanly, never allocating a huge model --

sizes = st.one_of(
    st.integers(-3, 70),
    st.sampled_from([0, 1, 4096, 8192, 8193, 10**6, 10**9, 2**63]),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.none(),
)
model_edits = st.fixed_dictionaries(
    {},
    optional={
        "hidden": sizes,
        "layers": sizes,
        "embedding_dim": sizes,
        "vocab_size": sizes,
        "dropout": sizes,
        "input": st.sampled_from(["onehot", "embedding", "pickle", 3]),
    },
)


@pytest.fixture(scope="module")
def prop_profile(tmp_path_factory):
    store = ProfileStore(tmp_path_factory.mktemp("prop"))
    meta_path = _tiny_profile(store, "p")
    return store, meta_path, json.loads(meta_path.read_text())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=model_edits, vocab_len=st.sampled_from([None, 2, 3, 70]))
def test_any_model_settings_in_a_profile_load_or_fail_cleanly(prop_profile, no_big_models, edits, vocab_len):
    """load_model (what generate and the app use) on any model settings: a model, or one LstmtuiError line."""
    store, meta_path, base = prop_profile
    meta = json.loads(json.dumps(base))
    meta["model"].update(edits)
    if vocab_len is not None:
        meta["vocab"] = [chr(0x61 + i) for i in range(vocab_len)]
    meta_path.write_text(json.dumps(meta))
    try:
        model, vocab, _ = checkpoint.load_model(store, "p", "best")
    except LstmtuiError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("profile p"), str(exc)
        return
    assert model.config.vocab_size == len(vocab)
