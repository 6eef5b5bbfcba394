"""Data-parallel training under torchrun, for real: two gloo processes on this machine's CPU.

The runs are tiny (a 2x32 model, short windows) so the suite stays quick on two cores; what they
check does not depend on the size: the same trajectory as one process, profiles that move between
numbers of processes, a pause longer than the collectives' timeout, and a rank killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lstmtui.commands.launch import torchrun_argv
from lstmtui.core.checkpoint import load_model
from lstmtui.core.distributed import World, rank_seed
from lstmtui.core.errors import ConfigError
from lstmtui.core.profiles import ProfileStore
from lstmtui.core.sampling import sample_text

REPO = Path(__file__).resolve().parent.parent
TINY = ["--device", "cpu", "--dropout", "0", "--seed", "1", "--hidden", "32", "--layers", "2", "--seq-len", "16"]
TINY += ["--eval-every", "0", "--sample-every", "0", "--plain"]
RUN_TIMEOUT_S = 240


def sums_text(n_lines: int) -> str:
    """Lines like '12+7=19', the same text every time."""
    lines = [f"{(i * 37) % 50}+{(i * 11) % 50}={(i * 37) % 50 + (i * 11) % 50}" for i in range(n_lines)]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LSTMTUI_HOME=str(home),
        LSTMTUI_CACHE=str(home / "cache"),
        LSTMTUI_RUNS=str(home / "runs"),
        GLOO_SOCKET_IFNAME="lo",
        LSTMTUI_DIST_TIMEOUT="60",  # a hang fails the test in a minute, not the default half hour
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


def torchrun(nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-port"]


def train(args: list[str], env: dict[str, str], ranks: int = 1) -> subprocess.CompletedProcess:
    launcher = [*torchrun(ranks), str(free_port())] if ranks > 1 else [sys.executable]
    proc = subprocess.run(
        [*launcher, "-m", "lstmtui", "train", *args], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def step_losses(log: Path) -> dict[int, float]:
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return {e["step"]: e["loss"] for e in events if e["event"] == "step"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process 45 steps; 2 processes 30 steps (the issue's check); that profile resumed on one to 45."""
    root = tmp_path_factory.mktemp("dist")
    corpus = root / "sums.txt"
    corpus.write_text(sums_text(3000))
    env = run_env(root / "home")
    common = [str(corpus), *TINY, "--batch", "16"]
    train([*common, "--max-steps", "45", "--profile", "one", "--log-jsonl", str(root / "one.jsonl")], env)
    train([*common, "--max-steps", "30", "--profile", "two", "--log-jsonl", str(root / "two.jsonl")], env, ranks=2)
    store = ProfileStore(root / "home")
    saved_by_two = (store.load_tensors("two", "state"), store.load_meta("two"))
    train([*common, "--max-steps", "45", "--profile", "two", "--log-jsonl", str(root / "resumed.jsonl")], env)
    return root, saved_by_two


def test_two_processes_follow_one_process(runs):
    runs, _saved = runs
    one, two = step_losses(runs / "one.jsonl"), step_losses(runs / "two.jsonl")
    assert sorted(two) == list(range(1, 31))
    assert max(abs(one[k] - two[k]) for k in two) < 1e-4, [(one[k], two[k]) for k in two]


def test_a_two_process_profile_resumes_on_one_process(runs):
    runs, _saved = runs
    one, resumed = step_losses(runs / "one.jsonl"), step_losses(runs / "resumed.jsonl")
    assert sorted(resumed) == list(range(31, 46))
    # the carried state of all 16 streams was gathered into the save: the resumed steps continue exactly
    assert max(abs(one[k] - resumed[k]) for k in resumed) < 1e-4, [(one[k], resumed[k]) for k in resumed]


def test_both_profiles_load_and_generate(runs):
    store = ProfileStore(runs[0] / "home")
    for name in ("one", "two"):
        model, vocab, meta = load_model(store, name)
        assert meta.progress.step == 45
        text = sample_text(model, vocab, "1", 40, 1.0, generator=torch.Generator().manual_seed(0))
        assert len(text) == 40 and set(text) <= set(vocab.chars)


def test_a_two_process_save_holds_every_stream_and_generator(runs):
    _root, (state, meta) = runs
    assert state["h"].shape == (2, 16, 32) and state["c"].shape == (2, 16, 32)  # layers, all streams, hidden
    assert state["torch_rng_ranks"].shape[0] == 2
    assert torch.equal(state["torch_rng_ranks"][0], state["torch_rng"])
    assert meta.progress.step == 30 and meta.progress.device.endswith("2 processes")


