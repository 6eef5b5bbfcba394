"""Pilot tests of the flows a new user meets first (issue 18), at 80x24 and 100x30.

Typing a seed, reopening a profile (curve and samples), the new-run form, training further, renaming,
the help screen, fine-tuning on another corpus. Profiles are trained for real on a tiny model.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace

import pytest
from test_tui_support import tiny_config, wait_for, write_corpus

from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles import ProfileMeta, ProfileStore
from lstmtui.core.profiles.parts import MAX_SAVED_SAMPLES
from lstmtui.core.training import TrainingSession
from lstmtui.tui import keys
from lstmtui.tui.app import AppOptions, LstmtuiApp
from lstmtui.tui.screens.confirm import PromptScreen
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.screens.profiles import ProfilesScreen
from lstmtui.tui.screens.settings import SettingsScreen
from lstmtui.tui.widgets.generation import GenerationPanel
from lstmtui.tui.widgets.loss_chart import LossChart
from lstmtui.tui.widgets.samples import SamplesLog

pytestmark = pytest.mark.timeout(240)

SIZES = pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A private config directory, so the user's keys.toml never changes a test."""
    monkeypatch.setenv("LSTMTUI_CONFIG", str(tmp_path / "config"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A profile 'small' trained to the end of its one epoch on tiny.txt, with samples every 10 steps."""
    base = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTMTUI_CACHE", str(base / "cache"))
        corpus = write_corpus(base / "tiny.txt", size=20_000)
        store = ProfileStore(base / "home")
        config = tiny_config(epochs=1, eval_every=10, sample_every=10, warmup_steps=2)
        result = TrainingSession([str(corpus)], config, profile="small", store=store).run()
    assert result.kind == "finished", result
    return store, corpus


def install(trained, home) -> ProfileStore:
    """A copy of the trained profile in this test's home."""
    store, _ = trained
    dest = ProfileStore(home)
    shutil.copytree(store.root / "small", dest.root / "small")
    return dest


def in_view(widget, container) -> bool:
    """Whether the widget is drawn whole inside the container's visible area."""
    region = widget.region
    return bool(region.area) and container.content_region.intersection(region) == region


async def close(pilot) -> None:
    await pilot.press("ctrl+c")
    await pilot.pause(0.1)


# ----- typing a seed -----


async def _no_idle_wait(*_args, **_kwargs) -> None:
    await asyncio.sleep(0)


@SIZES
def test_typing_a_seed_while_training_is_text_and_changes_nothing(size, tmp_path, monkeypatch):
    # Pilot waits after every key until the process's CPU time stops advancing (at most a second
    # each), which never happens while the training thread runs: the keys go in as one burst
    # instead, as a paste or a slow link delivers them.
    monkeypatch.setattr("textual.app.wait_for_idle", _no_idle_wait)
    corpus = write_corpus(tmp_path / "long.txt", size=400_000)
    config = tiny_config(epochs=50, eval_every=0)
    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=config))
    typed = sorted({k for b in keys.every_binding() for k in b.key.split(",") if keys.is_printable(k)})

    async def run():
        async with app.run_test(size=size) as pilot:
            assert await wait_for(pilot, lambda: app.stats.state == "training")
            profile = app.profile_name
            await pilot.press("3", *typed, *" def parse")
            await pilot.pause(0.3)
            seed = app.query_one("#seed")
            assert seed.value == "".join(keys.typed_character(k) for k in typed) + " def parse"
            assert app.focused is seed
            assert len(app.screen_stack) == 1, app.screen_stack
            assert app.stats.state == "training" and app.profile_name == profile

            # the new-run form starts from the run: its corpus and settings
            await pilot.press("escape")
            await pilot.pause(0.3)
            await pilot.press("n")
            assert await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), timeout=10)
            form = app.screen
            assert form.query_one("#f-corpus").value == str(corpus)
            assert (form.query_one("#f-hidden").value, form.query_one("#f-layers").value) == ("32", "1")
            assert form.query_one("#f-name").value == "long-2"  # 'long' is the run's own
            await pilot.press("escape")
            await close(pilot)

    asyncio.run(run())


# ----- reopening a profile -----


def test_a_profile_keeps_its_newest_samples_and_older_profiles_still_load(trained):
    store, _ = trained
    meta = store.load_meta("small")
    assert 0 < len(meta.samples) <= MAX_SAVED_SAMPLES
    assert [s.step for s in meta.samples] == sorted(s.step for s in meta.samples)
    assert meta.samples[-1].step <= meta.progress.step and all(s.text for s in meta.samples)
    data = meta.to_json()
    del data["samples"]
    assert ProfileMeta.from_json("old", data).samples == ()
    for bad in ([data["vocab"]] * 12, [{"step": 1, "text": 5}], [{"step": -1, "text": "x"}]):
        with pytest.raises(ProfileError, match="samples"):
            ProfileMeta.from_json("bad", json.loads(json.dumps({**data, "samples": bad})))


