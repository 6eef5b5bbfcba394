"""The key table: every key of the app, defined once, with the id a keys.toml remaps it by.

The App, the panels and the screens take their ``BINDINGS`` from here; the help screen and the
command palette are built from the same table, so what they list is what is bound.

Scopes carry the rule that text typed into a text field is text: a binding on the App or on a
panel is not priority, so Textual gives printable keys to a focused Input first and the binding
never sees them. Only keys no text field consumes (ctrl+..., function keys) may be priority; the
table test and the keys.toml loader keep it so. The exception is STAND_ASIDE: the keys that move
the focus (1, 2, 3, i) are priority, so that keys arriving in the same burst (a fast typist, a
paste, an SSH packet) already go where they moved the focus, and their node's check_action turns
them off while a text field has the focus, so there they are text like any other key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from textual.binding import Binding
from textual.keys import key_to_character

Keymap = Mapping[str, str]  # binding id -> Textual key string ("ctrl+o,f2"), as App.set_keymap takes it


def _key(
    key: str,
    action: str,
    label: str,
    does: str,
    id: str,
    *,
    show: bool = True,
    display: str | None = None,
    priority: bool = False,
    group: Binding.Group | None = None,
) -> Binding:
    """A Binding whose ``tooltip`` says what the key does in full (the help screen and palette text).

    Neighbouring bindings of one ``group`` share a line of the help screen, under the group's description.
    """
    return Binding(
        key, action, label, show=show, key_display=display, priority=priority, tooltip=does, id=id, group=group
    )


_FOCUS = Binding.Group("focus: training, samples, seed")
_TEMPERATURE = Binding.Group("temperature ± 0.1")
_TOP_K = Binding.Group("top-k smaller / larger")
_TOP_P = Binding.Group("top-p − / + 0.05")
_LENGTH = Binding.Group("length − / + 100")

# Bound on the App: they work on every screen that does not bind the key itself.
APP: tuple[Binding, ...] = (
    _key("p", "app.pause", "pause", "pause / resume / train on", "pause", show=False),
    _key("x", "app.stop_training", "stop", "stop training (saves)", "stop-training", show=False),
    _key("s", "app.save", "save", "save the profile now", "save", show=False),
    _key("d", "app.detach", "detach", "detach: the run trains on (lstmtui attach)", "detach", show=False),
    _key("g", "app.sample_now", "sample", "the run writes a sample now", "sample-now", show=False),
    _key("l", "app.set_lr", "lr", "set the learning rate", "set-lr", show=False),
    _key("u", "app.toggle_units", "units", "losses in bits / nats per character", "units", show=False),
    _key("n", "app.new_run", "new run", "new training run (a form)", "new-run", show=False),
    _key("o,f2", "app.profiles", "profiles", "profiles: open, rename, delete", "profiles", show=False),
    _key(
        "1",
        "app.focus_panel('training')",
        "training",
        "focus the training panel",
        "focus-training",
        show=False,
        priority=True,
        group=_FOCUS,
    ),
    _key(
        "2",
        "app.focus_panel('samples')",
        "samples",
        "focus the samples",
        "focus-samples",
        show=False,
        priority=True,
        group=_FOCUS,
    ),
    _key(
        "3",
        "app.focus_panel('generation')",
        "generation",
        "type a seed (the generation panel)",
        "focus-generation",
        show=False,
        priority=True,
        group=_FOCUS,
    ),
    _key(
        "ctrl+p",
        "app.command_palette",
        "palette",
        "command palette (every action)",
        "command-palette",
        show=False,
        priority=True,
    ),
    _key("q", "app.quit", "quit", "quit (saves; asks if training)", "quit"),
    _key("ctrl+q", "app.quit", "quit", "quit (saves; asks if training)", "quit-anywhere", show=False, priority=True),
    _key("question_mark,f1", "app.help", "help", "show every key", "help", display="?"),
    _key("ctrl+c", "app.quit_now", "save & quit", "save and quit at once", "save-and-quit", show=False, priority=True),
)

# Priority keys that type a character: their node's check_action turns them off while a text field
# has the focus (see the module docstring).
STAND_ASIDE: frozenset[str] = frozenset({"focus-training", "focus-samples", "focus-generation", "seed"})

# Bound on the main screen, replacing Textual's own Screen bindings of the same keys.
MAIN_SCREEN: tuple[Binding, ...] = (
    _key("tab", "app.focus_next", "next", "move between panels", "next-panel", show=False),
    _key("shift+tab", "app.focus_previous", "previous", "move between panels", "previous-panel", show=False),
)

# The training panel shows these App keys in the footer while it has the focus.
TRAINING_PANEL: tuple[Binding, ...] = tuple(
    replace(b, show=True) for b in APP if b.id in ("pause", "stop-training", "save", "new-run", "profiles")
)

# Bound on the generation panel, so they act while the focus is anywhere in it; while its seed box
# has the focus the printable ones are the box's text (see the module docstring).
GENERATION: tuple[Binding, ...] = (
    _key("space", "toggle", "stop/go", "stop generating / continue", "generation-toggle"),
    _key(
        "plus,equals_sign",
        "temperature(0.1)",
        "T+",
        "temperature + 0.1",
        "temperature-up",
        display="+",
        group=_TEMPERATURE,
    ),
    _key("minus", "temperature(-0.1)", "T-", "temperature − 0.1", "temperature-down", display="-", group=_TEMPERATURE),
    _key("m", "method", "method", "next method (temperature, top-k, top-p, greedy, beam)", "generation-method"),
    _key("k", "top_k(-1)", "k-", "top-k smaller", "top-k-smaller", show=False, group=_TOP_K),
    _key("K", "top_k(1)", "k+", "top-k larger", "top-k-larger", show=False, group=_TOP_K),
    _key("left_square_bracket", "top_p(-0.05)", "p-", "top-p − 0.05", "top-p-smaller", show=False, group=_TOP_P),
    _key("right_square_bracket", "top_p(0.05)", "p+", "top-p + 0.05", "top-p-larger", show=False, group=_TOP_P),
    _key("comma", "length(-1)", "len-", "length − 100", "length-shorter", show=False, group=_LENGTH),
    _key("full_stop", "length(1)", "len+", "length + 100", "length-longer", show=False, group=_LENGTH),
    _key("w", "save_output", "write", "write the output to a file", "write-output"),
    _key("i", "focus_seed", "seed", "back to the seed box", "seed", priority=True),
    _key("escape", "stop", "stop", "stop generating", "generation-stop", show=False),
)

# Bound on the seed box: the box takes every key that types a character, so these type none.
SEED: tuple[Binding, ...] = (
    _key("enter", "submit", "generate", "generate from the seed", "generate"),
    _key("escape", "controls", "controls", "to the generation keys (or tab)", "seed-leave"),
)

# Bound on the samples log, replacing the scroll bindings it inherits.
SAMPLES: tuple[Binding, ...] = (
    _key("up", "scroll_up", "up", "scroll the samples", "samples-up", show=False, display="↑"),
    _key("down", "scroll_down", "down", "scroll the samples", "samples-down", show=False, display="↓"),
    _key("pageup", "page_up", "page up", "scroll the samples", "samples-page-up", show=False, display="pgup"),
    _key("pagedown", "page_down", "page down", "scroll the samples", "samples-page-down", show=False, display="pgdn"),
)

PROFILES: tuple[Binding, ...] = (
    _key("enter", "open", "open", "open the selected profile", "profiles-open", priority=True),
    _key("r", "rename", "rename", "rename the selected profile", "profiles-rename"),
    _key("d,delete", "delete", "delete", "delete it (asks first)", "profiles-delete"),
    _key("escape,q", "close", "back", "back to training", "profiles-back"),
)

_ANSWER = Binding.Group("answer yes / no")
CONFIRM: tuple[Binding, ...] = (
    _key("y", "answer(True)", "yes", "answer yes", "confirm-yes", group=_ANSWER),
    _key("n,escape", "answer(False)", "no", "answer no", "confirm-no", group=_ANSWER),
)
PROMPT: tuple[Binding, ...] = (_key("escape", "cancel", "cancel", "cancel the dialog", "prompt-cancel"),)
NEW_RUN_FORM: tuple[Binding, ...] = (
    _key("escape", "cancel", "cancel", "cancel the dialog", "form-cancel"),
    _key("ctrl+s", "start", "start", "start the new run", "form-start"),
)
HELP_SCREEN: tuple[Binding, ...] = (
    _key("escape,q,question_mark,f1", "dismiss_help", "close", "close the key list", "help-close"),
)


@dataclass(frozen=True)
class Section:
    """The keys of one place in the app, as the help screen lists them."""

    where: str
    bindings: tuple[Binding, ...]
    in_palette: bool = False  # whether the command palette offers its actions


SECTIONS: tuple[Section, ...] = (
    Section("anywhere", APP + MAIN_SCREEN, in_palette=True),
    Section("generation", GENERATION, in_palette=True),
    Section("seed box", SEED),
    Section("samples", SAMPLES),
    Section("profiles", PROFILES),
    Section("dialogs", CONFIRM + PROMPT + NEW_RUN_FORM + HELP_SCREEN),
)


def every_binding() -> Iterable[Binding]:
    """Every binding of the table once (the training panel's are the App's)."""
    for section in SECTIONS:
        yield from section.bindings


def binding_ids() -> frozenset[str]:
    """The ids a keys.toml may remap."""
    return frozenset(b.id for b in every_binding() if b.id)


def by_id(binding_id: str) -> Binding:
    """The table's binding with this id (KeyError when none)."""
    for binding in every_binding():
        if binding.id == binding_id:
            return binding
    raise KeyError(binding_id)


