"""`lstmtui train` as a user runs it: real subprocesses, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstmtui.cli import main
from lstmtui.core.profiles import ProfileStore

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
    "--sample-length",
    "30",
    "--threads",
    "1",
]


def lstmtui(*args: str, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstmtui", *args], capture_output=True, text=True, timeout=timeout, **kw
    )


def lstmtui_inline(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run the command in this process (the same main() the console script calls): fast for error paths."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def words_text(n_words: int, seed: int = 1, alphabet: str = "abcdefgh ") -> str:
    rng = random.Random(seed)
    words = ["".join(rng.choice(alphabet.strip()) for _ in range(rng.randint(2, 6))) for _ in range(60)]
    return " ".join(rng.choice(words) for _ in range(n_words)) + "\n"


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text(words_text(3000))
    return path


def test_train_saves_a_profile_and_logs_jsonl(corpus, tmp_path):
    log = tmp_path / "run.jsonl"
    result = lstmtui("train", str(corpus), *TINY, "--profile", "w1", "--log-jsonl", str(log))
    assert result.returncode == 0, result.stderr
    assert "finished (completed)" in result.stdout
    assert "sample" in result.stdout  # a sample after the epoch
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"step", "epoch", "sample", "checkpoint", "finished"} <= kinds
    epoch = next(e for e in events if e["event"] == "epoch")
    for key in ("epoch", "step", "train_loss", "val_loss", "val_bpc", "chars_per_s", "elapsed_s"):
        assert isinstance(epoch[key], (int, float)), key
    meta = ProfileStore().load_meta("w1")
    assert meta.progress.epoch == 1 and meta.progress.finished is True
    assert meta.corpus.n_chars == len(corpus.read_text())


def test_continue_a_profile_for_more_epochs(corpus):
    assert lstmtui("train", str(corpus), *TINY, "--profile", "more").returncode == 0
    again = lstmtui("train", str(corpus), *TINY, "--profile", "more")
    assert again.returncode == 2 and "finished its 1 epochs" in again.stderr
    more = lstmtui("train", *TINY, "--profile", "more", "--epochs", "2")  # corpus taken from the profile
    assert more.returncode == 0, more.stderr
    meta = ProfileStore().load_meta("more")
    assert meta.progress.epoch == 2
    assert meta.train_config.epochs == 2


def test_fine_tuning_on_new_characters_needs_extend_vocab(corpus, tmp_path):
    assert lstmtui("train", str(corpus), *TINY, "--profile", "ft").returncode == 0
    other = tmp_path / "other.txt"
    other.write_text(words_text(3000, seed=2, alphabet="abcxyz "))
    refused = lstmtui("train", str(other), *TINY, "--profile", "ft", "--epochs", "2")
    assert refused.returncode == 2
    assert "x" in refused.stderr and "--extend-vocab" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    first_run = ProfileStore().load_meta("ft").progress.step
    log = tmp_path / "ft.jsonl"
    grown = lstmtui(
        "train", str(other), *TINY, "--profile", "ft", "--epochs", "2", "--extend-vocab", "--log-jsonl", str(log)
    )
    assert grown.returncode == 0, grown.stderr
    meta = ProfileStore().load_meta("ft")
    assert {"x", "y", "z"} <= set(meta.vocab)
    assert list(meta.vocab[: len(set(corpus.read_text()))]) == sorted(set(corpus.read_text()))  # old ids kept
    # it says so at the start: in the plain lines, and in the log before the first step
    said = f"fine-tuning ft after its {first_run:,} steps: corpus words.txt -> other.txt, +3 characters: x y z"
    assert said in grown.stdout and grown.stdout.index(said) < grown.stdout.index("step ")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("fine_tune") == 1 and kinds.index("fine_tune") < kinds.index("step")
    event = events[kinds.index("fine_tune")]
    assert event["profile"] == "ft" and event["step"] == first_run and event["added"] == ["x", "y", "z"]
    assert [Path(p).name for p in event["old_corpus"]] == ["words.txt"]
    assert [Path(p).name for p in event["new_corpus"]] == ["other.txt"]
    # the profile's history keeps the change, and `profiles show` draws the new steps apart
    [change] = meta.history.events
    assert change.event == "fine-tune" and change.step == first_run
    assert [Path(p).name for p in change.corpus] == ["other.txt"]
    shown = lstmtui("profiles", "show", "ft")
    assert shown.returncode == 0, shown.stderr
    assert f"¦ step {first_run:,}: fine-tuned on other.txt" in shown.stdout and "+" in shown.stdout


def read_terminal(fd: int, proc: subprocess.Popen, timeout: float = 180) -> str:
    """Everything a program wrote to its terminal until it exited."""
    import select

    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the program exited and closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.timeout(300)
def test_the_rich_display_says_it_fine_tunes_and_ends_with_the_finished_line(corpus, tmp_path):
    import pty

    assert lstmtui("train", str(corpus), *TINY, "--profile", "rich").returncode == 0
    other = tmp_path / "other.txt"
    other.write_text(words_text(3000, seed=3))
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="30")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmtui", "train", str(other), *TINY, "--profile", "rich", "--epochs", "2"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    try:
        screen = read_terminal(master, proc)
        assert proc.wait(timeout=60) == 0, screen
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert (
        "fine-tuning rich after its" in screen and "steps: corpus words.txt -> other.txt, no new characters" in screen
    )
    finished = screen.rindex("finished")
    assert screen.rindex("ch/s") < finished  # the progress bar is not drawn again under the last line
    assert "/≈" not in screen, "a run of fixed epochs knows its total"
    assert "best val" in screen[finished:]


def test_a_bad_corpus_from_the_console_script_prints_no_traceback(tmp_path):
    (tmp_path / "nul.txt").write_bytes(b"text\x00" * 100)
    result = lstmtui("train", str(tmp_path / "nul.txt"), *TINY)
    assert result.returncode == 2
    assert result.stderr.startswith("lstmtui: error:") and "Traceback" not in result.stderr


BAD_CORPORA = {
    "missing": (None, "does not exist"),
    "empty": (b"", "empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, "binary"),
    "latin1": ("caf\xe9 cr\xe8me ".encode("latin-1") * 200, "latin"),
    "utf16": ("hello world\n".encode("utf-16") * 100, "utf-16"),
    "short": (b"abc", ""),
}


@pytest.mark.parametrize("kind", sorted(BAD_CORPORA))
def test_bad_corpus_is_one_line_exit_2(tmp_path, kind, capsys):
    content, needle = BAD_CORPORA[kind]
    path = tmp_path / f"{kind}.txt"
    if content is not None:
        path.write_bytes(content)
    result = lstmtui_inline(capsys, "train", str(path), *TINY)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmtui: error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert needle.lower() in lines[0].lower()


@pytest.mark.parametrize(
    "option",
    [
        ["--hidden", "0"],
        ["--layers", "-1"],
        ["--lr", "0"],
        ["--seq-len", "0"],
        ["--batch", "-3"],
        ["--dropout", "1.5"],
        ["--val-fraction", "0"],
        ["--epochs", "0"],
        ["--device", "tpu"],
        ["--profile", "../evil"],
        ["--profile", "a/b"],
        ["--hidden", "8192", "--layers", "16"],
    ],
)
def test_impossible_settings_are_refused(corpus, option, capsys):
    result = lstmtui_inline(capsys, "train", str(corpus), *TINY, *option)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_sigterm_stops_at_a_step_and_saves(corpus):
    big = corpus.parent / "big.txt"
    big.write_text(words_text(60000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmtui", "train", str(big), *TINY, "--epochs", "50", "--profile", "term"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = ProfileStore()
    deadline = time.monotonic() + 120
    # Wait until training is under way (the first line after preparing).
    line = ""
    while time.monotonic() < deadline and not line.startswith("step"):
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "finished (stopped)" in out
    meta = store.load_meta("term")
    assert meta.progress.step >= 1 and meta.progress.finished is False
