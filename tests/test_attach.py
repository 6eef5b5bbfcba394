"""Runs that outlive the terminal, in the TUI (issue 19): detach with d or a hang-up, attach, stop, resume exactly.

The first test drives the real flow in tmux: the TUI trains, its tmux session is killed (a hang-up),
`lstmtui ps --json` still sees the run training, `lstmtui attach` in a new session shows it live, `x`
stops it and the profile resumes exactly. The others are Pilot tests of the app attached to a real
served run, detaching a run of its own, and starting a named new profile (issue 18).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_tui_support import tiny_config, wait_for, write_corpus

from lstmtui.core.profiles import ProfileStore
from lstmtui.core.runhost import RunHost
from lstmtui.core.training import TrainingSession
from lstmtui.service import RunClient, list_runs, serve

WAIT_S = 120  # generous: the machine may be busy; no test measures time
TINY = ["--hidden", "32", "--layers", "1", "--seq-len", "16", "--batch", "8", "--sample-every", "0",
        "--eval-every", "0", "--threads", "1", "--epochs", "1000"]  # fmt: skip


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A private config directory, so the user's keys.toml never changes a test."""
    monkeypatch.setenv("LSTMTUI_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "tiny.txt", size=400_000)


def wait_until(predicate, what: str, timeout: float = WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lstmtui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstmtui", *args], capture_output=True, text=True, timeout=WAIT_S)


def ps_rows() -> list[dict]:
    result = lstmtui("ps", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def steps_in(log: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "step"}


class Tmux:
    """A private tmux server (its own socket), whose panes run lstmtui with this test's environment."""

    def __init__(self) -> None:
        self.socket = f"lstmtui-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=30, check=check)  # fmt: skip

    def start(self, session: str, *args: str) -> None:
        names = ("LSTMTUI_HOME", "LSTMTUI_RUNS", "LSTMTUI_CACHE", "LSTMTUI_CONFIG")
        env = " ".join(f"{n}={shlex.quote(os.environ[n])}" for n in names)
        command = f"export {env} TERM=xterm-256color; exec {shlex.quote(sys.executable)} -m lstmtui "
        self.run("new-session", "-d", "-s", session, "-x", "100", "-y", "30", command + shlex.join(args))

    def screen(self, session: str) -> str:
        result = self.run("capture-pane", "-p", "-t", session, check=False)
        return result.stdout if result.returncode == 0 else ""

    def alive(self, session: str) -> bool:
        return self.run("has-session", "-t", session, check=False).returncode == 0

    def close(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    server = Tmux()
    yield server
    server.close()


def screen_step(text: str) -> int | None:
    found = re.search(r"step ([\d,]+)/", text)
    return int(found.group(1).replace(",", "")) if found else None


@pytest.mark.timeout(600)
def test_tui_in_tmux_survives_a_hangup_and_attach_shows_and_stops_it_and_it_resumes_exactly(corpus, tmp_path, tmux):
    tmux.start("train", str(corpus), "--profile", "hup", *TINY, "--fps", "10")
    first = wait_until(lambda: [r for r in ps_rows() if r["name"] == "hup" and r["step"]], "the TUI's run to train")[0]
    assert first["profile"] == "hup" and first["state"] == "training"
    assert "Training · hup" in tmux.screen("train")  # --profile NEW with a corpus created it (issue 18)

    tmux.run("kill-session", "-t", "train")  # the terminal hangs up under the app
    wait_until(lambda: not tmux.alive("train"), "the tmux session to go")
    rising = wait_until(lambda: [r for r in ps_rows() if r["step"] > first["step"] + 100], "the step to keep rising")
    assert rising[0]["pid"] == first["pid"] and not gone(first["pid"])
    log = ProfileStore().root / ".hup.log"
    assert "the terminal hung up; run hup trains on" in log.read_text()

    tmux.start("attach", "attach")
    seen = wait_until(lambda: screen_step(tmux.screen("attach")), "the attached screen to show a step")
    assert "Training · hup" in tmux.screen("attach")
    wait_until(lambda: (screen_step(tmux.screen("attach")) or 0) > seen, "the attached screen's step to rise")
    assert "Traceback" not in tmux.screen("attach")

    tmux.run("send-keys", "-t", "attach", "x")
    wait_until(lambda: gone(first["pid"]), "the run to stop and its process to exit")
    assert ps_rows() == []
    wait_until(lambda: "stopped" in tmux.screen("attach"), "the attached app to show the run stopped")
    tmux.run("send-keys", "-t", "attach", "q")
    wait_until(lambda: not tmux.alive("attach"), "the attached app to quit")
    step = ProfileStore().load_meta("hup").progress.step
    assert step > rising[0]["step"]
    assert "run hup ended: finished (stopped)" in log.read_text()

    # Resumed for 6 more steps, it trains exactly as a run that was never stopped.
    more = str(step + 6)
    resumed = lstmtui("train", "--profile", "hup", *TINY, "--plain", "--max-steps", more,
                      "--log-jsonl", str(tmp_path / "r.jsonl"))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    full = lstmtui("train", str(corpus), "--profile", "full", *TINY, "--plain", "--max-steps", more,
                   "--log-jsonl", str(tmp_path / "f.jsonl"))  # fmt: skip
    assert full.returncode == 0, full.stderr
    after = steps_in(tmp_path / "r.jsonl")
    assert sorted(after) == list(range(step + 1, step + 7))
    reference = steps_in(tmp_path / "f.jsonl")
    assert after == {s: reference[s] for s in after}


# ----- Pilot: the app attached to a real served run -----


class ServedRun:
    """A run of this process served on its socket, as `lstmtui train` serves one."""

    def __init__(self, corpus: Path, name: str = "remote", **config) -> None:
        self.store = ProfileStore()
        cfg = tiny_config(epochs=50, eval_every=0, **config)  # no best saves: the requested ones stay in view
        self.host = RunHost(TrainingSession([str(corpus)], cfg, profile=name, store=self.store))
        self.host.start()
        self.server = serve(self.host, name, home=self.store.home)
        wait_until(lambda: self.host.snapshot().last_step, "the served run's first step")
        [self.record] = [r for r in list_runs() if r.name == name]

    def close(self) -> None:
        self.host.stop()
        self.host.join(60)
        self.server.close()


@pytest.fixture
def served(corpus):
    run = ServedRun(corpus)
    yield run
    run.close()


def attached_app(run: ServedRun):
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    return LstmtuiApp(AppOptions(home=run.store.home, start_training=False, attach=run.record))


def test_attached_app_shows_the_run_and_its_keys_act_on_it(served):
    from lstmtui.tui.screens.confirm import ConfirmScreen, PromptScreen
    from lstmtui.tui.widgets.generation import GenerationPanel
    from lstmtui.tui.widgets.loss_chart import LossChart
    from lstmtui.tui.widgets.samples import SamplesLog

    app = attached_app(served)
    host = served.host

    async def run():
        async with app.run_test(size=(100, 30)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.step > 0 and app.attached)
            assert app.profile_name == "remote" and app.stats.state == "training"
            chart = app.query_one(LossChart)
            assert len(chart.train.points) >= 1  # the whole history so far, from the snapshot
            step = app.stats.step
            assert await wait_for(pilot, lambda: app.stats.step > step), "the step rises live"

            await pilot.press("p")
            assert await wait_for(pilot, lambda: app.stats.state == "paused")
            assert host.snapshot().paused
            await pilot.press("p")
            assert await wait_for(pilot, lambda: app.stats.state == "training")
            await pilot.press("s")
            assert await wait_for(pilot, lambda: "requested" in app.recent_saves)
            samples = app.query_one(SamplesLog)
            count = samples.count
            await pilot.press("g")
            assert await wait_for(pilot, lambda: samples.count > count), "sample now: the run writes one"
            await pilot.press("l")
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("#prompt").value = "0.0007"
            await pilot.press("enter")
            assert await wait_for(pilot, lambda: host.session.progress.base_lr == pytest.approx(0.0007))

            # generation streams here from the run's latest weights (it saved them when asked)
            panel = app.query_one(GenerationPanel)
            saves = app.recent_saves.count("requested")
            await pilot.press("3", *"the ", "enter")
            assert await wait_for(pilot, lambda: len(panel.text) > 50)
            assert panel.text.startswith("the ")
            assert app.recent_saves.count("requested") > saves
            await pilot.press("escape", "escape")

            await pilot.press("q")
            await pilot.pause(0.2)
            assert isinstance(app.screen, ConfirmScreen)
            assert "keeps training" in app.screen.question
            await pilot.press("y")
            await pilot.pause(0.5)

    asyncio.run(run())
    assert host.alive and not host.snapshot().paused  # quitting an attached app leaves the run be
    assert [r.name for r in list_runs()] == ["remote"]


def test_several_clients_watch_one_run_and_x_in_the_attached_app_stops_it_saved(served):
    app = attached_app(served)
    host = served.host
    watchers = [RunClient.connect(served.record) for _ in range(2)]
    ended: list = []

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.step > 0)
            await pilot.press("x")
            assert await wait_for(pilot, lambda: app.stats.state == "stopped" and app.training_worker is None)
            await pilot.press("q")

    asyncio.run(run())
    assert host.join(WAIT_S) and host.result.reason == "stopped"
    for client in watchers:  # each watcher saw the run to its end
        while (message := client.read(WAIT_S)) is not None:
            if message["type"] == "end":
                ended.append(message["result"]["step"])
        client.close()
    assert ended == [host.result.step] * 2
    assert served.store.load_meta("remote").progress.step == host.result.step


def test_d_in_an_attached_app_leaves_the_run_training(served):
    app = attached_app(served)

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.step > 0)
            await pilot.press("d")
            await pilot.pause(0.5)

    asyncio.run(run())
    assert app.run_link.left and not app.detached
    step = served.host.snapshot().last_step.step
    wait_until(lambda: served.host.snapshot().last_step.step > step, "the run to go on")


# ----- Pilot: a run of the app's own -----


def test_d_detaches_the_apps_own_run_which_trains_on_served(corpus):
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=tiny_config(epochs=50), new_profile="mine"))

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.step > 0 and app.run_link.server is not None)
            await pilot.press("d")
            await pilot.pause(0.5)

    asyncio.run(run())
    host = app.run_link.host
    assert app.detached and host.alive  # the app is closed; the run goes on in its host's thread
    with RunClient.connect("mine") as client:  # still reachable
        step = client.snapshot["last_step"]["step"]
        assert client.request("stop")["type"] == "ack"
    assert host.join(WAIT_S) and host.result.reason == "stopped" and host.result.step > step
    assert ProfileStore().load_meta("mine").progress.step == host.result.step
    wait_until(lambda: list_runs() == [], "the run's socket and record to go")


