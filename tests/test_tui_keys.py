"""The key table: one definition per key, the help screen and palette built from it, keys.toml remapping."""

from __future__ import annotations

import asyncio
import io
from collections import Counter

import pytest
from rich.console import Console
from textual.app import App

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
        if binding.priority and binding.id not in keys.STAND_ASIDE:
            assert not any(keys.is_printable(k) for k in binding.key.split(",")), binding
    # the focus keys are priority, so a burst of keys after one goes where it moved the focus; in a text
    # field they stand aside (test_text_typed_in_the_seed_box_is_text_not_commands types each of them)
    assert {keys.by_id(i).key for i in keys.STAND_ASIDE} == {"1", "2", "3", "i"}


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
    """The help screen's key lines, column after column, as text."""
    lines = []
    for column in screen.query("#help-left, #help-right"):
        if not column.display:
            continue
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(column.content)
        lines += [line.rstrip() for line in console.export_text().splitlines() if line.strip()]
    return lines


def expected_help_lines(rows: list[keys.HelpRow], order: tuple[str, ...]) -> list[list[str]]:
    """The words of each line the help screen shows for these rows: a heading a section, then its keys."""
    out: list[list[str]] = []
    for where in order:
        out.append(where.split())
        out += [[row.keys.replace(" / ", "/"), *row.does.split()] for row in rows if row.where == where]
    return out


def test_help_screen_and_palette_list_exactly_the_tables_keys():
    from lstmtui.tui.screens.help import LEFT, RIGHT

    app = idle_app()

    async def run():
        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            rows = keys.help_rows({})
            assert {r.where for r in rows} == set(LEFT + RIGHT)
            lines = help_lines(app.screen)
            assert [line.split() for line in lines] == expected_help_lines(rows, LEFT + RIGHT)
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
            await pilot.press("3", "escape", "plus")  # 3 is the seed box; Escape leaves it for the controls
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
            assert ["h/f1", "show", "every", "key"] in [line.split() for line in lines[lines.index("anywhere") :]]
            generation = lines[lines.index("generation") :]
            assert any(line.split()[0] == "u/-" for line in generation), generation
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


def typed_keys() -> list[str]:
    """Every key of the table that types a character (p s o n x q d i m k K w + - [ ] , . ? ...)."""
    return sorted({k for b in keys.every_binding() for k in b.key.split(",") if keys.is_printable(k)})


def footer_text(app) -> str:
    from lstmtui.tui.widgets.footer import Footer

    footer = app.screen.query_one(Footer)
    return " ".join(str(w.render()) for w in footer.children)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_text_typed_in_the_seed_box_is_text_not_commands(size):
    """After 3 the cursor is in the seed box: every key of the app that types a character lands in it."""
    app = idle_app()
    typed = typed_keys()
    assert {"p", "s", "o", "n", "x", "q", "d", "i", "m", "k", "w"} <= set(typed)

    async def run():
        async with app.run_test(size=size) as pilot:
            panel = app.query_one(GenerationPanel)
            settings, stats = panel.settings, app.stats
            await pilot.press("3")
            seed = panel.query_one("#seed")
            assert app.focused is seed
            await pilot.pause()
            assert footer_text(app).startswith("typing seed")
            assert "generate" in footer_text(app) and "controls" in footer_text(app)
            await pilot.press(*typed, "space", *"def parse")
            await pilot.pause()
            assert seed.value == "".join(keys.typed_character(k) for k in typed) + " def parse"
            assert app.focused is seed
            assert len(app.screen_stack) == 1 and app.screen is app.screen_stack[0]
            assert panel.settings == settings and app.stats == stats
            assert "quit" not in footer_text(app), "keys that type text are not offered while typing"

            # Escape leaves the box: the same keys are the panel's controls again
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is panel.query_one("#gen-scroll")
            assert footer_text(app).startswith("controls")
            await pilot.press("plus", "m")
            assert panel.settings.temperature == pytest.approx(0.9) and panel.settings.method == "top-k"
            await pilot.press("i", "x")
            assert app.focused is seed and seed.value.endswith("parsex")
            await pilot.press("tab")  # Tab leaves the box too
            assert app.focused is panel.query_one("#gen-scroll")

    asyncio.run(run())


def burst(app, text: str) -> None:
    """Keys that arrive together (a paste, an SSH packet): all queued before the app handles the first."""
    from textual import events

    for ch in text:
        app.post_message(events.Key(ch, ch))


def test_keys_typed_in_one_burst_after_a_focus_key_go_where_it_moved_the_focus():
    app = idle_app()

    async def run():
        async with app.run_test(size=(80, 24)) as pilot:
            seed = app.query_one("#seed")
            burst(app, "3pson")
            await pilot.pause(0.3)
            assert seed.value == "pson" and len(app.screen_stack) == 1
            await pilot.press("escape")
            burst(app, "ixq")
            await pilot.pause(0.3)
            assert seed.value == "psonxq" and app.return_code is None

    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_a_click_into_the_generation_panel_puts_the_cursor_in_the_seed_box(size):
    app = idle_app()

    async def run():
        async with app.run_test(size=size) as pilot:
            panel = app.query_one(GenerationPanel)
            assert app.focused is app.query_one("#training")
            await pilot.click("#gen-scroll")
            await pilot.pause()
            assert app.focused is panel.query_one("#seed")
            await pilot.press("escape")
            await pilot.click("#gen-scroll")  # inside the panel already: the click keeps the controls
            await pilot.pause()
            assert app.focused is panel.query_one("#gen-scroll")

    asyncio.run(run())


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_the_footer_fits_the_width_and_keeps_help(size):
    from lstmtui.tui.widgets.footer import Footer

    app = idle_app()

    async def run():
        async with app.run_test(size=size) as pilot:
            for focus in ("1", "2", "3", "escape"):
                await pilot.press(focus)
                await pilot.pause()
                footer = app.screen.query_one(Footer)
                right = max(w.region.right for w in footer.children)
                assert right <= size[0], (focus, footer_text(app))
                assert "help" in footer_text(app) and "▏" not in footer_text(app)
            await pilot.press("1")
            await pilot.pause()
            text = footer_text(app)
            for label in ("pause", "stop", "save", "new run", "profiles", "quit", "help"):
                assert label in text, text

    asyncio.run(run())


def test_the_docs_name_every_key_id():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "tui.md").read_text(encoding="utf-8")
    assert sorted(i for i in keys.binding_ids() if f"`{i}`" not in text) == []
