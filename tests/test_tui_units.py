"""Unit tests of the TUI's pure parts: event coalescing, the bounded chart series, the chart drawing."""

from __future__ import annotations

import math
from dataclasses import replace

from lstmtui.core.events import EvalEvent, PrepareEvent, StateEvent, StepEvent
from lstmtui.tui.launch import set_fps
from lstmtui.tui.messages import METRIC_UPDATES_PER_S
from lstmtui.tui.run_client import Coalescer
from lstmtui.tui.widgets.loss_chart import Series, render_chart
from lstmtui.tui.widgets.status import TrainingStats, render_status


def step(n: int) -> StepEvent:
    return StepEvent(
        step=n,
        epoch=1,
        epoch_step=n,
        steps_per_epoch=100,
        total_steps=1000,
        loss=2.0 - n / 1000,
        lr=1e-3,
        chars_per_s=1000.0,
        elapsed_s=n / 10,
        eta_s=10.0,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_coalescer_posts_at_most_the_metric_rate_and_keeps_every_loss():
    posted, clock = [], FakeClock()
    c = Coalescer(posted.append, clock=clock)
    for n in range(1, 5001):  # 1000 steps a simulated second, for 5 seconds
        clock.now = n / 1000
        c(step(n))
    c.flush()
    assert METRIC_UPDATES_PER_S * 5 - 1 <= len(posted) <= METRIC_UPDATES_PER_S * 5 + 2
    assert [p for m in posted for p in m.losses] == [(n, 2.0 - n / 1000) for n in range(1, 5001)]
    assert posted[-1].step.step == 5000


def test_coalescer_posts_rare_events_at_once_in_order():
    posted, clock = [], FakeClock()
    c = Coalescer(posted.append, interval=0.1, clock=clock)
    c(PrepareEvent(stage="reading", done=1, total=2))
    c(StateEvent(state="training"))
    clock.now = 0.01
    c(step(1))
    c(EvalEvent(step=1, epoch=1, val_loss=1.5, val_bpc=2.1, best_val_loss=1.5, elapsed_s=0.1))
    kinds = [e.kind for m in posted for e in m.events]
    assert kinds == ["prepare", "state", "eval"]
    assert posted[-1].step.step == 1


def test_series_stays_bounded_and_keeps_the_whole_run():
    s = Series(limit=100)
    for n in range(10_000):
        s.add(n, 1.0)
    assert len(s.points) <= 100
    assert s.points[0][0] < 100 and s.points[-1][0] > 9_900
    s.add(1, math.nan)
    assert all(math.isfinite(v) for _, v in s.points)


def test_chart_fits_any_size_and_handles_flat_or_empty_data():
    train = [(n, 3.0 * math.exp(-n / 200) + 1) for n in range(1, 1000)]
    val = [(n, 3.0 * math.exp(-n / 200) + 1.1) for n in range(100, 1000, 100)]
    for width, height in [(10, 3), (44, 8), (120, 30)]:
        text = render_chart(train, val, width, height)
        lines = text.plain.split("\n")
        assert len(lines) == height
        assert all(len(line) <= width for line in lines)
    assert render_chart([(1, 2.0), (2, 2.0)], [], 40, 6).plain
    assert "waiting" in render_chart([], [], 40, 6).plain
    assert render_chart(train, val, 3, 2).plain == ""


def test_status_shows_state_progress_and_errors():
    stats = TrainingStats(
        state="failed",
        epoch=2,
        epochs=4,
        epoch_step=5,
        steps_per_epoch=10,
        step=15,
        total_steps=40,
        error="corpus too short",
    )
    text = render_status(stats).plain
    assert "failed" in text and "epoch 2/4" in text and "corpus too short" in text
    assert "step 15/40" in text
    # under a time budget the total is where the budget is forecast to end, and reads as approximate
    budgeted = render_status(replace(stats, state="training", total_steps=3906, total_forecast=True)).plain
    assert "step 15/≈3,906" in budgeted and "epoch 2/≈4" in budgeted


def test_status_names_the_device_and_bf16_training():
    stats = TrainingStats(state="training", device="cpu (2 threads), bf16", params=3_300_000)
    assert "cpu bf16 · 3.3M params" in render_status(stats).plain
    stats = replace(stats, device="cpu (2 threads)")
    assert "bf16" not in render_status(stats).plain


def test_fps_option_sets_textual_fps(monkeypatch):
    monkeypatch.delenv("TEXTUAL_FPS", raising=False)
    monkeypatch.delenv("LSTMTUI_FPS", raising=False)
    set_fps(None)
    import os

    assert os.environ["TEXTUAL_FPS"] == "30"
    monkeypatch.setenv("LSTMTUI_FPS", "8")
    set_fps(None)
    assert os.environ["TEXTUAL_FPS"] == "8"
    set_fps(12)
    assert os.environ["TEXTUAL_FPS"] == "12"


def test_the_app_plans_a_typed_time_budget_and_keeps_typed_options(tmp_path, monkeypatch):
    """`lstmtui corpus --time-budget 1m --hidden 64`: the new run's overrides trigger the planner and fix hidden."""
    from lstmtui.cli import main
    from lstmtui.tui.app import LstmtuiApp

    seen = {}
    monkeypatch.setattr(LstmtuiApp, "run", lambda self, *a, **k: seen.update(options=self.options))
    corpus = tmp_path / "c.txt"
    corpus.write_text("some words and more words\n" * 200)
    assert main([str(corpus), "--time-budget", "1m", "--hidden", "64", "--home", str(tmp_path / "home")]) in (0, None)
    assert seen["options"].overrides == {"time_budget_s": 60.0, "hidden": 64}


def test_the_settings_form_plans_its_time_budget():
    from lstmtui.core.config import TrainConfig
    from lstmtui.tui.screens.settings import form_overrides

    before = TrainConfig()
    assert form_overrides(before, TrainConfig(hidden=64)) == {"hidden": 64}
    assert form_overrides(before, TrainConfig(time_budget_s=900.0)) == {"time_budget_s": 900.0}
    # a budget already set before the form opened still gets planned
    planned = TrainConfig(time_budget_s=120.0)
    assert form_overrides(planned, planned) == {"time_budget_s": 120.0}


def test_run_view_turns_events_into_new_stats_values():
    from lstmtui.core.events import CheckpointEvent, FailedEvent
    from lstmtui.tui import run_view

    start = TrainingStats(state="starting")
    s = run_view.with_event(start, PrepareEvent(stage="encoding", done=1, total=4))
    s = run_view.with_event(s, StateEvent(state="training"))
    s = run_view.with_step(s, step(250))
    s = run_view.with_event(
        s, EvalEvent(step=250, epoch=2, val_loss=1.5, val_bpc=2.1, best_val_loss=1.4, elapsed_s=25.0)
    )
    s = run_view.with_event(s, CheckpointEvent(step=250, epoch=2, reason="best", profile="p", path="/p", seconds=0.1))
    assert start.state == "starting" and start.step == 0, "values are replaced, never changed"
    assert (s.prepare, s.state, s.step, s.epochs, s.val_bpc) == ("encoding 25%", "training", 250, 10, 2.1)
    assert s.best_bpc == 1.4 / math.log(2) and s.saved == "step 250 (best)"
    assert not s.total_forecast and run_view.with_step(s, replace(step(251), forecast=True)).total_forecast
    failed = run_view.with_event(s, FailedEvent(message="diverged"))
    assert (failed.state, failed.error) == ("failed", "diverged")
    assert run_view.stopped(s).state == "stopped" and run_view.stopped(failed).state == "failed"


def test_run_view_reads_a_snapshot_of_a_run_it_attaches_to():
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.runhost import LossHistory, LossPoint, RunSnapshot
    from lstmtui.tui import run_view

    snap = RunSnapshot(
        name="prose",
        state="paused",
        detail="",
        config=TrainConfig(epochs=7),
        parameters=215_627,
        device="cpu (2 threads)",
        precision="fp32",
        history=LossHistory((LossPoint(1, 2.0, 0.1),), ()),
        last_step=step(40),
        last_eval=None,
        last_checkpoint=None,
        prepare=None,
        samples=(),
        best_val_loss=1.2,
        paused=True,
        result=None,
    )
    s = run_view.with_snapshot(TrainingStats(), snap)
    assert (s.profile, s.state, s.step, s.params, s.device) == ("prose", "paused", 40, 215_627, "cpu (2 threads)")
    assert s.best_bpc == 1.2 / math.log(2)


def test_a_run_whose_steps_start_again_is_drawn_after_the_one_before_with_a_mark():
    from lstmtui.tui.widgets.loss_chart import MARK_CHAR, MARK_LEGEND, LossChart

    chart = LossChart()
    chart.load([(n, 3.0 - n / 100) for n in range(1, 101)], [(50, 2.6), (100, 2.1)])
    chart.add_losses([(n, 2.5 - n / 200) for n in range(1, 51)])  # a fine-tune: its steps start at 1
    chart.add_val(50, 2.3)
    assert chart.marks == [100.0]
    assert chart.train.points[-1][0] == 150 and chart.val.points[-1][0] == 150
    text = render_chart(chart.train.points, chart.val.points, 60, 10, chart.marks).plain
    assert MARK_CHAR in text and MARK_LEGEND in text.splitlines()[-1]
    reopened = LossChart()
    reopened.load([(n, 1.0) for n in range(1, 101)], [], marks=(100,))  # a profile's fine-tune event
    assert reopened.marks == [100]


def test_fine_tune_line_names_both_corpora_and_the_characters_added():
    from lstmtui.core.events import FineTuneEvent
    from lstmtui.tui import run_view

    event = FineTuneEvent(
        profile="pyc", step=900, old_corpus=("/d/prose.txt",), new_corpus=("/d/accents.txt",), added=("é", "à")
    )
    s = run_view.with_event(TrainingStats(state="training"), event)
    assert s.fine_tune == "fine-tuning: prose.txt → accents.txt (+2 characters)"
    assert "▶ fine-tuning" in render_status(s).plain
    assert run_view.restarted(s, "pyc").fine_tune == ""


def test_the_new_run_form_starts_from_the_run_then_the_profile_then_the_defaults():
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.profiles import ProfileMeta
    from lstmtui.tui import run_view

    meta = ProfileMeta.from_json(
        "p",
        {
            "format_version": 1,
            "files": {},
            "vocab": ["a", "b"],
            "model": {"vocab_size": 2, "hidden": 128, "layers": 2},
            "corpus": {"paths": ["/d/c.txt"]},
        },
    )
    default = TrainConfig()
    paths, config = run_view.form_defaults(meta, None, [], default)
    assert paths == ["/d/c.txt"] and (config.hidden, config.layers) == (128, 2)
    running = TrainConfig(hidden=64)
    assert run_view.form_defaults(meta, running, ["/x.txt"], default) == (["/x.txt"], running)
    assert run_view.form_defaults(None, None, [], default) == ([], default)


def test_form_words_core_messages_by_its_labels_and_shows_durations():
    from lstmtui.tui.screens.settings import duration_text, worded

    assert worded("batch", "batch size must be between 1 and 8192") == "batch size must be between 1 and 8192"
    assert worded("time_budget_s", "time budget (seconds) must be >= 0") == "time budget must be >= 0"
    assert [duration_text(v) for v in (0, 90, 900, 7200, 95.5)] == ["0", "90s", "15m", "2h", "95.5s"]


def test_the_footer_drops_the_palette_first_and_keeps_help_and_quit():
    from textual.binding import Binding

    from lstmtui.tui.widgets.footer import FooterEntry, fit

    def entry(key: str, label: str, id: str) -> FooterEntry:
        return FooterEntry(key, key, label, Binding(key, "a", label, id=id), True)

    entries = [entry("p", "pause", "pause"), entry("w", "write", "w"), entry("q", "quit", "quit")]
    entries += [entry("?", "help", "help"), entry("^p", "palette", "command-palette")]
    widths = sum(e.width for e in entries)
    assert fit(entries, "", widths) == entries
    assert [e.label for e in fit(entries, "", widths - 1)] == ["pause", "write", "quit", "help"]
    assert [e.label for e in fit(entries, "controls", widths - 12)] == ["pause", "quit", "help"]
    assert [e.label for e in fit(entries, "", 5)] == ["quit", "help"]