def test_a_corpus_with_a_new_profile_name_creates_that_profile(corpus):
    """`lstmtui corpus.txt --profile myrun` creates myrun, as `lstmtui train corpus.txt --profile myrun` does."""
    from lstmtui.cli import build_parser
    from lstmtui.commands.common import cleaning_from_args, config_from_args, overrides_from_args
    from lstmtui.core.errors import ProfileError
    from lstmtui.tui.app import LstmtuiApp
    from lstmtui.tui.launch import app_options

    args = build_parser().parse_args([str(corpus), "--profile", "myrun", *TINY, "--max-steps", "30"])
    options = app_options(args, config_from_args(args), cleaning_from_args(args), overrides_from_args(args))
    assert options.new_profile == "myrun" and options.profile is None and options.start_training
    app = LstmtuiApp(options)

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.state == "finished")
            assert app.profile_name == "myrun"
            await pilot.press("q")

    asyncio.run(run())
    assert ProfileStore().load_meta("myrun").progress.step == 30
    missing = build_parser().parse_args(["--profile", "nosuch"])
    with pytest.raises(ProfileError, match="no profile named nosuch"):
        app_options(missing, config_from_args(missing), cleaning_from_args(missing), {})


def test_a_profile_that_is_training_is_attached_to(served, corpus):
    from lstmtui.cli import build_parser
    from lstmtui.tui.launch import running_run

    record = running_run(build_parser().parse_args(["--profile", "remote"]))
    assert record is not None and record.name == "remote" and record.pid == os.getpid()
    assert running_run(build_parser().parse_args([str(corpus), "--profile", "remote"])) is None
    assert running_run(build_parser().parse_args(["--profile", "other"])) is None


