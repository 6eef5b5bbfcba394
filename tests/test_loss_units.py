"""One loss unit throughout, bits or nats per character, named once; estimates labelled wherever shown."""

from __future__ import annotations

import math

import pytest
import torch

from lstmtui.cli import main
from lstmtui.commands.train import _plain_line
from lstmtui.core.config import ModelConfig
from lstmtui.core.errors import ConfigError
from lstmtui.core.events import EpochEvent, EvalEvent, FinishedEvent, StepEvent
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileMeta, ProfileStore
from lstmtui.core.units import format_loss, loss_unit, other_unit, unit_label
from lstmtui.tui.widgets.status import TrainingStats, render_status

LN2 = math.log(2)


def test_a_loss_in_either_unit_and_an_estimate_labelled():
    assert format_loss(LN2, "bits") == "1.000" and format_loss(LN2, "nats", 4) == "0.6931"
    assert format_loss(2 * LN2, "bits", stderr=0.01 * LN2) == "≈2.000 ±0.010"
    assert format_loss(2 * LN2, "bits", estimate=True) == "≈2.000"
    assert format_loss(math.inf, "bits") == format_loss(None, "nats") == format_loss(math.nan, "bits") == "–"
    assert unit_label("bits") == "bits/char" and unit_label("nats") == "nats/char"
    assert other_unit("bits") == "nats" and other_unit("nats") == "bits"


def test_the_unit_comes_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.delenv("LSTMTUI_UNITS", raising=False)
    assert loss_unit() == "bits"
    monkeypatch.setenv("LSTMTUI_UNITS", "NATS")
    assert loss_unit() == "nats" and loss_unit("bits") == "bits"
    with pytest.raises(ConfigError, match="units must be bits or nats") as typed:
        loss_unit("furlongs")
    assert typed.value.field == "units"
    monkeypatch.setenv("LSTMTUI_UNITS", "furlongs")
    with pytest.raises(ConfigError, match=r"\$LSTMTUI_UNITS must be bits or nats"):
        loss_unit()


def one_unit(line: str, unit: str) -> None:
    """The line names ``unit`` exactly once and the other unit not at all."""
    assert line.count(unit_label(unit)) == 1, line
    assert "nats" not in line if unit == "bits" else "bits" not in line, line
    assert "bpc" not in line, line


@pytest.mark.parametrize("unit", ["bits", "nats"])
def test_cli_lines_show_one_unit_and_label_estimates(unit):
    check = EvalEvent(
        step=500, epoch=1, val_loss=1.2, val_bpc=1.2 / LN2, best_val_loss=1.1, elapsed_s=9.0, estimate=True, stderr=0.02
    )
    line = _plain_line(check, unit)
    one_unit(line, unit)
    value = 1.2 / LN2 if unit == "bits" else 1.2
    assert f"val ≈{value:.4f} ±" in line and "estimate" in line and "best ≈" in line
    full = EvalEvent(step=500, epoch=1, val_loss=1.2, val_bpc=1.2 / LN2, best_val_loss=1.1, elapsed_s=9.0)
    assert "≈" not in _plain_line(full, unit) and "estimate" not in _plain_line(full, unit)
    epoch = EpochEvent(
        epoch=2,
        step=900,
        train_loss=1.0,
        val_loss=1.2,
        val_bpc=1.2 / LN2,
        chars_per_s=1000.0,
        elapsed_s=9.0,
        best_val_loss=1.1,
        lr=1e-3,
        best_estimate=True,
    )
    one_unit(_plain_line(epoch, unit), unit)
    assert f"val {value:.4f} best ≈" in _plain_line(epoch, unit)
    step = StepEvent(
        step=5,
        epoch=1,
        epoch_step=5,
        steps_per_epoch=10,
        total_steps=20,
        loss=1.2,
        lr=1e-3,
        chars_per_s=100.0,
        elapsed_s=1.0,
        eta_s=2.0,
    )
    one_unit(_plain_line(step, unit), unit)
    finished = FinishedEvent(
        reason="completed", step=20, epoch=2, best_val_loss=1.2, best_val_bpc=1.2 / LN2, elapsed_s=3.0
    )
    one_unit(_plain_line(finished, unit), unit)
    assert f"best val {value:.4f} {unit_label(unit)} (full split)" in _plain_line(finished, unit)