# Key names Textual gives typed characters but does not map back with key_to_character.
_TYPED_NAMES = {"plus": "+", "minus": "-", "slash": "/", "at": "@", "backslash": "\\", "underscore": "_"}


def typed_character(key: str) -> str | None:
    """The character a key types, or None for a key that types none (ctrl+..., f1, escape)."""
    character = _TYPED_NAMES.get(key) or key_to_character(key)
    return character if character is not None and character.isprintable() else None


def is_printable(key: str) -> bool:
    """Whether a key types a character, so that a focused text field takes it (as Textual's Input does)."""
    return typed_character(key) is not None


def current_keys(binding: Binding, keymap: Keymap) -> list[str]:
    """The keys that trigger a binding now: the keymap's when it remaps the binding's id."""
    keys = keymap.get(binding.id or "", binding.key)
    return [k.strip() for k in keys.split(",") if k.strip()]


def key_display(binding: Binding, key: str) -> str:
    """How the help screen and palette write one key of a binding: its own display for its first key."""
    first = binding.key.split(",")[0].strip()
    if binding.key_display and key == first:
        return binding.key_display
    return _format_key(key)


def keys_label(binding: Binding, keymap: Keymap) -> str:
    """All keys of a binding as the help screen writes them ("o / f2")."""
    return " / ".join(key_display(binding, k) for k in current_keys(binding, keymap))