@SIZES
def test_reopening_a_profile_shows_its_curve_and_its_last_samples(size, trained, lstmtui_home):
    store = install(trained, lstmtui_home)
    meta = store.load_meta("small")
    app = LstmtuiApp(AppOptions(profile="small", config=tiny_config(), start_training=False))

    async def run():
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.1)
            samples = app.query_one(SamplesLog)
            assert samples.count == len(meta.samples)
            assert meta.samples[-1].text.splitlines()[0] in "\n".join(line.text for line in samples.lines)
            assert len(app.query_one(LossChart).train.points) > 10
            await pilot.press("q")

    asyncio.run(run())

    # Enter in the profiles screen opens it the same way
    other = LstmtuiApp(AppOptions(config=tiny_config(), start_training=False))

    async def from_screen():
        async with other.run_test(size=size) as pilot:
            await pilot.press("o")
            await pilot.pause(0.2)
            assert isinstance(other.screen, ProfilesScreen)
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert other.profile_name == "small"
            assert other.query_one(SamplesLog).count == len(meta.samples)
            await pilot.press("q")

    asyncio.run(from_screen())


# ----- the new-run form -----


@SIZES
def test_the_new_run_form_starts_from_the_open_profile(size, trained, lstmtui_home):
    install(trained, lstmtui_home)
    _, corpus = trained
    app = LstmtuiApp(AppOptions(profile="small", start_training=False))  # the app's own config: the defaults

    async def run():
        async with app.run_test(size=size) as pilot:
            await pilot.press("n")
            await pilot.pause(0.2)
            form = app.screen
            assert isinstance(form, SettingsScreen)
            values = {f: form.query_one(f"#f-{f}").value for f in ("name", "corpus", "hidden", "layers", "seq_len")}
            assert values == {"name": "tiny", "corpus": str(corpus), "hidden": "32", "layers": "1", "seq_len": "32"}
            form.query_one("#f-corpus").value = "/data/poems.txt"  # the name follows the corpus until typed
            await pilot.pause()
            assert form.query_one("#f-name").value == "poems"
            assert in_view(form.query_one("#start"), app.screen.query_one(".settings"))
            await pilot.press("escape")

    asyncio.run(run())


@SIZES
def test_the_new_run_form_shows_every_problem_beside_its_field_in_view(size, tmp_path):
    corpus = write_corpus(tmp_path / "tiny.txt", size=20_000)
    app = LstmtuiApp(AppOptions(config=tiny_config(epochs=50, eval_every=0), start_training=False))

    def fill(form, **values):
        for field, value in values.items():
            form.query_one(f"#f-{field}").value = value

    def error(form, field) -> str:
        label = form.query_one(f"#err-{field}")
        return str(label.render()) if label.display else ""

    async def run():
        async with app.run_test(size=size) as pilot:
            panel = app.query_one(GenerationPanel)
            panel.start_text("text of the previous profile")
            await pilot.press("n")
            await pilot.pause(0.2)
            form = app.screen
            box = form.query_one(".settings")
            bad = dict(name="my run", corpus=str(tmp_path / "missing.txt"), hidden="0", layers="two", dropout="2")
            fill(form, **bad, time_budget_s="soon")
            await pilot.press("ctrl+s")
            await pilot.pause(0.2)
            assert app.screen is form, "a form with problems stays open"
            assert "may only hold" in error(form, "name")
            assert "does not exist" in error(form, "corpus")
            assert error(form, "hidden").startswith("✖ hidden size must be")
            assert error(form, "layers") == "✖ layers must be a whole number, not 'two'"
            assert error(form, "dropout").startswith("✖ dropout must be")
            assert error(form, "time_budget_s").startswith("✖ time budget must be a duration")
            assert error(form, "epochs") == ""
            assert app.focused is form.query_one("#f-name")
            assert in_view(form.query_one("#err-name"), box) and in_view(form.query_one("#f-name"), box)
            assert any("correct" in n.message for n in app._notifications), "Ctrl+S says why nothing started"

            # one problem left, at the bottom of the form: it is scrolled into view
            fill(form, name="fresh", corpus=str(corpus), hidden="16", layers="1", dropout="0.1")
            await pilot.press("ctrl+s")
            await pilot.pause(0.2)
            assert [f for f in ("name", "corpus", "hidden", "layers", "dropout") if error(form, f)] == []
            assert app.focused is form.query_one("#f-time_budget_s")
            assert in_view(form.query_one("#err-time_budget_s"), box)
            assert in_view(form.query_one("#start"), box)

            fill(form, time_budget_s="0")
            await pilot.press("ctrl+s")
            assert await wait_for(pilot, lambda: app.profile_name == "fresh" and app.stats.step > 0)
            assert app.config.hidden == 16
            assert panel.text == "" and panel.status == "idle", "the Generate panel is cleared for the new run"
            await close(pilot)

    asyncio.run(run())


