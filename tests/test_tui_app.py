"""Pilot tests of the TUI with real training on a small corpus (tiny model, one torch thread)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest
from test_tui_support import tiny_config, wait_for, write_corpus

from lstmtui.core.profiles import ProfileStore
from lstmtui.tui.app import AppOptions, LstmtuiApp
from lstmtui.tui.screens.confirm import ConfirmScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.screens.profiles import ProfilesScreen
from lstmtui.tui.screens.settings import SettingsScreen
from lstmtui.tui.widgets.generation import GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A private config directory, so the user's keys.toml never changes a test."""
    monkeypatch.setenv("LSTMTUI_CONFIG", str(tmp_path / "config"))


@pytest.fixture
def corpus(tmp_path):
    # 400 KB: an epoch (and its saves) every few seconds even on a fast machine, so a run outlasts
    # the test and a requested save is not pushed out of the app's last 20 by epoch and best saves
    return write_corpus(tmp_path / "tiny.txt", size=400_000)


def no_training_threads() -> list[str]:
    names = ("lstmtui-run", "lstmtui-training")
    return [
        t.name for t in threading.enumerate() if t.is_alive() and (t.name in names or t.name.startswith("asyncio_"))
    ]


def test_trains_live_pauses_resumes_generates_and_quits_cleanly(corpus, lstmtui_home):
    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=tiny_config(epochs=50, eval_every=0)))
    seen: dict = {}

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            chart = app.query_one("#chart", LossChart)
            samples = app.query_one("#samples", SamplesLog)
            assert await wait_for(pilot, lambda: app.stats.step > 0 and chart.train.points and samples.count > 0)
            # each sample is followed by how much of it is copied from the corpus
            assert await wait_for(pilot, lambda: any("copied" in line.text for line in samples.lines))
            assert app.stats.state == "training"
            assert "training" in app.query_one("#status").render().plain
            seen["profile"] = app.profile_name

            await pilot.press("p")
            assert await wait_for(pilot, lambda: app.stats.state == "paused")
            step = app.stats.step
            await pilot.pause(0.5)
            assert app.stats.step == step
            await pilot.press("p")
            assert await wait_for(pilot, lambda: app.stats.state == "training" and app.stats.step > step)
            await pilot.press("s")
            assert await wait_for(pilot, lambda: "requested" in app.recent_saves)

            # generation from a typed seed while training goes on
            panel = app.query_one("#generation", GenerationPanel)
            panel.settings = replace(panel.settings, length=3000)
            await pilot.press("3", *"the ", "enter")  # 3 puts the cursor in the seed box
            assert await wait_for(pilot, lambda: panel.status == "done" or len(panel.text) > 1000)
            assert panel.updates >= 2, "characters should arrive in several updates"
            assert panel.text.startswith("the ")
            await pilot.press("space")
            assert await wait_for(pilot, lambda: panel.status in ("stopped", "done"))
            # the share of the output copied from the corpus, measured on the real index
            index = app.host.memorisation_index()
            assert panel.memorised == pytest.approx(index.share(panel.text[len("the ") :], "the "))
            assert f"copied {panel.memorised:.0%}" in str(panel.query_one("#gen-settings").render())
            stopped_at = len(panel.text)
            await pilot.press("plus")
            assert panel.settings.temperature == pytest.approx(0.9)
            assert "T 0.9" in str(panel.query_one("#gen-settings").render())
            await pilot.press("space")  # continue where it stopped, at the new temperature
            assert await wait_for(pilot, lambda: len(panel.text) > stopped_at + 50)
            assert panel.text.startswith("the ")
            await pilot.press("ctrl+c")
            await pilot.pause(0.1)

    asyncio.run(run())
    assert no_training_threads() == []
    store = ProfileStore(lstmtui_home)
    meta = store.load_meta(seen["profile"])
    assert meta.progress.step > 0


def test_quit_asks_while_training(corpus):
    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=tiny_config(epochs=50, eval_every=0)))

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.state == "training")
            await pilot.press("q")
            await pilot.pause(0.1)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause(0.1)
            assert not isinstance(app.screen, ConfirmScreen)
            assert app.stats.state == "training"
            await pilot.press("q")
            await pilot.pause(0.1)
            await pilot.press("y")
            await pilot.pause(0.1)

    asyncio.run(run())
    assert app.return_code == 0
    assert no_training_threads() == []