@pytest.mark.parametrize("unit", ["bits", "nats"])
def test_the_status_panel_shows_every_loss_in_one_unit_named_once(unit):
    stats = TrainingStats(
        state="training",
        loss=1.0,
        val_bpc=2.0,
        best_bpc=1.5,
        val_estimate=True,
        val_stderr=0.05,
        best_estimate=True,
    )
    text = render_status(stats, 40, unit).plain
    one_unit(text, unit)
    scale = 1.0 if unit == "bits" else LN2
    loss = 1.0 / LN2 if unit == "bits" else 1.0
    assert f"loss {loss:.3f}  val ≈{2.0 * scale:.3f} ±" in text and f"best ≈{1.5 * scale:.3f}" in text
    ended = TrainingStats(state="finished", val_bpc=2.0, best_bpc=1.5)
    assert "≈" not in render_status(ended, 40, unit).plain


def save_profile(store: ProfileStore, name: str, progress: dict) -> None:
    model = ModelConfig(vocab_size=3, hidden=8, layers=1)
    meta = ProfileMeta.from_json(
        "test",
        {"format_version": 1, "files": {}, "model": model.to_dict(), "vocab": ["a", "b", "\n"], "progress": progress},
    )
    tensors = {k: torch.zeros_like(t) for k, t in CharLSTM(model).state_dict().items()}
    store.save(name, meta, {"best": tensors, "latest": tensors})


def test_profiles_list_and_show_use_the_chosen_unit(lstmtui_home, capsys, monkeypatch):
    store = ProfileStore(lstmtui_home)
    save_profile(store, "done", {"step": 10, "best_val_loss": 2 * LN2})
    save_profile(store, "midway", {"step": 5, "best_estimate": 3 * LN2, "best_estimate_stderr": 0.1})
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    assert "best val (bits/char)" in out and "2.000" in out and "≈3.000" in out
    assert main(["profiles", "list", "--units", "nats"]) == 0
    out = capsys.readouterr().out
    assert "best val (nats/char)" in out and f"{2 * LN2:.3f}" in out and f"≈{3 * LN2:.3f}" in out
    monkeypatch.setenv("LSTMTUI_UNITS", "nats")
    assert main(["profiles", "show", "midway"]) == 0
    out = capsys.readouterr().out
    assert f"best validation: ≈{3 * LN2:.4f} nats/char (estimate" in out and "bits" not in out
    assert main(["profiles", "show", "done", "--units", "bits"]) == 0
    assert "best validation: 2.0000 bits/char (full split)" in capsys.readouterr().out
    assert main(["profiles", "list", "--units", "furlongs"]) == 2
    err = capsys.readouterr().err
    assert "--units: units must be bits or nats" in err and "Traceback" not in err


def test_the_units_key_switches_every_loss_the_app_shows(monkeypatch, tmp_path):
    import asyncio

    from lstmtui.tui.app import AppOptions, LstmtuiApp
    from lstmtui.tui.widgets.loss_chart import LossChart
    from lstmtui.tui.widgets.status import StatusView

    monkeypatch.setenv("LSTMTUI_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("LSTMTUI_UNITS", "nats")

    async def run() -> None:
        app = LstmtuiApp(AppOptions(start_training=False))
        async with app.run_test(size=(100, 30)) as pilot:
            app.stats = TrainingStats(state="training", loss=1.0, val_bpc=2.0, best_bpc=1.5)
            app.query_one(LossChart).add_losses([(1, 2.0), (2, 1.9)])
            await pilot.pause()
            status = app.query_one(StatusView)
            assert status.unit == "nats" and app.query_one(LossChart).unit == "nats"
            assert "best 1.040 nats/char" in status.render().plain  # 1.5 bits
            assert "(nats/char)" in str(app.query_one("#training").border_subtitle)
            await pilot.press("u")
            assert status.unit == "bits" and app.query_one(LossChart).unit == "bits"
            assert "loss 1.443  val 2.000" in status.render().plain and "best 1.500 bits/char" in status.render().plain
            assert "(bits/char)" in str(app.query_one("#training").border_subtitle)

    asyncio.run(run())
