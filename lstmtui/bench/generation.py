"""Generation speed: chars/s and the time to the first character after a 1 KB prime, per model."""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM

FIRST_CHAR_REPEATS = 5  # first-character timings per model, median reported (a prime is ~30 ms)
CHARS_PER_S_TARGET = 5000
FIRST_CHAR_TARGET_S = 0.030


def generation_section(
    models: list[tuple[str, Any]],
    vocab,
    prime: str,
    chars: int = 2000,
    log: Log = quiet,
    repeats: int = FIRST_CHAR_REPEATS,
) -> list[dict]:
    """Chars/s and time to the first character after a 1 KB prime, per model.

    The first character is the median of ``repeats`` primes after one of the same length: oneDNN
    builds its LSTM kernel for a sequence length on first use (about 15 ms for 1,024 steps), once per
    length and process, so later generations in a session wait only for the prime itself. That
    first, cold prime is reported in the detail column.
    """
    from lstmtui.core.sampling import generation_speed

    rows = []
    for i, (name, model) in enumerate(models):
        log(f"generation: {name}")
        generation_speed(model, vocab, prime[:64], chars=50)  # warm-up: first-call allocations
        cold = generation_speed(model, vocab, prime, chars=50)["first_char_s"]
        first = statistics.median(
            generation_speed(model, vocab, prime, chars=20)["first_char_s"] for _ in range(repeats)
        )
        res = generation_speed(model, vocab, prime, chars=chars)
        default = i == 0  # the targets are the default model's
        rows.append(
            row(
                "generation",
                f"{name} chars/s",
                res["chars_per_s"],
                "chars/s",
                f"{res['chars']} chars",
                f">= {CHARS_PER_S_TARGET}" if default else "",
                (res["chars_per_s"] >= CHARS_PER_S_TARGET) if default else None,
            )
        )
        rows.append(
            row(
                "generation",
                f"{name} first char",
                first * 1000,
                "ms",
                f"{len(prime)}-char prime, median of {repeats}; the process's first prime of this length "
                f"{cold * 1000:.1f} ms",
                f"<= {FIRST_CHAR_TARGET_S * 1000:g}" if default else "",
                (first <= FIRST_CHAR_TARGET_S) if default else None,
            )
        )
    return rows


def generation_models(default: ModelConfig, trained, hiddens: tuple[int, ...], minutes: float) -> list[tuple[str, Any]]:
    """The models the generation section times: the default architecture first (its row has the
    targets), the quality run's model when --time-budget chose another size, then 2x the largest."""
    same = trained is not None and _shape(trained.config) == _shape(default)
    models = [("default model", trained if same else CharLSTM(default).eval())]
    if trained is not None and not same:
        # its weights are trained, but the speed is the shape's
        models.append((f"{minutes:g}-min plan's {trained.config.layers}x{trained.config.hidden}", trained))
    models.append((f"2x{max(hiddens)}", CharLSTM(replace(default, hidden=max(hiddens), layers=2)).eval()))
    return models


def _shape(config: ModelConfig) -> tuple:
    """What a model's speed depends on: its architecture, not its dropout or weights."""
    return (config.vocab_size, config.hidden, config.layers, config.input, config.embedding_dim)