def test_finished_profile_reopens_with_history_and_generates(corpus, lstmtui_home):
    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=tiny_config(max_steps=40)))
    name: dict = {}

    async def first():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.state == "finished")
            name["profile"] = app.profile_name
            await pilot.press("q")  # nothing running: no question
            await pilot.pause(0.1)

    asyncio.run(first())
    reopened = LstmtuiApp(AppOptions(profile=name["profile"], config=tiny_config(), start_training=False))

    async def second():
        async with reopened.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            assert reopened.stats.state == "idle"
            assert reopened.stats.step == 40
            assert len(reopened.query_one("#chart", LossChart).train.points) > 10
            panel = reopened.query_one("#generation", GenerationPanel)
            panel.settings = replace(panel.settings, length=100)
            await pilot.press("3", *"a ", "enter")
            assert await wait_for(pilot, lambda: panel.status == "done")
            assert len(panel.text) == 102

            await pilot.press("o")
            await pilot.pause(0.2)
            assert isinstance(reopened.screen, ProfilesScreen)
            table = reopened.screen.query_one("DataTable")
            assert table.row_count == 1
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert not isinstance(reopened.screen, ProfilesScreen)

            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert isinstance(reopened.screen, HelpScreen)
            await pilot.press("escape")

            await pilot.press("1", "p")  # a finished profile trains on (a fast machine may finish the epoch at once)
            assert await wait_for(pilot, lambda: reopened.stats.step > 40), reopened.stats
            assert reopened.stats.state in ("training", "finished"), reopened.stats
            await pilot.press("ctrl+c")
            await pilot.pause(0.1)

    asyncio.run(second())
    assert no_training_threads() == []
    assert ProfileStore(lstmtui_home).load_meta(name["profile"]).progress.step > 40


def test_failure_is_shown_and_the_app_goes_on(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abc abc\n", encoding="utf-8")
    app = LstmtuiApp(AppOptions(corpus_paths=[str(short)], config=tiny_config()))

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            assert await wait_for(pilot, lambda: app.stats.state == "failed")
            assert app.stats.error
            assert "✖" in app.query_one("#status").render().plain
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape", "q")
            await pilot.pause(0.1)

    asyncio.run(run())
    assert no_training_threads() == []


def test_new_run_form_validates_before_starting(corpus):
    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=tiny_config(), start_training=False))

    async def run():
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("n")
            await pilot.pause(0.2)
            assert isinstance(app.screen, SettingsScreen)
            hidden = app.screen.query_one("#f-hidden")
            hidden.value = "0"
            await pilot.press("ctrl+s")
            await pilot.pause(0.1)
            assert isinstance(app.screen, SettingsScreen)
            assert "hidden size must be" in str(app.screen.query_one("#err-hidden").render())
            hidden.value = "16"
            await pilot.press("ctrl+s")
            assert await wait_for(pilot, lambda: app.stats.step > 0)
            assert app.config.hidden == 16
            await pilot.press("ctrl+c")
            await pilot.pause(0.1)

    asyncio.run(run())
    assert no_training_threads() == []


def test_too_small_terminal_shows_a_notice_and_survives_rapid_resizes():
    app = LstmtuiApp(AppOptions(start_training=False))

    async def run():
        async with app.run_test(size=(40, 12)) as pilot:
            await pilot.pause(0.1)
            notice = app.query_one("#too-small")
            assert notice.display and notice.region.width > 0
            assert "too small" in str(notice.render())
            assert app.query_one("#main").region.width == 0
            for i in range(25):
                await pilot.resize_terminal(30 + (i * 7) % 110, 8 + (i * 5) % 40)
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.2)
            assert app.query_one("#main").region.width == 80
            assert app.query_one("#too-small").region.width == 0
            await pilot.press("q")

    asyncio.run(run())


def test_the_follower_resubscribes_from_a_snapshot_when_the_host_drops_it(corpus):
    """A client that fell behind by a whole queue is dropped by the host; it re-subscribes and re-reads a snapshot."""
    import time

    from lstmtui.core.runhost import RunHost
    from lstmtui.core.training import TrainingSession
    from lstmtui.tui.messages import RunAttached, TrainingUpdate
    from lstmtui.tui.run_client import Coalescer, follow_once

    session = TrainingSession([str(corpus)], tiny_config(epochs=50, eval_every=0), profile="drop", store=ProfileStore())
    host = RunHost(session)
    sub = host.subscribe(maxsize=3)
    host.start()
    try:
        deadline = time.monotonic() + 60
        while not sub.dropped and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sub.dropped
        posted: list = []
        coalescer = Coalescer(posted.append, run=7)
        new = follow_once(posted.append, host, sub, coalescer, 7)
        assert new is not sub and not new.closed
        attached = [m for m in posted if isinstance(m, RunAttached)]
        assert len(attached) == 1 and attached[0].run == 7 and attached[0].host is host
        assert attached[0].snapshot.name == "drop"
        step = attached[0].snapshot.last_step.step if attached[0].snapshot.last_step else 0

        def newer_step() -> bool:
            return any(isinstance(m, TrainingUpdate) and m.step is not None and m.step.step > step for m in posted)

        while time.monotonic() < deadline and not newer_step():
            new = follow_once(posted.append, host, new, coalescer, 7)
        assert newer_step(), "the new subscription goes on from the snapshot"
    finally:
        host.stop()
        host.join(30)
