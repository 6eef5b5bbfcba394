"""`lstmtui profiles ...`: the table, show with its curve, confirmation on rm, rename, export/import."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lstmtui.cli import main
from lstmtui.commands.profile_chart import LN2, split_runs
from lstmtui.commands.profiles import learning_curve
from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import History, HistoryEvent, ProfileMeta, ProfileStore, TrainPoint, ValPoint

REPO = Path(__file__).resolve().parent.parent
VOCAB = [chr(c) for c in range(32, 32 + 30)] + ["\n"]


def save_profile(store: ProfileStore, name: str, **extra) -> None:
    meta = {
        "model": ModelConfig(vocab_size=len(VOCAB), hidden=32, layers=2).to_dict(),
        "vocab": VOCAB,
        "train_config": {"epochs": 20, "lr": 0.002},
        "progress": {
            "epoch": 3,
            "step": 900,
            "best_val_loss": 1.3862943611198906,
            "best_step": 800,
            "finished": False,
            "hidden_policy": "carry-within-epoch-reset-at-epoch-start",
            "lr_scale": 0.5,
        },
        "optim_groups": [{"lr": 0.0012, "betas": [0.9, 0.999], "params": [0, 1]}],
        "history": {
            "train": [[s, 4.0 - s / 400, s / 10] for s in range(0, 1000, 20)],
            "val": [[s, 3.0 - s / 500, (3.0 - s / 500) / 0.6931471805599453, s / 10] for s in range(100, 1000, 100)],
        },
        "corpus": {
            "paths": ["/data/tiny shakespeare.txt", "/data/more.txt"],
            "size_bytes": 1115394,
            "sha256": "ab" * 32,
        },
        "sampling": {"temperature": 0.7},
        "rng": {"python": [3, [0] * 624 + [624], None], "numpy": ["MT19937", [0] * 624, 0, 0, 0.0]},
    }
    meta.update(extra)
    meta = ProfileMeta.from_json("test meta", {"format_version": 1, "files": {}, **meta})
    store.save(name, meta, {"best": weights(meta.model, 1.0), "latest": weights(meta.model, 0.0)})


def weights(config: ModelConfig, value: float) -> dict[str, torch.Tensor]:
    """Tensors of exactly the shapes a model of these settings has, all set to ``value``."""
    return {key: torch.full_like(t, value) for key, t in CharLSTM(config).state_dict().items()}


@pytest.fixture
def store(lstmtui_home) -> ProfileStore:
    return ProfileStore(lstmtui_home)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["profiles", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_a_row_per_profile_and_marks_broken_ones(store, capsys):
    save_profile(store, "shakespeare")
    save_profile(store, "broken")
    version = next(store.path("broken").iterdir())
    (version / "meta.json").write_text("{")
    code, out, err = run_cli(capsys, "list")
    assert code == 0 and err == ""
    for heading in ("name", "corpus", "parameters", "epochs", "best val (bits/char)", "updated"):
        assert heading in out
    row = next(line for line in out.splitlines() if "shakespeare" in line and "tiny" in line)
    assert "tiny shakespeare.txt +1" in row and "2x32" in row and "3/20" in row and "2.000" in row
    assert "profile broken: meta.json is not valid JSON" in out
    assert (
        run_cli(
            capsys,
        )[1]
        == out
    )  # `profiles` alone lists too


def test_list_with_no_profiles_says_so(capsys, lstmtui_home):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and out.strip() == f"no profiles in {lstmtui_home / 'profiles'}"


def test_home_option_before_or_after_the_action(tmp_path, capsys):
    other = ProfileStore(tmp_path / "elsewhere")
    save_profile(other, "far")
    for argv in (["--home", str(other.home), "list"], ["list", "--home", str(other.home)]):
        code, out, _ = run_cli(capsys, *argv)
        assert code == 0 and "far" in out, argv


INTERNAL = ("optim_groups", "hidden_policy", "lr_scale", "rng: saved states", "format_version", "sha256")


def test_show_prints_what_a_user_can_act_on_and_the_curve(store, capsys):
    save_profile(store, "shakespeare")
    code, out, _ = run_cli(capsys, "show", "shakespeare")
    assert code == 0
    assert "model: 2 layers x 32 hidden" in out
    assert "vocabulary: 31 symbols:" in out and "\\n" in out
    assert "best validation: 2.0000 bits/char" in out
    for text in (
        "epoch: 3",
        "step: 900",
        "temperature: 0.7",
        "lr: 0.002",
        "tiny shakespeare.txt",
        "best: ",
        "created: ",
    ):
        assert text in out, text
    for text in INTERNAL:  # what resumption needs and a user cannot act on
        assert text not in out, text
    assert "learning curve (bits/char" in out and "·" in out and "o" in out
    code, verbose, _ = run_cli(capsys, "show", "shakespeare", "--verbose")
    assert code == 0 and all(text in verbose for text in INTERNAL)
    assert "rng: saved states for python, numpy" in verbose and "format_version: 1" in verbose
    assert "hidden_policy: carry-within-epoch-reset-at-epoch-start" in verbose
    assert all(line in verbose for line in out.splitlines())  # verbose only adds
    code, out, _ = run_cli(capsys, "show", "shakespeare", "--json")
    data = json.loads(out)
    assert code == 0 and data["progress"]["step"] == 900 and data["progress"]["lr_scale"] == 0.5
    assert data["optim_groups"][0]["lr"] == 0.0012 and data["rng"]["python"]


@pytest.mark.skipif(
    "samples" not in {f.name for f in dataclasses.fields(ProfileMeta)}, reason="profiles keep no samples yet"
)
def test_show_prints_the_newest_saved_sample(store, capsys):
    text = "ROMEO:\x1b[31m\n" + "\n".join(f"line {i}" for i in range(10))
    earlier = {"step": 100, "epoch": 1, "temperature": 0.8, "text": "EARLIER"}
    save_profile(store, "s", samples=[earlier, {"step": 200, "epoch": 2, "temperature": 0.8, "text": text}])
    code, out, _ = run_cli(capsys, "show", "s")
    assert code == 0 and "newest sample (step 200, 2 kept):" in out and "EARLIER" not in out
    assert "  ROMEO:\\x1b[31m" in out and "\x1b" not in out  # escaped, never interpreted
    assert "  line 4\n  ...\n" in out and "line 5" not in out  # a few lines of it


def test_show_escapes_control_characters_from_a_profile(store, capsys):
    save_profile(store, "sneaky", corpus={"paths": ["/x/\x1b]0;owned\x07evil.txt"]})
    code, out, _ = run_cli(capsys, "show", "sneaky")
    assert code == 0 and "owned" in out and "\x1b" not in out and "\x07" not in out
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "\x1b" not in out


def test_learning_curve_handles_empty_and_flat_histories():
    assert learning_curve(History()) == ["learning curve: no history yet"]
    flat = learning_curve(History(train=(TrainPoint(5, 1.0, 0.0),)))
    assert len(flat) == 13 and "·" in "".join(flat)
    history = History(train=(TrainPoint(0, 4.0), TrainPoint(100, 1.0)), val=(ValPoint(100, 1.0, 1.5),))
    drawn = learning_curve(history, width=20, height=5)
    assert drawn[1].endswith("·" + " " * 19)  # high loss at the first step: top-left
    assert "o" in drawn[5]  # 1.5 bits/char is the lowest point: bottom row


def test_a_fine_tune_is_drawn_as_a_segment_of_its_own():
    old = tuple(TrainPoint(s, 3.0 - s / 500) for s in range(20, 1001, 20))
    new = tuple(TrainPoint(s, 2.5 - s / 500) for s in range(10, 501, 10))  # the fine-tune counts from 1 again
    val = (ValPoint(1000, 1.0, 1.0 / LN2), ValPoint(500, 0.9, 0.9 / LN2))
    history = History(train=old + new, val=val, events=(HistoryEvent(1000, "fine-tune", ("/data/accents.txt",)),))
    lines = learning_curve(history)
    rows = [line.split("|", 1)[1] for line in lines[1:11]]
    boundary = {row.index("¦") for row in rows if "¦" in row}
    assert len(boundary) == 1  # one column marks where the fine-tune starts
    [at] = boundary
    assert all("+" not in row[:at] and "·" not in row[at + 1 :] for row in rows)  # old left of it, new right
    assert sum(row.count("+") for row in rows) > 20 and "*" in "".join(rows) and "o" in "".join(rows)
    assert lines[12].split()[-1] == "1500"  # the runs end to end: 1000 steps, then 500
    assert lines[13].startswith("¦ step 1,000: fine-tuned on accents.txt") and "+ train, * validation" in lines[13]
    assert learning_curve(History(train=old)) == learning_curve(History(train=old, events=()))
    assert len(learning_curve(History(train=old))) == 13  # no fine-tune: no legend line


def test_split_runs_where_the_step_count_is_not_seen_to_start_again():
    event = HistoryEvent(5, "fine-tune", None)
    points = [TrainPoint(s, 1.0) for s in (1, 2, 3, 4, 5, 6, 8)]  # a 5-step run, then a fine-tune's 6 and 8
    assert [[p.step for p in part] for part in split_runs(points, [event])] == [[1, 2, 3, 4, 5], [6, 8]]
    restarted = [TrainPoint(s, 1.0) for s in (2, 4, 1, 3)]
    assert [[p.step for p in part] for part in split_runs(restarted, [event])] == [[2, 4], [1, 3]]


def test_missing_and_bad_names_are_one_line_errors(capsys):
    for argv, message in (
        (["show", "ghost"], "no profile named ghost"),
        (["show", "../etc"], "profile name '../etc' may only hold"),
        (["rename", "ghost", "x"], "no profile named ghost"),
        (["rm", "--yes", "a/b"], "may only hold"),
        (["export", "ghost", "out.tar"], "no profile named ghost"),
        (["import", "nothing.tar"], "no such file"),
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("lstmtui: error: ") and message in err, err
        assert "Traceback" not in err and err.count("\n") == 1


def test_rm_asks_and_refuses_without_a_terminal(store, capsys, monkeypatch):
    save_profile(store, "victim")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal
    code, _, err = run_cli(capsys, "rm", "victim")
    assert code == 2 and "stdin is not a terminal; add --yes" in err and store.exists("victim")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, _ = run_cli(capsys, "rm", "victim")
    assert code == 1 and "remove profile victim" in out and store.exists("victim")
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = run_cli(capsys, "rm", "victim")
    assert code == 0 and "removed profile victim" in out and not store.exists("victim")
    save_profile(store, "victim")
    code, out, _ = run_cli(capsys, "rm", "victim", "--yes")
    assert code == 0 and not store.exists("victim")


def test_rename_export_import(store, capsys, tmp_path):
    save_profile(store, "first")
    assert run_cli(capsys, "rename", "first", "second")[0] == 0
    assert not store.exists("first") and store.load_meta("second").name == "second"
    archive = tmp_path / "second.lstmtui"
    code, out, _ = run_cli(capsys, "export", "second", str(archive))
    assert code == 0 and archive.is_file() and "exported profile second" in out
    code, _, err = run_cli(capsys, "import", str(archive))
    assert code == 2 and "already exists" in err and "--name" in err
    code, out, _ = run_cli(capsys, "import", str(archive), "--name", "third")
    assert code == 0 and "as profile third" in out
    best = store.load_tensors("third", "best")
    assert best.keys() == weights(store.load_meta("third").model, 1.0).keys()
    assert all(torch.equal(t, torch.ones_like(t)) for t in best.values())
    save_profile(store, "taken")
    code, _, err = run_cli(capsys, "rename", "third", "taken")
    assert code == 2 and "already exists" in err


def test_the_installed_command_runs_in_a_fresh_process(store):
    save_profile(store, "shakespeare")
    env = dict(os.environ, LSTMTUI_HOME=str(store.home))
    done = subprocess.run(
        [sys.executable, "-m", "lstmtui", "profiles", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0 and "shakespeare" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "lstmtui", "profiles", "rm", "shakespeare"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("lstmtui: error: not removing profile shakespeare")


def test_list_json_gives_one_object_per_profile(store, capsys):
    save_profile(store, "b")
    save_profile(store, "a")
    (store.path("a") / next(store.path("a").iterdir()).name / "meta.json").write_text("[]")
    code, out, _ = run_cli(capsys, "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["name"] for r in rows] == ["a", "b"]
    assert rows[0]["error"].startswith("profile a: ") and "parameters" not in rows[0]
    assert rows[1]["error"] is None and rows[1]["layers"] == 2 and rows[1]["hidden"] == 32
    assert rows[1]["step"] == 900 and abs(rows[1]["best_val_bpc"] - 2.0) < 1e-9


def _strict(text: str):
    """json.loads that refuses the NaN/Infinity tokens Python's json writes by default."""

    def refuse(token: str):
        raise ValueError(f"non-JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_is_strict_even_for_a_diverged_history(store, capsys):
    nan_train = [[0, 4.0, 0.0], [20, float("nan"), 2.0], [40, float("inf"), 4.0]]
    save_profile(store, "diverged", history={"train": nan_train, "val": []})
    code, out, _ = run_cli(capsys, "show", "diverged", "--json")
    data = _strict(out)
    assert code == 0 and [p[1] for p in data["history"]["train"]] == [4.0, None, None]
    code, out, _ = run_cli(capsys, "list", "--json")
    assert code == 0 and [_strict(line)["name"] for line in out.splitlines()] == ["diverged"]
