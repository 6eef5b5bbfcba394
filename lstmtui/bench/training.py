"""Training throughput: chars/s of the real training loop, and its share of the matmul ceiling."""

from __future__ import annotations

import time
from dataclasses import replace
from itertools import pairwise
from typing import Any

from lstmtui.bench.ceiling import gemm_ceiling
from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import TrainConfig
from lstmtui.core.device import pick_device
from lstmtui.core.model import flops_per_char
from lstmtui.core.precision import bf16_native

CEILING_SHARE = 0.85  # the target share of the ceiling for models of 2x256 and up


def training_throughput(
    corpus, config: TrainConfig, warmup: int = 2, steps: int = 4, max_seconds: float = 45.0
) -> dict[str, Any]:
    """Chars/s of the real TrainingSession loop: ``steps`` timed steps after ``warmup`` ones.

    A slow model stops after ``max_seconds`` of timed steps, once at least 2 are timed.
    """
    from lstmtui.core.corpus import Corpus
    from lstmtui.core.events import StepEvent
    from lstmtui.core.training import TrainingSession

    total = warmup + steps
    cfg = replace(
        config,
        epochs=10**6,
        max_steps=total,
        eval_every=0,
        sample_every=0,
        sample_length=0,
        save_every_min=0.0,
        time_budget_s=0.0,
        val_fraction=0.1,
        warmup_steps=min(config.warmup_steps, 1),
    )
    need = config.batch * (config.seq_len * (total + 1) + 1)
    n = min(len(corpus), int(need / 0.9) + 64)
    small = Corpus(data=corpus.data[:n], vocab=corpus.vocab, provenance=dict(corpus.provenance))
    session = TrainingSession(config=cfg, corpus=small)
    stamps: list[tuple[int, float]] = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            stamps.append((event.step, time.perf_counter()))
            if len(stamps) >= warmup + 2 and stamps[-1][1] - stamps[max(0, warmup - 1)][1] > max_seconds:
                session.stop()  # a slow model on a busy machine: enough steps to take the best of

    session.subscribe(on_event)
    result = session.run()
    if len(stamps) <= warmup:
        raise RuntimeError(f"throughput run ended early: {getattr(result, 'message', result)}")
    # Chars per step are constant unless the epoch's last window is short; count what was fed.
    timed = stamps[warmup - 1 :] if warmup > 0 else stamps
    # Step to step, so the loop's own per-step work (events, LR, batching) is counted.
    gaps = [b[1] - a[1] for a, b in pairwise(timed)]
    per_step = config.batch * min(config.seq_len, session.setup.batcher.stream_len)
    best = min(gaps)
    mean = sum(gaps) / len(gaps)
    if session.setup.device.type == "cuda":  # steps are read back in runs of several: time them together
        best = mean = (timed[-1][1] - timed[0][1]) / max(1, len(gaps))
    mc = cfg.model_config(len(corpus.vocab))
    # Best step, like the best-of matmul ceiling: on a shared machine the mean measures the neighbours.
    cps = per_step / best
    return {
        "chars_per_s": cps,
        "gflops": cps * flops_per_char(mc) / 1e9,
        "step_s": best,
        "mean_chars_per_s": per_step / mean,
        "model": mc,
        "steps": len(gaps),
    }


def throughput_configs(default: TrainConfig, hiddens: tuple[int, ...] = (256, 512)) -> list[tuple[str, TrainConfig]]:
    """The default model, then 2x256 and 2x512 with both input encodings."""
    out = [(f"default ({default.layers}x{default.hidden} {default.input})", default)]
    for hidden in hiddens:
        for inp in ("embedding", "onehot"):
            out.append((f"2x{hidden} {inp}", replace(default, hidden=hidden, layers=2, input=inp)))
    return out


def training_section(
    corpus, default: TrainConfig, steps: int, ceiling_s: float, log: Log = quiet, hiddens: tuple[int, ...] = (256, 512)
) -> list[dict]:
    """Throughput and its ratio to the step ceiling, each measured right after its own ceiling."""
    rows = []
    cache: dict = {}
    fp32: dict[str, float] = {}
    for name, cfg in throughput_configs(default, hiddens):
        mc = cfg.model_config(len(corpus.vocab))
        log(f"training: {name}")
        ceil = gemm_ceiling(mc, cfg.batch, cfg.seq_len, ceiling_s, cache)
        res = training_throughput(corpus, cfg, steps=steps)
        ratio = res["gflops"] / ceil["gflops"]
        big = cfg.hidden >= 256 and cfg.layers >= 2
        rows.append(
            row(
                "training",
                f"{name} chars/s",
                res["chars_per_s"],
                "chars/s",
                f"batch {cfg.batch} x seq {cfg.seq_len}, best of {res['steps']} steps ({res['step_s']:.2f} s); "
                f"mean {res['mean_chars_per_s']:,.0f} chars/s",
            )
        )
        rows.append(
            row(
                "training",
                f"{name} model GFLOP/s",
                res["gflops"],
                "GFLOP/s",
                f"{flops_per_char(mc) / 1e6:.2f} MFLOP/char fwd+bwd; ceiling {ceil['gflops']:.1f} GFLOP/s",
            )
        )
        rows.append(
            row(
                "training",
                f"{name} share of ceiling",
                ratio,
                "ratio",
                "",
                f">= {CEILING_SHARE}" if big else "",
                (ratio >= CEILING_SHARE) if big else None,
            )
        )
        fp32[name] = res["chars_per_s"]
    if bf16_native(pick_device(default.device)):
        rows += _bf16_rows(corpus, default, steps, log, hiddens, fp32)
    return rows


def _bf16_rows(
    corpus, default: TrainConfig, steps: int, log: Log, hiddens: tuple[int, ...], fp32: dict[str, float]
) -> list[dict]:
    """What --precision bf16 (and --time-budget, which times both) gets from the same loop."""
    rows = []
    for name, cfg in throughput_configs(default, hiddens)[1::2]:
        log(f"training: {name} bf16")
        res = training_throughput(corpus, replace(cfg, precision="bf16"), steps=steps)
        rows.append(
            row(
                "training",
                f"{name} bf16 chars/s",
                res["chars_per_s"],
                "chars/s",
                "--precision bf16 (autocast; weights, optimiser and loss fp32), "
                f"best of {res['steps']} steps ({res['step_s']:.2f} s)",
            )
        )
        rows.append(
            row(
                "training",
                f"{name} bf16 speed-up",
                res["chars_per_s"] / fp32[name],
                "x fp32",
                "over the fp32 row above, same loop and shape",
            )
        )
    return rows
