"""The key table: one definition per key, the help screen and palette built from it, keys.toml remapping."""

from __future__ import annotations

import asyncio
import io
from collections import Counter

import pytest
from rich.console import Console
from textual.app import App
from textual.keys import key_to_character

from lstmtui.tui import keys
from lstmtui.tui.app import AppOptions, LstmtuiApp
from lstmtui.tui.keymap import load_keymap
from lstmtui.tui.screens.help import HelpScreen
from lstmtui.tui.widgets.generation import GenerationPanel

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A private config directory, so the user's keys.toml never changes a test."""
    path = tmp_path / "config"
    path.mkdir()
    monkeypatch.setenv("LSTMTUI_CONFIG", str(path))
    return path


def idle_app() -> LstmtuiApp:
    return LstmtuiApp(AppOptions(start_training=False))


# ----- the table -----


def test_every_key_has_one_id_a_label_and_what_it_does():
    bindings = list(keys.every_binding())
    ids = Counter(b.id for b in bindings)
    assert all(ids.values()) and max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert None not in ids
    assert all(b.description and b.tooltip for b in bindings)
    # the training panel shows App keys: the same bindings, not new ones
    assert {b.id for b in keys.TRAINING_PANEL} <= {b.id for b in keys.APP}


def test_no_key_that_types_a_character_acts_before_a_text_field():
    """Priority bindings run before the focused widget sees the key: only ctrl/function keys may be one."""
    for binding in keys.every_binding():
        if binding.priority:
            assert not any(keys.is_printable(k) for k in binding.key.split(",")), binding


def test_help_rows_cover_every_binding_once():
    rows = keys.help_rows({})
    ids = [i for row in rows for i in row.ids]
    assert sorted(ids) == sorted(keys.binding_ids())
    quit_row = next(r for r in rows if "quit" in r.ids)
    assert quit_row.keys == "q / ctrl+q"  # neighbours doing the same thing share a line


# ----- keys.toml -----


def test_keymap_file_remaps_by_id_and_reports_each_bad_entry(config_dir):
    (config_dir / "keys.toml").write_text(
        'pause = "ctrl+t"\n'
        'profiles = ["ctrl+o", "f2"]\n'
        'no-such-key = "z"\n'
        "save = 5\n"
        'save-and-quit = "a"\n'  # a priority key that types a letter would fire in the seed box
        'stop-training = "ctrl x"\n',
        encoding="utf-8",
    )
    loaded = load_keymap()
    assert loaded.keymap == {"pause": "ctrl+t", "profiles": "ctrl+o,f2"}
    assert len(loaded.problems) == 4
    assert any("no-such-key" in p for p in loaded.problems)
    assert any("save-and-quit" in p and "types nothing" in p for p in loaded.problems)
    assert all("\n" not in p for p in loaded.problems)


def test_keymap_file_that_is_not_toml_is_one_problem(config_dir):
    (config_dir / "keys.toml").write_text("pause = [[[\n", encoding="utf-8")
    loaded = load_keymap()
    assert loaded.keymap == {}
    assert len(loaded.problems) == 1 and "not valid TOML" in loaded.problems[0]


def test_no_keymap_file_is_no_remapping():
    loaded = load_keymap()
    assert loaded.keymap == {} and loaded.problems == ()


# ----- in the app -----


def help_lines(screen: HelpScreen) -> list[str]:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(screen.query_one("#help-keys").content)
    return [line.rstrip() for line in console.export_text().splitlines()[1:] if line.strip()]


def test_help_screen_and_palette_list_exactly_the_tables_keys():
    app = idle_app()

    async def run():
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            rows = keys.help_rows({})
            lines = help_lines(app.screen)
            assert len(lines) == len(rows)
            for line, row in zip(lines, rows, strict=True):
                assert line.split() == [*row.where.split(), *row.keys.split(), *row.does.split()]
            await pilot.press("escape")

            builtin = {c.title for c in App.get_system_commands(app, app.screen)}
            ours = [c for c in app.get_system_commands(app.screen) if c.title not in builtin]
            entries = keys.palette_entries({})
            assert [c.title for c in ours] == [e.title for e in entries]
            assert [c.help for c in ours] == [f"key {e.keys}" for e in entries]
            palette_actions = {b.action for s in keys.SECTIONS if s.in_palette for b in s.bindings}
            assert {e.action for e in entries} == palette_actions - {
                "app.command_palette",
                "app.focus_next",
                "app.focus_previous",
            }

            # a palette command runs the panel's action like its key does
            panel = app.query_one(GenerationPanel)
            command = next(c for c in ours if c.title == "Temperature + 0.1")
            app.call_later(command.callback)
            await pilot.pause()
            assert panel.settings.temperature == pytest.approx(0.9)

    asyncio.run(run())


def test_keys_toml_remaps_keys_in_the_app_and_in_its_help(config_dir):
    (config_dir / "keys.toml").write_text('temperature-up = "u"\nhelp = ["h", "f1"]\n', encoding="utf-8")
    app = idle_app()

    async def run():
        async with app.run_test(size=(100, 40)) as pilot:
            panel = app.query_one(GenerationPanel)
            await pilot.press("3", "plus")
            assert panel.settings.temperature == pytest.approx(0.8), "+ is no longer bound"
            await pilot.press("u")
            assert panel.settings.temperature == pytest.approx(0.9)
            await pilot.press("question_mark")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            lines = help_lines(app.screen)
            assert any(line.split()[:3] == ["anywhere", "h", "/"] and "f1" in line for line in lines)
            assert any(line.split()[:2] == ["generation", "u"] for line in lines)
            await pilot.press("escape")
            palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
            assert palette["Temperature + 0.1"] == "key u"

    asyncio.run(run())


def test_a_bad_keys_toml_is_a_notification_not_a_crash(config_dir):
    (config_dir / "keys.toml").write_text('help = "h"\nnot-a-binding = "x"\n', encoding="utf-8")
    app = idle_app()

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            messages = [n.message for n in app._notifications]
            assert any("not-a-binding" in m for m in messages), messages
            await pilot.press("h")  # the good entry still applies
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)

    asyncio.run(run())


def test_text_typed_in_the_seed_box_is_text_not_commands():
    """Every single-character key of the app typed in the seed box lands in it; no shortcut fires."""
    app = idle_app()
    typed = sorted({k for b in keys.every_binding() for k in b.key.split(",") if keys.is_printable(k)})

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            panel = app.query_one(GenerationPanel)
            settings, stats = panel.settings, app.stats
            await pilot.press("3", "i")
            await pilot.press(*typed)
            await pilot.pause()
            seed = panel.query_one("#seed")
            assert seed.value == "".join(key_to_character(k) for k in typed)
            assert app.focused is seed
            assert app.screen is app.screen_stack[0] and len(app.screen_stack) == 1
            assert panel.settings == settings and app.stats == stats

    asyncio.run(run())


def test_the_docs_name_every_key_id():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "tui.md").read_text(encoding="utf-8")
    assert sorted(i for i in keys.binding_ids() if f"`{i}`" not in text) == []
