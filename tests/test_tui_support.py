"""Helpers shared by the TUI tests (no tests here): a small corpus, a tiny config, waiting in Pilot."""

from __future__ import annotations

import random
from pathlib import Path

from lstmtui.core.config import TrainConfig

WORDS = (
    "the cat sat on a mat while the dog ran to the old red barn and a bird sang in the "
    "tall green tree as rain fell on the quiet town by the river"
).split()


def write_corpus(path: Path, size: int = 20_000, seed: int = 7) -> Path:
    """A ~20 KB text of short sentences from a small vocabulary."""
    rng = random.Random(seed)
    parts, n = [], 0
    while n < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize() + ".\n"
        parts.append(sentence)
        n += len(sentence)
    path.write_text("".join(parts), encoding="utf-8")
    return path


def tiny_config(**overrides) -> TrainConfig:
    """hidden 32, 1 layer, seq 32, batch 8: trains in seconds; 1 thread so parallel tests do not fight."""
    values = dict(
        hidden=32,
        layers=1,
        seq_len=32,
        batch=8,
        epochs=3,
        eval_every=20,
        sample_every=20,
        sample_length=40,
        threads=1,
        warmup_steps=5,
        save_every_min=5.0,
    )
    values.update(overrides)
    return TrainConfig(**values).validate()


async def wait_for(pilot, condition, timeout: float = 60.0, step: float = 0.1) -> bool:
    """Let the app run until condition() holds; False after timeout seconds."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        await pilot.pause(step)
    return condition()
