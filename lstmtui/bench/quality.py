"""Time to quality: validation loss after a time budget for lstmtui (as --time-budget plans it) and the
seed-style baseline, and how much sooner lstmtui reaches the baseline's best loss."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from lstmtui.bench.baseline import BaselineTrainer, window_loss
from lstmtui.bench.rows import LN2, Log, quiet, row
from lstmtui.core import budget as planner
from lstmtui.core.config import TrainConfig
from lstmtui.core.events import EvalEvent, StepEvent
from lstmtui.core.model import CharLSTM
from lstmtui.core.training import TrainingSession, evaluate

BASELINE_HIDDEN, BASELINE_LAYERS = 256, 2  # the seed's stacked LSTM, the size of lstmtui's default
TARGETS = {5.0: "<= 1.50", 15.0: "<= 1.42"}  # lstmtui's validation loss (nats) after 5 and 15 minutes
SPEED_UP_TARGET = 10  # times sooner than the baseline to the baseline's best loss
CPU = torch.device("cpu")  # snapshots are scored on the CPU, off the training clock


class Snapshots:
    """CPU copies of a model's weights at training-time marks, evaluated after the run (off the clock)."""

    def __init__(self, budget_s: float, count: int) -> None:
        # Geometric marks: early progress matters for the time-to-reach comparison.
        self.marks = list(np.geomspace(budget_s / 40, budget_s, count)) if count > 1 else [budget_s]
        self.taken: list[tuple[float, int, dict]] = []

    def due(self, t: float) -> bool:
        """Whether training time ``t`` has reached the next mark."""
        return bool(self.marks) and t >= self.marks[0]

    def take(self, t: float, step: int, model: torch.nn.Module) -> None:
        """Copy the weights at training time ``t``, passing every mark it has reached."""
        while self.marks and t >= self.marks[0]:
            self.marks.pop(0)
        self.taken.append((t, step, {k: v.detach().clone() for k, v in model.state_dict().items()}))


def run_lstmtui(corpus, config: TrainConfig, budget_s: float, snapshots: int = 12, log: Log = quiet) -> dict[str, Any]:
    """Train with lstmtui's loop under a time budget; snapshot the weights along the way."""
    cfg = replace(config, time_budget_s=budget_s, save_every_min=0.0)
    session = TrainingSession(config=cfg, corpus=corpus)
    snaps = Snapshots(budget_s, snapshots)
    evals = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            if snaps.due(event.elapsed_s):
                snaps.take(event.elapsed_s, event.step, session.model)
            if event.step % 50 == 0:
                log(f"quality: lstmtui step {event.step} loss {event.loss:.3f} at {event.elapsed_s:.0f}s")
        elif isinstance(event, EvalEvent):
            evals.append((event.elapsed_s, event.val_loss))

    session.subscribe(on_event)
    result = session.run()
    if getattr(result, "kind", "") == "failed":
        raise RuntimeError(f"lstmtui training failed: {result.message}")
    snaps.take(result.elapsed_s, result.step, session.model)
    return {"session": session, "result": result, "snapshots": snaps.taken, "config": session.config}


def run_baseline(
    train: np.ndarray, vocab_size: int, budget_s: float, hidden: int, layers: int, snapshots: int = 12, log: Log = quiet
) -> dict[str, Any]:
    """Train the seed-style baseline for a time budget; snapshot the weights along the way."""
    trainer = BaselineTrainer(train, vocab_size, hidden=hidden, layers=layers)
    snaps = Snapshots(budget_s, snapshots)

    def on_step(t: float) -> None:
        if snaps.due(t):
            snaps.take(t, trainer.steps, trainer.model)
        if trainer.steps % 200 == 0:
            log(f"quality: baseline step {trainer.steps} at {t:.0f}s")

    start = time.perf_counter()
    trainer.train_for(budget_s, on_step)
    snaps.take(time.perf_counter() - start, trainer.steps, trainer.model)
    return {"trainer": trainer, "snapshots": snaps.taken}


def time_to_reach(curve: list[tuple[float, float]], loss: float) -> float | None:
    """First training time a (time, loss) curve reaches ``loss``, interpolated linearly; None if never."""
    prev = None
    for t, value in curve:
        if value <= loss:
            if prev is None or prev[1] == value:
                return t
            t0, v0 = prev
            return t0 + (t - t0) * (v0 - loss) / (v0 - value)
        prev = (t, value)
    return None


