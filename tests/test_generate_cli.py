"""`lstmtui generate`: streaming to a pipe, JSON, settings, memorisation figure, option errors."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstmtui.cli import main
from lstmtui.commands.generate import sampling_config, unescape

LINE = "the quick brown fox jumps over the lazy dog\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny profile 'fox' that has learned a repetitive corpus by heart: (home, corpus path)."""
    root = tmp_path_factory.mktemp("gen")
    corpus = root / "fox.txt"
    corpus.write_text(LINE * 600)
    home = root / "home"
    env = {**os.environ, "LSTMTUI_HOME": str(home), "LSTMTUI_CACHE": str(root / "cache")}
    options = (
        "--hidden 48 --layers 1 --seq-len 48 --batch 16 --max-steps 250 --lr 0.01 --warmup-steps 10 "
        "--eval-every 0 --sample-every 0 --plain --dropout 0 --seed 1 --threads 1"
    ).split()
    cmd = [sys.executable, "-m", "lstmtui", "train", str(corpus), "--profile", "fox", "--home", str(home), *options]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return home, corpus


def gen(home: Path, *args: str) -> list[str]:
    return ["generate", "--profile", "fox", "--home", str(home), *args]


def test_streams_to_a_pipe_and_ends_cleanly_when_it_closes(trained):
    home, _ = trained
    env = {**os.environ, "LSTMTUI_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmtui", *gen(home, *"--length 10000000 --temperature 1 --no-memorisation".split())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        head = proc.stdout.read(64)  # arrives while the 10-million-character sample is still going
        assert len(head) == 64
        assert proc.poll() is None
        proc.stdout.close()  # like `| head`: the reader goes away
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read().decode()
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_text_output_reproducible_with_seed(trained, capsys):
    home, _ = trained
    assert main(gen(home, "--prime", "the ", "--length", "120", "--seed", "7", "--temperature", "1")) == 0
    first = capsys.readouterr()
    assert main(gen(home, "--prime", "the ", "--length", "120", "--seed", "7", "--temperature", "1")) == 0
    second = capsys.readouterr()
    assert first.out == second.out and len(first.out.rstrip("\n")) >= 100
    assert "memorised" in first.err


def test_learned_text_is_reported_as_memorised(trained, capsys):
    home, _ = trained
    assert main(gen(home, "--prime", "the quick ", "--length", "200", "--temperature", "0", "--json")) == 0
    record = json.loads(capsys.readouterr().out)
    assert "fox jumps over the lazy dog" in record["text"]
    assert record["memorisation"] > 0.8 and record["memorisation_window"] == 20
    assert record["settings"]["temperature"] == 0 and record["method"] == "greedy"


def test_memorisation_unavailable_without_the_corpus(trained, capsys, tmp_path):
    home, corpus = trained
    moved = tmp_path / "away.txt"
    shutil.move(corpus, moved)
    try:
        assert main(gen(home, "--length", "20", "--json")) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["memorisation"] is None and "no longer there" in record["memorisation_note"]
        assert main(gen(home, "--length", "20")) == 0
        assert "memorisation figure unavailable" in capsys.readouterr().err
    finally:
        shutil.move(moved, corpus)


def test_json_count_output_file_and_stops(trained, capsys, tmp_path):
    home, _ = trained
    out = tmp_path / "samples.jsonl"
    options = "--json --count 3 --length 300 --temperature 0.5 --top-k 3 --top-p 0.9 --seed 1 --no-memorisation"
    args = gen(home, *options.split(), "--stop", r"\n", "--output", str(out))
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert out.read_text().splitlines() == lines
    records = [json.loads(line) for line in lines]
    assert [r["sample"] for r in records] == [1, 2, 3]
    for r in records:
        assert r["text"].endswith("\n") and r["text"].count("\n") == 1  # stopped at the first newline
        assert r["settings"]["top_k"] == 3 and r["settings"]["top_p"] == 0.9 and r["settings"]["stop"] == ["\n"]
        assert r["seed"] == 1 and r["memorisation"] is None


def test_count_separates_samples_with_a_numbered_line(trained, capsys, tmp_path):
    home, _ = trained
    file = tmp_path / "three.txt"
    options = "--count 3 --length 90 --temperature 1 --seed 4 --no-memorisation --output".split()
    assert main(gen(home, "--prime", "the ", *options, str(file))) == 0
    out = capsys.readouterr().out
    assert file.read_text() == out
    lines = out.split("\n")
    marks = [i for i, line in enumerate(lines) if line.startswith("── sample")]
    assert [lines[i] for i in marks] == ["── sample 1/3 ──", "── sample 2/3 ──", "── sample 3/3 ──"] and marks[0] == 0
    samples = out.split("── sample")[1:]
    assert all(len(s.split(" ──\n", 1)[1]) == 91 for s in samples)  # 90 characters and the closing newline
    assert main(gen(home, "--count", "3", "--length", "90", "--json", "--no-memorisation")) == 0
    json_out = capsys.readouterr().out
    assert "──" not in json_out and [json.loads(line)["sample"] for line in json_out.splitlines()] == [1, 2, 3]
    assert main(gen(home, "--length", "20", "--no-memorisation")) == 0
    assert "──" not in capsys.readouterr().out  # one sample: nothing to separate


@pytest.mark.parametrize("method", [["--beam", "3"], ["--temperature", "0"]])
def test_deterministic_methods_report_no_seed(trained, capsys, method):
    home, _ = trained
    assert main(gen(home, *method, "--length", "20", "--no-memorisation")) == 0
    note = capsys.readouterr().err
    assert "deterministic" in note and "seed" not in note
    assert main(gen(home, *method, "--length", "20", "--no-memorisation", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["seed"] is None
    assert main(gen(home, "--temperature", "0.9", "--seed", "5", "--length", "20", "--no-memorisation")) == 0
    assert "seed 5" in capsys.readouterr().err  # sampling draws random numbers: its seed is reported


def test_compare_mode(trained, capsys):
    home, _ = trained
    assert main(gen(home, "--compare", "--length", "30", "--seed", "2")) == 0
    out = capsys.readouterr().out
    for label in ("T=0.2", "T=0.5", "T=1", "T=1.2"):
        assert f"-------- {label} --------" in out
    assert main(gen(home, "--compare", "0.5,greedy", "--count", "2", "--length", "30", "--seed", "2")) == 0
    out = capsys.readouterr().out
    for label in ("T=0.5 (1/2)", "T=0.5 (2/2)", "greedy (1/2)", "greedy (2/2)"):
        assert f"-------- {label} --------" in out
    assert main(gen(home, "--compare", "greedy,beam3", "--length", "30", "--json")) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["method"] for r in records] == ["greedy", "beam 3"]


def test_prime_file_long_and_unknown_characters(trained, capsys, tmp_path):
    home, _ = trained
    prime = tmp_path / "prime.txt"
    prime.write_text((LINE * 2500)[:100_000])
    assert main(gen(home, "--prime-file", str(prime), "--length", "40", "--json", "--no-memorisation")) == 0
    assert len(json.loads(capsys.readouterr().out)["text"]) == 40
    assert main(gen(home, "--prime", "the Zébra", "--length", "10")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lstmtui: error:") and "'Z'" in err and "'é'" in err and "\n" not in err
    assert main(gen(home, "--prime", "the Zébra", "--length", "10", "--drop-unknown")) == 0


@pytest.mark.parametrize(
    "bad",
    [
        ["--temperature", "-0.5"],
        ["--top-p", "0"],
        ["--top-p", "1.01"],
        ["--length", "0"],
        ["--length", "-4"],
        ["--count", "0"],
        ["--top-k", "-1"],
        ["--beam", "-2"],
        ["--repetition-penalty", "0.5"],
        ["--compare", "0.5,warm"],
        ["--prime-file", "/no/such/prime.txt"],
        ["--seed", "-1"],
        ["--threads", "-1"],
    ],
)
def test_bad_options_give_one_line_and_exit_2(trained, capsys, bad):
    home, _ = trained
    assert main(gen(home, *bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lstmtui: error:") and "\n" not in err and "Traceback" not in err


def test_missing_profile(capsys, tmp_path):
    assert main(["generate", "--profile", "ghost", "--home", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("lstmtui: error:")


def test_profile_defaults_then_typed_options():
    ns = argparse.Namespace(
        profile="p",
        length=None,
        temperature=None,
        top_k=5,
        top_p=None,
        beam=None,
        repetition_penalty=None,
        no_repeat_ngram=None,
        stop=[r"\n\n"],
        stop_chars="",
        seed=3,
    )
    cfg = sampling_config(ns, {"temperature": 0.3, "top_k": 2, "length": 77, "unknown_key": 1})
    assert (cfg.temperature, cfg.top_k, cfg.length, cfg.stop, cfg.seed) == (0.3, 5, 77, ("\n\n",), 3)
    assert unescape(r"a\tb\\n") == "a\tb\\n"