@dataclass(frozen=True)
class HelpRow:
    """One line of the help screen: where, which keys, what they do."""

    where: str
    keys: str
    does: str
    ids: tuple[str, ...]


def help_rows(keymap: Keymap) -> list[HelpRow]:
    """The help screen's lines: one a binding; neighbours that do the same thing, or are of one group, share one."""
    rows: list[HelpRow] = []
    last_group: Binding.Group | None = None
    for section in SECTIONS:
        for binding in section.bindings:
            label = keys_label(binding, keymap)
            last = rows[-1] if rows else None
            grouped = binding.group is not None and binding.group == last_group
            if last is not None and last.where == section.where and (grouped or last.does == binding.tooltip):
                keys = last.keys if label in last.keys.split(" / ") else f"{last.keys} / {label}"
                rows[-1] = replace(last, keys=keys, ids=(*last.ids, binding.id or ""))
            else:
                does = binding.group.description if binding.group is not None else binding.tooltip
                rows.append(HelpRow(section.where, label, does, (binding.id or "",)))
            last_group = binding.group
    return rows


@dataclass(frozen=True)
class PaletteEntry:
    """A command the palette offers: the table's text for a key, the action it runs, and where."""

    title: str
    keys: str
    action: str
    where: str


def palette_entries(keymap: Keymap) -> list[PaletteEntry]:
    """One palette command per action of the sections the palette offers (the palette's own key aside)."""
    entries: list[PaletteEntry] = []
    seen: dict[str, int] = {}
    for section in SECTIONS:
        if not section.in_palette:
            continue
        for binding in section.bindings:
            if binding.action in ("app.command_palette", "app.focus_next", "app.focus_previous"):
                continue
            label = keys_label(binding, keymap)
            if binding.action in seen:  # q and ctrl+q: one command, both keys
                i = seen[binding.action]
                entries[i] = replace(entries[i], keys=f"{entries[i].keys} / {label}")
                continue
            seen[binding.action] = len(entries)
            title = binding.tooltip[:1].upper() + binding.tooltip[1:]
            entries.append(PaletteEntry(title, label, binding.action, section.where))
    return entries


_KEY_NAMES = {
    "space": "space",
    "escape": "esc",
    "enter": "enter",
    "delete": "del",
    "pageup": "pgup",
    "pagedown": "pgdn",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
}


def _format_key(key: str) -> str:
    """ "ctrl+p" -> "ctrl+p", "question_mark" -> "?", "f2" -> "f2": what a user types, in lowercase words."""
    *modifiers, name = key.split("+")
    text = _KEY_NAMES.get(name) or typed_character(name) or name
    return "+".join([*modifiers, text])
