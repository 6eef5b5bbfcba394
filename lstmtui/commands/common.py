"""Options shared by every command that takes them, with one name and one meaning everywhere."""

from __future__ import annotations

import argparse
import json
import math
import numbers
from pathlib import Path
from typing import Any

from lstmtui.core.config import INPUT_MODES, PRECISIONS, TrainConfig
from lstmtui.core.errors import ConfigError, LstmtuiError
from lstmtui.core.units import parse_duration

D = TrainConfig()

# options whose dest differs from the TrainConfig field they set
DEST_FIELDS = {"early_stop": "early_stop_patience", "save_every": "save_every_min", "time_budget": "time_budget_s"}
FIELD_DESTS = {field: dest for dest, field in DEST_FIELDS.items()}


def duration(text: str) -> float:
    """An argparse type: '90', '90s', '15m', '1.5h' as seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def option_for(parser: argparse.ArgumentParser | None, field: str) -> str | None:
    """The long option of ``parser`` that sets a config field ('seq_len' -> '--seq-len'), or None."""
    if parser is None:
        return None
    dest = FIELD_DESTS.get(field, field)
    for action in parser._actions:  # argparse has no public lookup by dest
        if action.dest == dest and action.option_strings:
            return max(action.option_strings, key=len)
    return None


def error_line(exc: LstmtuiError, parser: argparse.ArgumentParser | None) -> str:
    """An error as the CLI shows it: an error that names a setting gets the option that sets it in front."""
    flag = option_for(parser, exc.field) if exc.field else None
    return f"{flag}: {exc}" if flag else str(exc)


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) replaced by None, in dicts, lists and tuples too."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # float, numpy floats
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def json_line(value: Any) -> str:
    """One line of strict JSON (RFC 8259: no NaN or Infinity tokens; non-finite numbers are null)."""
    return json.dumps(finite_json(value), allow_nan=False, default=str)


def add_home_option(parser: argparse.ArgumentParser) -> None:
    """--home: where profiles live (default: LSTMTUI_HOME or the user data directory)."""
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="profile directory root (default: $LSTMTUI_HOME or the platform's user data directory)",
    )


def add_units_option(parser: argparse.ArgumentParser) -> None:
    """--units: the unit losses are shown in (default: $LSTMTUI_UNITS or bits)."""
    parser.add_argument(
        "--units",
        metavar="bits|nats",
        help="show losses in bits or nats per character (default: $LSTMTUI_UNITS, else bits)",
    )


def add_corpus_options(parser: argparse.ArgumentParser) -> None:
    """Options for reading and cleaning the corpus."""
    g = parser.add_argument_group("corpus")
    g.add_argument(
        "--encoding",
        default="utf-8",
        help="text encoding of the corpus (a Python codec name such as latin-1 or utf-16), or auto to detect it "
        "from the first 1 MB of each file (default: utf-8)",
    )
    g.add_argument("--no-nfc", action="store_true", help="skip Unicode NFC normalisation (default: normalise)")
    g.add_argument("--lowercase", action="store_true", help="lowercase the corpus (default: off)")
    g.add_argument(
        "--min-char-count",
        type=int,
        default=0,
        help="map characters seen fewer times than this to one unknown symbol (default: 0, off)",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=D.val_fraction,
        help=f"share of the corpus (its tail) held out for validation (default: {D.val_fraction})",
    )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Model and optimisation options, shared by `train`, the TUI and `bench`."""
    g = parser.add_argument_group("model")
    g.add_argument("--hidden", type=int, default=D.hidden, help=f"LSTM hidden units per layer (default: {D.hidden})")
    g.add_argument("--layers", type=int, default=D.layers, help=f"stacked LSTM layers (default: {D.layers})")
    g.add_argument(
        "--dropout",
        type=float,
        default=D.dropout,
        help=f"dropout between layers and before the head (default: {D.dropout})",
    )
    g.add_argument("--input", choices=INPUT_MODES, default=D.input, help=f"input encoding (default: {D.input})")
    g.add_argument(
        "--embedding-dim",
        type=int,
        default=D.embedding_dim,
        help=f"embedding width for --input embedding (default: {D.embedding_dim})",
    )
    g = parser.add_argument_group("training")
    g.add_argument(
        "--seq-len",
        type=int,
        default=D.seq_len,
        help=f"characters per stream per step (truncated BPTT length) (default: {D.seq_len})",
    )
    g.add_argument("--batch", type=int, default=D.batch, help=f"parallel streams per step (default: {D.batch})")
    g.add_argument("--epochs", type=int, default=D.epochs, help=f"passes over the training split (default: {D.epochs})")
    g.add_argument("--lr", type=float, default=D.lr, help=f"peak Adam learning rate (default: {D.lr})")
    g.add_argument(
        "--min-lr-ratio",
        type=float,
        default=D.min_lr_ratio,
        help=f"final learning rate as a share of the peak after cosine decay (default: {D.min_lr_ratio})",
    )
    g.add_argument(
        "--warmup-steps",
        type=int,
        default=D.warmup_steps,
        help=f"linear learning-rate warm-up steps (default: {D.warmup_steps})",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        default=D.weight_decay,
        help="decoupled (AdamW) weight decay; --time-budget sets 0.1 when the budget allows "
        f"4+ passes over the corpus (default: {D.weight_decay:g})",
    )
    g.add_argument(
        "--grad-clip",
        type=float,
        default=D.grad_clip,
        help=f"clip the gradient norm to this, 0 for off (default: {D.grad_clip})",
    )
    g.add_argument("--seed", type=int, default=D.seed, help=f"random seed; full determinism on CPU (default: {D.seed})")
    g.add_argument("--device", default=D.device, help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    g.add_argument(
        "--threads", type=int, default=D.threads, help="torch CPU threads, 0 for torch's choice (default: 0)"
    )
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=D.precision,
        help="training arithmetic: fp32, or bf16 autocast (faster where the CPU has AVX512-BF16 "
        "or AMX); --time-budget picks the faster (default: fp32)",
    )
    g.add_argument(
        "--max-steps", type=int, default=D.max_steps, help="stop after this many steps, 0 for no limit (default: 0)"
    )
    g.add_argument(
        "--time-budget",
        type=duration,
        default=D.time_budget_s,
        metavar="DURATION",
        help="fit training into this wall time, e.g. 15m (default: off)",
    )
    g = parser.add_argument_group("monitoring")
    g.add_argument(
        "--eval-every",
        type=int,
        default=D.eval_every,
        help=f"validate every N steps besides each epoch end, 0 for epoch ends only (default: {D.eval_every})",
    )
    g.add_argument(
        "--eval-max-chars",
        type=int,
        default=D.eval_max_chars,
        help="validation characters a check between epoch ends scores, in windows spread over the split "
        f"(an estimate of the full split); epoch ends and the finish read all of it (default: {D.eval_max_chars})",
    )
    g.add_argument(
        "--sample-every",
        type=int,
        default=D.sample_every,
        help=f"print a sample every N steps, 0 for epoch ends only (default: {D.sample_every})",
    )
    g.add_argument(
        "--sample-length", type=int, default=D.sample_length, help=f"characters per sample (default: {D.sample_length})"
    )
    g.add_argument(
        "--sample-temperature",
        type=float,
        default=D.sample_temperature,
        help=f"temperature of training samples (default: {D.sample_temperature})",
    )
    g.add_argument(
        "--early-stop",
        type=int,
        default=D.early_stop_patience,
        metavar="EPOCHS",
        help="stop after this many epochs without a better validation loss, 0 for off (default: 0)",
    )
    g.add_argument(
        "--save-every",
        type=float,
        default=D.save_every_min,
        metavar="MINUTES",
        help=f"also save the profile every N minutes (default: {D.save_every_min})",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build and validate a TrainConfig from parsed options."""
    config = TrainConfig(
        hidden=args.hidden,
        layers=args.layers,
        dropout=args.dropout,
        input=args.input,
        embedding_dim=args.embedding_dim,
        seq_len=args.seq_len,
        batch=args.batch,
        epochs=args.epochs,
        lr=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        seed=args.seed,
        val_fraction=args.val_fraction,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        eval_every=args.eval_every,
        eval_max_chars=args.eval_max_chars,
        sample_every=args.sample_every,
        sample_length=args.sample_length,
        sample_temperature=args.sample_temperature,
        early_stop_patience=args.early_stop,
        save_every_min=args.save_every,
        max_steps=args.max_steps,
        time_budget_s=args.time_budget,
    )
    if args.min_char_count < 0:
        raise ConfigError(f"minimum character count must be 0 or more, not {args.min_char_count}", "min_char_count")
    return config.validate()


def explicit_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The dest names of options the user actually typed (to tell overrides from defaults)."""
    typed = set()
    for action in parser._actions:  # argparse keeps no public record of what was typed
        for opt in action.option_strings:
            if any(a == opt or a.startswith(opt + "=") for a in argv):
                typed.add(action.dest)
    return typed


def cleaning_from_args(args: argparse.Namespace):
    """CleaningOptions from the corpus options."""
    from lstmtui.core.corpus import CleaningOptions

    return CleaningOptions(
        encoding=args.encoding,
        nfc=not args.no_nfc,
        lowercase=args.lowercase,
        min_char_count=args.min_char_count,
    )


def overrides_from_args(args: argparse.Namespace) -> dict:
    """The training settings the user typed, which override a continued profile's saved ones."""
    parser = getattr(args, "parser", None)
    argv = getattr(args, "argv", None)
    if parser is None or argv is None:
        return {}
    config = config_from_args(args).to_dict()
    typed = explicit_options(parser, list(argv))
    fields = {DEST_FIELDS.get(dest, dest) for dest in typed}
    return {field: config[field] for field in fields if field in config}