def test_a_batch_that_does_not_split_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="multiple of 2") as info:
        World(rank=1, size=2).rows(17)
    assert info.value.field == "batch"
    assert World(rank=1, size=2).rows(16) == slice(8, 16)
    proc = subprocess.run(
        [sys.executable, "-m", "lstmtui", "train", str(tmp_path / "x.txt"), "--nproc", "2", "--batch", "17"],
        env=run_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--batch: batch size 17 does not split evenly over 2 processes" in proc.stderr


def test_nproc_runs_the_same_command_under_torchrun():
    argv = ["train", "c.txt", "--nproc", "4", "--batch=64", "--npr=4", "--plain"]
    out = torchrun_argv(argv, 4, "c", None)
    assert out[1:7] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4", "-m"]
    assert out[7:] == ["lstmtui", "train", "c.txt", "--batch=64", "--plain", "--profile", "c"]
    assert rank_seed(1, 1, 0) != rank_seed(1, 2, 0) != rank_seed(1, 1, 5)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _events(log: Path) -> list[dict]:
    """The complete lines of a log being written."""
    lines = log.read_text().split("\n")[:-1] if log.exists() else []
    return [json.loads(line) for line in lines]


def _marked(mark: str, rank: int | None = None) -> list[int]:
    """The processes whose environment holds ``mark`` (and RANK=``rank``, if given): the launcher, torchrun, workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"LSTMTUI_TEST_MARK={mark}".encode() in environ and (rank is None or f"RANK={rank}".encode() in environ):
            found.append(int(entry.name))
    return found


def _kill_marked(mark: str) -> None:
    for pid in _marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_a_pause_outlasts_the_timeout_and_a_killed_rank_ends_the_run(tmp_path):
    from lstmtui.service import RunClient, list_runs

    corpus = tmp_path / "short.txt"
    corpus.write_text(sums_text(300))  # about 30 steps an epoch: an epoch's save comes every second or so
    home, log, mark = tmp_path / "home", tmp_path / "run.jsonl", f"m{os.getpid()}"
    env = run_env(home, LSTMTUI_DIST_TIMEOUT="6", LSTMTUI_TEST_MARK=mark)
    args = [str(corpus), *TINY, "--batch", "8", "--seq-len", "8", "--epochs", "100000", "--sample-length", "20"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmtui", "train", *args, "--nproc", "2", "--profile", "pk", "--log-jsonl", str(log)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runs = Path(env["LSTMTUI_RUNS"])
        record = _wait(lambda: next((r for r in list_runs(runs) if r.profile == "pk"), None), 120, "the run's socket")
        _wait(lambda: any(e["event"] == "checkpoint" for e in _events(log)), 120, "an epoch's save")
        client = RunClient.connect(record)
        assert client.request("pause")["type"] == "ack"
        _wait(lambda: any(e["event"] == "state" and e["state"] == "paused" for e in _events(log)), 30, "the pause")
        paused_at = max(e["step"] for e in _events(log) if e["event"] == "step")
        time.sleep(8)  # longer than the 6 s a collective waits: the ranks wait at the store's barrier
        assert max(e["step"] for e in _events(log) if e["event"] == "step") == paused_at
        assert client.request("resume")["type"] == "ack"
        _wait(lambda: max(e["step"] for e in _events(log) if e["event"] == "step") > paused_at + 40, 60, "training")
        client.close()
        os.kill(_wait(lambda: _marked(mark, rank=1), 10, "rank 1's process")[0], signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
    except (AssertionError, OSError, subprocess.TimeoutExpired) as exc:
        _kill_marked(mark)  # the launcher, torchrun (in a session of its own) and the workers
        _out, err = proc.communicate()
        raise AssertionError(f"{exc}\n{err[-3000:]}") from None
    finally:
        _kill_marked(mark)
    assert proc.returncode != 0, err[-3000:]
    assert "lstmtui: error: a process of the distributed run is gone" in err, err
    assert "the profile keeps its last save" in err
    saves = [e["step"] for e in _events(log) if e["event"] == "checkpoint"]
    store = ProfileStore(home)
    assert store.load_meta("pk").progress.step == saves[-1], err[-3000:]
    model, _vocab, _meta = load_model(store, "pk", "latest")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_gpu_check_runs_its_cpu_smoke(tmp_path):
    """scripts/gpu_check.sh --cpu-smoke: every measurement of the GPU check, tiny, on the CPU, and its table."""
    results = tmp_path / "check.json"
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), "--cpu-smoke", "--json", str(results)],
        env={**os.environ, "PYTHON": sys.executable, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(results.read_text())
    rows = {r["name"]: r for r in data["rows"]}
    assert data["meta"]["device"].startswith("cpu")
    assert "on cpu" in proc.stdout  # the table's heading names the device
    for name in ("1x32 batch 8 fp32 chars/s", "generation chars/s", "torchrun DDP (1 process) chars/s"):
        assert rows[name]["value"] > 0, rows[name]
    assert 0 < rows["1x32 batch 8 fp32 share of bare loop"]["value"]
    assert rows["generation first char"]["value"] > 0
    assert any(name.startswith("time to 1.40 nats") for name in rows)