def test_the_bench_has_a_service_section_whose_rows_compare_watched_turns_with_free_ones():
    from lstmtui.bench.rows import SECTIONS
    from lstmtui.bench.service import run_flags, section_config, service_rows
    from lstmtui.core.config import TrainConfig

    assert "service" in SECTIONS
    config = section_config(TrainConfig())
    assert (config.hidden, config.layers, config.threads) == (128, 1, 1)
    assert run_flags(config)[:2] == ["--hidden", "128"] and "--threads" in run_flags(config)
    app = {"chars_per_s": 950.0, "first_paint_s": 0.4, "shown_s": 0.5, "key_ms": [100.0, 120.0],
           "weights_ms": [5000.0, 200.0, 220.0]}  # fmt: skip
    figures = {"free": [1000.0, 1000.0, 900.0], "clients": 980.0, "events": 300, "app": app, "rss_detached": 300.0,
               "tui": {"rss_tui": 320.0, "rss_after_d": 318.0}}  # fmt: skip
    rows = {r["name"]: r for r in service_rows(figures, 6.0, config)}
    assert rows["detached run, 3 clients reading / none"]["value"] == pytest.approx(0.98)
    assert rows["detached run, 3 clients reading / none"]["met"] is True
    assert rows["detached run, attached TUI / none"]["value"] == pytest.approx(1.0)  # 950 against (1000 + 900) / 2
    assert rows["key to remote effect, median"]["value"] == pytest.approx(110.0)
    assert rows["generation weights, attached"]["value"] == pytest.approx(210.0)
    assert "5,000 ms" in rows["generation weights, attached"]["detail"]


def test_attach_picks_the_only_run_or_asks_which_of_several(tmp_path, monkeypatch, capsys):
    from lstmtui.commands.attach import pick
    from lstmtui.service import RunRecord, ServiceError

    def record(name: str) -> RunRecord:
        return RunRecord(name, 4242, time.time(), name, None, str(tmp_path / f"{name}.sock"), None, "here")

    one, two = record("one"), record("two")
    with pytest.raises(ServiceError, match="no run is training"):
        pick([])
    assert pick([one]) is one
    with pytest.raises(ServiceError, match=r"several runs are training \(one, two\): name one"):
        pick([one, two])  # no terminal to ask on

    class Terminal:
        def isatty(self) -> bool:
            return True

    answers = iter(["7", "two"])
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert pick([one, two]) is two
    shown = capsys.readouterr().out
    assert "1  one  (not answering" in shown and "2  two" in shown and "type a number from 1 to 2" in shown
    monkeypatch.setattr("builtins.input", lambda prompt: "")
    assert pick([one, two]) is None
    assert lstmtui("attach", "nosuch").stderr == "lstmtui: error: no run named nosuch; none is running\n"
