"""`lstmtui profiles list|show|rm|rename|export|import`: manage saved profiles."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lstmtui.commands.common import add_home_option, add_units_option, finite_json
from lstmtui.commands.profile_chart import learning_curve
from lstmtui.core.profile_labels import best_label, corpus_label, epochs_label, parameters_label, time_label
from lstmtui.core.units import format_count, format_size, loss_unit, printable, unit_label

__all__ = ["add_parser", "learning_curve", "run"]  # learning_curve: re-exported, its home is profile_chart
# meta.json keys `profiles show` prints in its own way (or not at all: the name is in the title)
SHOWN_APART = frozenset(
    ("created", "updated", "lstmtui_version", "torch_version", "format_version", "name", "vocab", "history", "model")
    + ("rng", "files", "samples")
)
SAMPLE_LINES = 6  # lines of the newest saved sample `show` prints
# what resumption needs but a user cannot act on: shown with --verbose (and in --json) only
INTERNALS: dict[str, frozenset[str] | None] = {
    "optim_groups": None,  # None: the whole key
    "progress": frozenset(("epoch_step", "steps_per_epoch", "bad_epochs", "base_lr", "lr_scale", "hidden_policy")),
    "corpus": frozenset(("sha256", "file_sha256")),
}
COLUMNS = (
    ("name", "left"),
    ("corpus", "left"),
    ("parameters", "right"),
    ("epochs", "right"),
    ("best val", "right"),  # in the unit of --units, named in the heading
    ("updated", "left"),
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `profiles` and its actions."""
    parser = subparsers.add_parser(
        "profiles",
        help="list, show, remove, rename, export and import saved profiles",
        description="Manage saved profiles (trained models). Without an action, list them.",
    )
    add_home_option(parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        # Its own dest: a subparser's default would otherwise overwrite a --home given before ACTION.
        sub.add_argument(
            "--home",
            dest="action_home",
            metavar="HOME",
            type=Path,
            default=None,
            help="profile directory root (default: $LSTMTUI_HOME or the platform's user data directory)",
        )
        return sub

    p = action("list", "list the profiles as a table")
    p.add_argument("--json", action="store_true", help="print one JSON object per profile instead (for scripts)")
    add_units_option(p)
    p.set_defaults(parser=p)  # its own parser: errors about --units name the option
    p = action("show", "show what a profile holds, with its learning curve")
    add_units_option(p)
    p.set_defaults(parser=p)
    p.add_argument("name", help="profile name")
    p.add_argument("--json", action="store_true", help="print the raw metadata as JSON (default: readable text)")
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show what resumption keeps (optimizer groups, RNG states, schedule counters, hashes)",
    )
    p = action("rm", "remove a profile")
    p.add_argument("name", help="profile name")
    p.add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation (needed when stdin is not a terminal)"
    )
    p = action("rename", "rename a profile")
    p.add_argument("old", help="current name")
    p.add_argument("new", help="new name")
    p = action("export", "write a profile to one portable file another machine can import")
    p.add_argument("name", help="profile name")
    p.add_argument("file", type=Path, help="file to write (a tar archive; with --format onnx, NAME.onnx)")
    p.add_argument(
        "--format",
        choices=("archive", "onnx"),
        default="archive",
        help="archive: the whole profile, for `profiles import` (default); onnx: the model as ONNX graphs "
        "with explicit LSTM state, NAME.step.onnx and NAME.json written beside FILE (needs lstmtui[onnx])",
    )
    p = action("import", "add a profile from a file written by `profiles export`")
    p.add_argument("file", type=Path, help="file written by `lstmtui profiles export`")
    p.add_argument("--name", help="store it under this name (default: the name it was exported with)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Carry out one profiles action."""
    from lstmtui.core.profiles import ProfileStore

    store = ProfileStore(getattr(args, "action_home", None) or args.home)
    action = args.action or "list"
    unit = loss_unit(getattr(args, "units", None))
    if action == "list":
        return _list_json(store) if getattr(args, "json", False) else _list(store, unit)
    if action == "show":
        return _show(store, args.name, args.json, args.verbose, unit)
    if action == "rm":
        return _remove(store, args.name, args.yes)
    if action == "rename":
        store.rename(args.old, args.new)
        print(f"renamed profile {args.old} to {args.new}")
        return 0
    if action == "export" and args.format == "onnx":
        from lstmtui.core.onnx_export import export_profile

        print(export_profile(store, args.name, args.file).summary())
        return 0
    if action == "export":
        path = store.export(args.name, args.file)
        print(f"exported profile {args.name} to {path} ({format_size(path.stat().st_size)})")
        return 0
    if action == "import":
        name = store.import_(args.file, args.name)
        print(f"imported {args.file} as profile {name}")
        return 0
    raise AssertionError(action)


# ----- list -----


def _list(store, unit: str = "bits") -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    infos = store.list()
    if not infos:
        print(f"no profiles in {store.root}")
        return 0
    table = Table(title=f"profiles in {store.root}", title_justify="left")
    for column, justify in COLUMNS:
        heading = f"{column} ({unit_label(unit)})" if column == "best val" else column
        table.add_column(heading, justify=justify, overflow="fold")
    for info in infos:
        if info.meta is None:
            table.add_row(Text(info.name), Text(printable(info.error or "unreadable"), style="red"), "", "", "", "")
            continue
        meta = info.meta
        table.add_row(
            Text(info.name),
            Text(corpus_label(meta)),
            Text(parameters_label(meta)),
            Text(epochs_label(meta)),
            Text(best_label(meta, unit)),
            Text(time_label(meta.updated)),
        )
    # Off a terminal, rich would squeeze the table into 80 columns; scripts want whole names.
    console = Console() if sys.stdout.isatty() else Console(width=200, no_color=True)
    console.print(table)
    return 0


def _list_json(store) -> int:
    for info in store.list():
        row: dict[str, Any] = {"name": info.name, "error": info.error}
        if info.meta is not None:
            meta = info.meta
            row.update(
                corpus=list(meta.corpus.paths) if meta.corpus is not None else None,
                layers=meta.model.layers,
                hidden=meta.model.hidden,
                parameters=meta.model.parameter_count(),
                epoch=meta.progress.epoch,
                epochs=meta.train_config.epochs if meta.train_config is not None else None,
                step=meta.progress.step,
                best_val_bpc=meta.best_bpc(),
                updated=meta.updated,
            )
        print(json.dumps(finite_json(row), ensure_ascii=True, allow_nan=False))
    return 0


# ----- show -----


def _show(store, name: str, as_json: bool, verbose: bool = False, unit: str = "bits") -> int:
    meta = store.load_meta(name)
    data = meta.to_json()
    if as_json:
        print(json.dumps(finite_json(data), indent=2, ensure_ascii=True, allow_nan=False))
        return 0
    lines = [f"profile {name}  ({store.path(name)})"]
    for key in ("created", "updated", "lstmtui_version", "torch_version") + (("format_version",) if verbose else ()):
        if key in data:
            lines.append(f"  {key}: {_value(data[key])}")
    config = meta.model
    lines.append(
        f"model: {config.layers} layers x {config.hidden} hidden, input {config.input}"
        + (f" ({config.embedding_dim} wide)" if config.input == "embedding" else "")
        + f", dropout {config.dropout}, {format_count(config.parameter_count(), digits=2)} parameters"
    )
    vocab = meta.vocab
    lines.append(f"vocabulary: {len(vocab)} symbols: {printable(''.join(vocab))[:200]}")
    best = best_label(meta, unit, digits=4)
    if best != "-":
        kind = "full split" if meta.best_bpc() is not None else "estimate: the run ended before a full-split check"
        lines.append(f"best validation: {best} {unit_label(unit)} ({kind})")
    for key, value in _generic_keys(data, verbose):
        lines.extend(_render(key, value, 0))
    if verbose:
        rng = [k for k in ("python", "numpy") if getattr(meta.rng, k) is not None]
        lines.append(f"rng: saved states for {', '.join(rng) or 'nothing'}")
    lines.extend(_newest_sample(data.get("samples")))
    lines.append("files:")
    for group, entry in meta.files.items():
        lines.append(f"  {group}: {format_size(entry.size)}" + (f"  sha256 {entry.sha256[:16]}..." if verbose else ""))
    lines.append("")
    lines.extend(learning_curve(meta.history, unit=unit))
    print("\n".join(lines))
    return 0


def _newest_sample(samples: Any) -> list[str]:
    """The newest training sample the profile keeps, a few lines of it, or nothing."""
    if not isinstance(samples, list) or not samples or not isinstance(samples[-1], dict):
        return []
    newest = samples[-1]
    text = str(newest.get("text", "")).splitlines() or [""]
    out = [f"newest sample (step {_value(newest.get('step'))}, {len(samples)} kept):"]
    out += [f"  {printable(line)[:120]}" for line in text[:SAMPLE_LINES]]
    return out + (["  ..."] if len(text) > SAMPLE_LINES else [])


def _generic_keys(data: dict[str, Any], verbose: bool) -> list[tuple[str, Any]]:
    """The metadata `show` prints as key: value lines; without ``verbose``, the internals left out."""
    out = []
    for key, value in data.items():
        if key in SHOWN_APART:
            continue
        if not verbose and key in INTERNALS:
            inner = INTERNALS[key]
            if inner is None or not isinstance(value, dict):
                continue
            value = {k: v for k, v in value.items() if k not in inner}
        out.append((key, value))
    return out


def _render(key: str, value: Any, depth: int) -> list[str]:
    pad = "  " * depth
    if isinstance(value, dict):
        if not value:
            return [f"{pad}{printable(str(key))}: {{}}"]
        out = [f"{pad}{printable(str(key))}:"]
        if depth >= 4:
            return [f"{pad}{printable(str(key))}: {{{len(value)} keys}}"]
        for k, v in value.items():
            out.extend(_render(k, v, depth + 1))
        return out
    return [f"{pad}{printable(str(key))}: {_value(value)}"]


def _value(value: Any) -> str:
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} items]"
    if isinstance(value, str):
        return printable(value)
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = "?"
    return text if len(text) <= 200 else text[:197] + "..."


# ----- rm -----


def _remove(store, name: str, yes: bool) -> int:
    from lstmtui.core.errors import ProfileError

    if not store.exists(name):
        raise ProfileError(f"no profile named {name} in {store.root}")
    if not yes:
        if not sys.stdin.isatty():
            raise ProfileError(f"not removing profile {name} without confirmation: stdin is not a terminal; add --yes")
        answer = input(f"remove profile {name} ({store.path(name)})? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("kept")
            return 1
    store.remove(name)
    print(f"removed profile {name}")
    return 0