def quality_section(
    corpus,
    config: TrainConfig,
    minutes: float,
    snapshots: int = 12,
    log: Log = quiet,
    keep: dict | None = None,
    baseline_size: tuple[int, int] = (BASELINE_LAYERS, BASELINE_HIDDEN),
    plan: bool = True,
    baseline: bool = True,
) -> list[dict]:
    """Validation loss after ``minutes`` for lstmtui and the baseline, and lstmtui's time to the baseline's best."""
    train, val = corpus.split(config.val_fraction)
    ours = lstmtui_curve(corpus, train, val, config, minutes, snapshots, log, keep, plan)
    curve = ours["curve"]
    final = curve[-1][1]
    name = f"{minutes:g} min"
    target = TARGETS.get(float(minutes), "")
    ours_row = row(
        "quality",
        f"lstmtui val loss after {name}",
        final,
        "nats",
        f"{final / LN2:.3f} bits/char; --time-budget chose {planner.describe(ours['config'])} "
        f"(planning {ours['planning_s']:.1f} s); {ours['steps']} steps",
        target,
        (final <= float(target[3:])) if target else None,
    )
    if not baseline:
        return [ours_row]
    log(f"quality: baseline for {minutes:g} min")
    base = run_baseline(train, len(corpus.vocab), minutes * 60.0, baseline_size[1], baseline_size[0], snapshots, log)
    return [ours_row, *baseline_rows(base, val, name, curve)]


def lstmtui_curve(
    corpus,
    train: np.ndarray,
    val: np.ndarray,
    config: TrainConfig,
    minutes: float,
    snapshots: int,
    log: Log,
    keep: dict | None,
    plan: bool,
) -> dict[str, Any]:
    """Plan (unless ``plan`` is false) and train lstmtui for ``minutes``; its (time, validation loss) curve.

    ``keep``, when given, receives the final model, vocabulary and settings.
    """
    budget = minutes * 60.0
    vocab_size = len(corpus.vocab)
    threads = torch.get_num_threads()
    log(f"quality: planning lstmtui's settings for {minutes:g} min (--time-budget)")
    start = time.perf_counter()
    planned = planner.plan(config, len(train), budget, "cpu", vocab_size=vocab_size) if plan else config
    planning_s = time.perf_counter() - start
    log(f"quality: lstmtui for {minutes:g} min: {planner.describe(planned)}")
    try:
        ours = run_lstmtui(corpus, planned, planned.time_budget_s if plan else budget, snapshots, log)
    finally:
        torch.set_num_threads(threads)
    used = ours["config"]
    model = CharLSTM(used.model_config(vocab_size))
    curve = []
    for t, _step, state in ours["snapshots"]:
        model.load_state_dict(state)
        # The planner's measuring time is part of lstmtui's time.
        curve.append((t + planning_s, evaluate(model, val, CPU)))
    if keep is not None:
        model.load_state_dict(ours["snapshots"][-1][2])
        keep["model"], keep["vocab"], keep["config"] = model, corpus.vocab, used
    return {"curve": curve, "config": used, "planning_s": planning_s, "steps": ours["result"].step}


def baseline_rows(base: dict[str, Any], val: np.ndarray, name: str, curve: list[tuple[float, float]]) -> list[dict]:
    """The baseline's loss after the budget, and how much sooner lstmtui's ``curve`` reaches the baseline's best."""
    bmodel = base["trainer"].model
    bcurve = []
    for t, _step, state in base["snapshots"]:
        bmodel.load_state_dict(state)
        # The lower of its own window measure and the stream measure: the baseline's best case.
        bcurve.append((t, min(window_loss(bmodel, val), evaluate(bmodel, val, CPU))))
    best_base_t, best_base = min(bcurve, key=lambda p: p[1])
    reach = time_to_reach(curve, best_base)
    rows = [
        row(
            "quality",
            f"baseline val loss after {name}",
            bcurve[-1][1],
            "nats",
            f"{bcurve[-1][1] / LN2:.3f} bits/char; best {best_base:.3f} at {best_base_t:.0f} s, "
            f"{base['trainer'].steps} steps",
        ),
    ]
    target = f">= {SPEED_UP_TARGET}x"
    if reach is None:
        rows.append(
            row(
                "quality",
                "time to baseline's best loss",
                None,
                "ratio",
                f"lstmtui never reached {best_base:.3f} nats",
                target,
                False,
            )
        )
    else:
        ratio = best_base_t / max(reach, 1e-9)
        bound = " (at or before its first snapshot)" if reach == curve[0][0] else ""
        rows.append(
            row(
                "quality",
                "time to baseline's best loss",
                ratio,
                "x faster",
                f"lstmtui {reach:.1f} s{bound} vs baseline {best_base_t:.0f} s to {best_base:.3f} nats",
                target,
                ratio >= SPEED_UP_TARGET,
            )
        )
    return rows