# ----- training further, renaming -----


@SIZES
def test_training_a_finished_profile_further_asks_how_many_more_epochs(size, trained, lstmtui_home):
    store = install(trained, lstmtui_home)
    done = store.load_meta("small").progress.step
    app = LstmtuiApp(AppOptions(profile="small", config=tiny_config(), start_training=False))

    async def run():
        async with app.run_test(size=size) as pilot:
            await pilot.press("p")
            await pilot.pause(0.2)
            dialog = app.screen
            assert isinstance(dialog, PromptScreen)
            box = dialog.query_one("#prompt")
            assert box.value == "1", "the default: the run's epochs again"
            for wrong, says in (("0", "at least 1"), ("two", "whole number")):
                box.value = wrong
                await pilot.press("enter")
                await pilot.pause(0.1)
                assert app.screen is dialog and says in str(dialog.query_one("#prompt-error").render())
            assert app.stats.state == "finished", "nothing starts until the answer is good"
            box.value = "2"
            await pilot.press("enter")
            assert await wait_for(pilot, lambda: app.stats.step > done)
            assert app.stats.epochs == 3
            await close(pilot)

    asyncio.run(run())
    assert store.load_meta("small").train_config.epochs == 3


@SIZES
def test_an_invalid_rename_keeps_the_dialog_open_to_correct_it(size, trained, lstmtui_home):
    store = install(trained, lstmtui_home)
    app = LstmtuiApp(AppOptions(profile="small", config=tiny_config(), start_training=False))

    async def run():
        async with app.run_test(size=size) as pilot:
            await pilot.press("o")
            await pilot.pause(0.2)
            await pilot.press("r")
            await pilot.pause(0.1)
            dialog = app.screen
            assert isinstance(dialog, PromptScreen)
            dialog.query_one("#prompt").value = "no spaces please"
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert app.screen is dialog
            assert "may only hold" in str(dialog.query_one("#prompt-error").render())
            dialog.query_one("#prompt").value = "renamed"
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert isinstance(app.screen, ProfilesScreen)
            assert store.exists("renamed") and not store.exists("small")
            assert app.profile_name == "renamed", "the open profile is followed under its new name"
            await pilot.press("escape", "q")

    asyncio.run(run())


# ----- the help screen -----


@SIZES
def test_the_help_fits_or_scrolls_with_its_close_hint_in_view(size):
    app = LstmtuiApp(AppOptions(start_training=False))

    async def run():
        async with app.run_test(size=size) as pilot:
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            assert isinstance(app.screen, HelpScreen)
            box = app.screen.query_one("#help-box")
            head = app.screen.query_one("#help-head")
            assert "Esc closes" in str(head.render()) and head.region.area
            if size == (100, 30):
                assert box.max_scroll_y == 0, "the whole list fits 100x30"
            else:
                assert box.max_scroll_y > 0
                await pilot.press("end")
                await pilot.pause(0.2)
                assert box.scroll_y > 0 and head.region.area, "the hint stays while the list scrolls"
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert not isinstance(app.screen, HelpScreen)

    asyncio.run(run())


# ----- fine-tuning -----


@SIZES
def test_fine_tuning_on_another_corpus_says_so_and_marks_the_chart(size, trained, lstmtui_home, tmp_path):
    install(trained, lstmtui_home)
    other = write_corpus(tmp_path / "other.txt", size=400_000, seed=8)
    config = tiny_config(epochs=50, eval_every=0)
    app = LstmtuiApp(AppOptions(corpus_paths=[str(other)], profile="small", config=config))

    async def run():
        async with app.run_test(size=size) as pilot:
            assert await wait_for(pilot, lambda: app.stats.fine_tune and app.stats.step > 5)
            assert app.stats.fine_tune == "fine-tuning: tiny.txt → other.txt (+0 characters)"
            assert "fine-tuning" in app.query_one("#status").render().plain
            assert "fine-tuning: tiny.txt" in str(app.query_one("#training").border_title)
            chart = app.query_one(LossChart)
            assert await wait_for(pilot, lambda: len(chart.marks) == 1)
            assert chart.train.points[-1][0] > chart.marks[0], "the new steps are drawn after the old ones"
            assert "new corpus" in chart.render().plain
            await close(pilot)

    asyncio.run(run())
    reopened = LstmtuiApp(AppOptions(profile="small", config=replace(config), start_training=False))

    async def again():
        async with reopened.run_test(size=size) as pilot:
            await pilot.pause(0.1)
            assert len(reopened.query_one(LossChart).marks) == 1, "a reopened profile shows where its corpus changed"
            await pilot.press("q")

    asyncio.run(again())
