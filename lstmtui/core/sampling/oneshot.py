"""One-call wrappers around CharGenerator: a sample, samples under several settings, a speed figure."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

import torch

from lstmtui.core.sampling.config import SamplingConfig
from lstmtui.core.sampling.generator import CharGenerator, model_device

# The Keras example's "diversity" display: one prime continued at several temperatures.
DIVERSITY = (0.2, 0.5, 1.0, 1.2)


def sample_text(
    model, vocab, prime: str, length: int, temperature: float, generator: torch.Generator | None = None
) -> str:
    """Continue ``prime`` by ``length`` characters at ``temperature`` (unknown prime chars dropped)."""
    gen = CharGenerator(
        model,
        vocab,
        SamplingConfig(temperature=temperature, length=length),
        device=model_device(model),
        generator=generator,
    )
    gen.prime(prime, drop_unknown=True)
    return gen.generate(length)


def generation_speed(
    model, vocab, prime: str, chars: int = 2000, config: SamplingConfig | None = None
) -> dict[str, float]:
    """Time to the first character (prime included) and characters per second after the prime."""
    gen = CharGenerator(model, vocab, config or SamplingConfig(temperature=0.8, seed=0), device=model_device(model))
    started = time.perf_counter()
    gen.prime(prime, drop_unknown=True)
    primed = time.perf_counter()
    stream = gen.stream(chars)
    n = 1 if next(stream, None) is not None else 0
    first = time.perf_counter()
    n += sum(1 for _ in stream)
    done = time.perf_counter()
    return {
        "prime_s": primed - started,
        "first_char_s": first - started,
        "chars_per_s": n / (done - primed) if done > primed else float("inf"),
        "chars": n,
    }


def _as_config(settings: SamplingConfig | dict | float) -> SamplingConfig:
    """A fresh SamplingConfig from a config (copied), a dict of settings, or a bare temperature."""
    if isinstance(settings, SamplingConfig):
        return replace(settings)
    if isinstance(settings, dict):
        return SamplingConfig.from_dict(settings)
    return SamplingConfig(temperature=float(settings))


def compare(
    model,
    vocab,
    prime: str,
    settings_list: Iterable[SamplingConfig | dict | float] = DIVERSITY,
    *,
    drop_unknown: bool = False,
    length: int | None = None,
) -> list[str]:
    """Continue the same prime under several settings (configs, dicts, or bare temperatures)."""
    out = []
    for settings in settings_list:
        cfg = _as_config(settings)
        if length is not None:
            cfg.length = length
        gen = CharGenerator(model, vocab, cfg, device=model_device(model))
        gen.prime(prime, drop_unknown=drop_unknown)
        out.append(gen.generate())
    return out
