"""Snapshot tests of the screens, fed fixed metrics and events (no training, no clock)."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lstmtui.core.events import CheckpointEvent, EvalEvent, SampleEvent, StateEvent, StepEvent
from lstmtui.core.profiles import ProfileInfo, ProfileMeta
from lstmtui.tui.app import AppOptions, LstmtuiApp
from lstmtui.tui.screens.profiles import ProfilesScreen
from lstmtui.tui.widgets.generation import GenerationPanel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A private config directory, so the user's keys.toml never changes a snapshot."""
    monkeypatch.setenv("LSTMTUI_CONFIG", str(tmp_path / "config"))


SAMPLE_1 = "Thand the wist of the sare, and the come to the stome of the rist."
SAMPLE_2 = "The morning was quiet; she walked along the river and thought of home."
GENERATED = (
    "ROMEO: and so the light came over the hill, and the old man said nothing "
    "for a long while, but looked at the water as if it\nwould answer him."
)


def fixed_losses(n: int = 1500) -> list[tuple[int, float]]:
    return [(i, 4.2 * math.exp(-i / 350) + 1.3 + 0.04 * math.sin(i * 0.7)) for i in range(1, n + 1)]


def feed(app: LstmtuiApp) -> None:
    """Put a fixed mid-run state on screen."""
    app.profile_name = "prose"
    app.stats = replace(app.stats, profile="prose", device="cpu (2 threads)", params=215_627)
    events = [StateEvent(state="training")]
    for step in range(250, 1501, 250):
        val = 4.2 * math.exp(-step / 350) + 1.42
        events.append(
            EvalEvent(
                step=step,
                epoch=step // 600 + 1,
                val_loss=val,
                val_bpc=val / math.log(2),
                best_val_loss=val,
                elapsed_s=step / 16,
            )
        )
    events.append(SampleEvent(step=1000, epoch=2, temperature=0.8, prime="\n", text=SAMPLE_1))
    events.append(SampleEvent(step=1500, epoch=3, temperature=0.8, prime="\n", text=SAMPLE_2))
    events.append(CheckpointEvent(step=1500, epoch=3, reason="best", profile="prose", path="/p", seconds=0.1))
    step = StepEvent(
        step=1500,
        epoch=3,
        epoch_step=300,
        steps_per_epoch=600,
        total_steps=12000,
        loss=1.52,
        lr=1.8e-3,
        chars_per_s=51_234.0,
        elapsed_s=95.0,
        eta_s=640.0,
    )
    app.apply_update(step, fixed_losses(), events)
    panel = app.query_one("#generation", GenerationPanel)
    panel.start_text("ROMEO: ")
    panel.append(GENERATED[len("ROMEO: ") :])
    panel.set_status("done")


def make_app() -> LstmtuiApp:
    return LstmtuiApp(AppOptions(start_training=False))


SIZES = pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40)], ids=["80x24", "100x30", "120x40"])
def test_main_screen(snap_compare, size):
    async def before(pilot):
        feed(pilot.app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


@SIZES
def test_help_screen(snap_compare, size):
    """Two columns that fit whole at 100x30; one that scrolls at 80x24; "Esc closes" in view either way."""

    async def before(pilot):
        feed(pilot.app)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


@SIZES
def test_typing_a_seed(snap_compare, size):
    """3 puts the cursor in the seed box; the footer names the mode and leaves out the keys that type."""

    async def before(pilot):
        feed(pilot.app)
        await pilot.press("3", *"def parse")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


@SIZES
def test_new_run_form_with_problems(snap_compare, size):
    """Every problem under its field, worded by its label; the first one and the buttons in view."""

    async def before(pilot):
        await pilot.press("n")
        await pilot.pause()
        form = pilot.app.screen
        bad = {"name": "my run", "corpus": "missing.txt", "hidden": "0", "layers": "two", "time_budget_s": "soon"}
        for field, value in bad.items():
            form.query_one(f"#f-{field}").value = value
        await pilot.press("ctrl+s")
        await pilot.pause()
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_too_small_notice(snap_compare):
    assert snap_compare(make_app(), terminal_size=(40, 12))


class StubStore:
    """What the profiles screen reads from a ProfileStore, with fixed contents."""

    root = Path("/home/user/.local/share/lstmtui/profiles")

    def list(self):
        def meta(corpus, hidden, layers, epoch, epochs, best, updated):
            return ProfileMeta.from_json(
                "stub",
                {
                    "format_version": 1,
                    "vocab": [chr(32 + i) for i in range(65)],
                    "files": {},
                    "model": {
                        "vocab_size": 65,
                        "hidden": hidden,
                        "layers": layers,
                        "dropout": 0.1,
                        "input": "embedding",
                        "embedding_dim": 64,
                    },
                    "corpus": {"paths": [f"/data/{corpus}"]},
                    "progress": {
                        "epoch": epoch,
                        "step": epoch * 600,
                        "best_val_loss": best * math.log(2),
                        "finished": epoch >= epochs,
                    },
                    "train_config": {"epochs": epochs},
                    "updated": updated,
                },
            )

        return [
            ProfileInfo("prose", meta("prose.txt", 256, 2, 3, 20, 1.912, "2026-11-28T14:05:00+00:00"), None),
            ProfileInfo(
                "shakespeare", meta("tinyshakespeare.txt", 512, 3, 20, 20, 1.488, "2026-11-27T09:30:00+00:00"), None
            ),
            ProfileInfo("broken", None, "meta.json is not valid JSON"),
        ]


def test_profiles_screen(snap_compare, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()

    async def before(pilot):
        await pilot.app.push_screen(ProfilesScreen(StubStore(), current="prose"))
        await pilot.pause()

    try:
        assert snap_compare(make_app(), terminal_size=(80, 24), run_before=before)
    finally:
        monkeypatch.undo()
        time.tzset()
