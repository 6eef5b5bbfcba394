"""The --time-budget planner: model size, batch and schedule that fit a wall-clock budget on this machine.

``plan`` times a few training steps of candidate model sizes here (a second or two each), works out
how many characters each could train on within the budget, and picks the largest model that still
sees enough characters per parameter to be trained well in that time (a model that sees too few
ends worse than a smaller one trained longer). It sets ``epochs`` high enough that the budget, not
the epoch count, ends training, so the learning rate decays on the time schedule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from lstmtui.core.config import TrainConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.precision import autocast, bf16_native

# (layers, hidden), smallest first.
CANDIDATES: tuple[tuple[int, int], ...] = ((1, 128), (2, 128), (2, 192), (2, 256), (2, 384), (2, 512), (3, 512))
# Characters of training per parameter a model needs within the budget to beat the next smaller one
# (with the dropout and weight decay below): a wider model trained on fewer characters per parameter
# ends lower than a smaller one that has stopped improving (docs/performance.md, `--time-budget`).
CHARS_PER_PARAM = 2.5
# Dropout for a run that makes DROPOUT_EPOCHS or more passes over the corpus: DROPOUT_PER_EPOCH per
# pass, at most MAX_DROPOUT. Fewer passes: none (too few to overfit, and the masks cost time).
DROPOUT_EPOCHS = 4
DROPOUT_PER_EPOCH = 0.03
MAX_DROPOUT = 0.3
# Decoupled (AdamW) weight decay for those runs too: with many passes over the corpus it closes more of
# the gap between training and validation loss than dropout alone.
PLANNED_WEIGHT_DECAY = 0.1
# Short budgets: smaller batches, shorter BPTT windows (state is carried between them) and a higher
# peak LR make more updates of the same characters, which wins while the budget is short. Applied
# while a budget allows fewer than LONG_RUN_STEPS updates.
SHORT_BATCH = 16
SHORT_LR = 4e-3
SHORT_SEQ = 64
LONG_RUN_STEPS = 50_000
# Share of the budget spent training (the rest: evaluation, samples, the end-of-run validation).
TRAIN_SHARE = 0.9
# Time steps per step of the thread comparison: only the ratio of two timings counts, so keep it cheap.
THREAD_PROBE_SEQ = 16
# Validation characters a check between epoch ends of a budgeted run scores, in windows spread over
# the split (an estimate of the full-split figure; epoch ends and the finish read the whole split):
# full checks at the default interval would take several percent of the budget from training, and
# 20k characters keep the curve drawn between epoch ends at a fraction of a second a check.
BUDGET_EVAL_CHARS = 20_000
# bf16 autocast is chosen only when it trains at least this much faster than fp32: a margin over
# timing noise.
BF16_MARGIN = 1.1
# Most of the budget the size measurements may take.
MAX_MEASURE_SHARE = 0.02


@dataclass(frozen=True)
class Candidate:
    """One model size with its measured speed and the characters it can train on in the budget."""

    layers: int
    hidden: int
    parameters: int
    chars_per_s: float
    budget_chars: float
    precision: str = "fp32"


def measure_chars_per_s(
    config: TrainConfig, vocab_size: int, device: torch.device | str = "cpu", steps: int = 2, seq_len: int = 32
) -> float:
    """Training chars/s of a config's model on random data: one warm-up step, then the best of ``steps``."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    state = torch.random.get_rng_state()
    try:
        model = CharLSTM(config.model_config(vocab_size)).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        x = torch.randint(0, vocab_size, (config.batch, seq_len), generator=gen).to(device)
        y = torch.randint(0, vocab_size, (config.batch, seq_len), generator=gen).to(device)
        best = math.inf
        for i in range(steps + 1):
            start = time.perf_counter()
            with autocast(device, config.precision):
                logits, _ = model(x)
            loss = F.cross_entropy(logits.float().reshape(-1, vocab_size), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i > 0:
                best = min(best, time.perf_counter() - start)
    finally:
        # Measuring must not change the training run's random stream.
        torch.random.set_rng_state(state)
    return config.batch * seq_len / best


def choose_threads(config: TrainConfig, vocab_size: int, device: torch.device | str = "cpu", rounds: int = 2) -> int:
    """1 when one CPU thread trains faster than all of them here (a busy machine), else 0 (torch's choice)."""
    many = torch.get_num_threads()
    if torch.device(device).type != "cpu" or many <= 1:
        return 0
    times: dict[int, list[float]] = {1: [], many: []}
    try:
        for _ in range(rounds):  # alternated, so a burst of load elsewhere hits both
            for n in (many, 1):
                torch.set_num_threads(n)
                times[n].append(measure_chars_per_s(config, vocab_size, device, steps=1, seq_len=THREAD_PROBE_SEQ))
    finally:
        torch.set_num_threads(many)
    median = {n: sorted(v)[len(v) // 2] for n, v in times.items()}
    return 1 if median[1] > 1.1 * median[many] else 0


def candidates(
    config: TrainConfig,
    vocab_size: int,
    budget_s: float,
    device: torch.device | str = "cpu",
    sizes: Iterable[tuple[int, int]] = CANDIDATES,
    measure: Callable[[TrainConfig], float] | None = None,
    stop_early: bool = True,
    precisions: Iterable[str] = ("fp32",),
) -> list[Candidate]:
    """Each candidate size with its measured chars/s (in the fastest of ``precisions``) and the
    characters it could train on in the budget."""
    # Timed at the run's own step shape: a shorter probe underestimates small models' speed, and the
    # plan then chooses too small a model.
    measure = measure or (lambda cfg: measure_chars_per_s(cfg, vocab_size, device, steps=1, seq_len=cfg.seq_len))
    out = []
    start = time.perf_counter()
    for layers, hidden in sizes:
        if out and time.perf_counter() - start > MAX_MEASURE_SHARE * budget_s:
            break  # measuring must stay a small part of the budget
        cfg = replace(config, layers=layers, hidden=hidden)
        precision, cps = fastest_precision(cfg, measure, precisions)
        params = cfg.model_config(vocab_size).parameter_count()
        out.append(Candidate(layers, hidden, params, cps, cps * budget_s * TRAIN_SHARE, precision))
        if stop_early and out[-1].budget_chars < CHARS_PER_PARAM * params:
            break  # larger ones are slower and bigger still: no need to time them
    return out


def fastest_precision(
    config: TrainConfig, measure: Callable[[TrainConfig], float], precisions: Iterable[str]
) -> tuple[str, float]:
    """The precision among ``precisions`` that trains ``config`` fastest, with its chars/s; bf16 must
    beat fp32 by BF16_MARGIN."""
    speeds = {p: measure(replace(config, precision=p)) for p in dict.fromkeys(precisions)}
    fp32 = speeds.get("fp32")
    if fp32 is not None and speeds.get("bf16", 0.0) < BF16_MARGIN * fp32:
        speeds.pop("bf16", None)
    best = max(speeds, key=speeds.get)
    return best, speeds[best]


def choose(options: list[Candidate], chars_per_param: float = CHARS_PER_PARAM) -> Candidate:
    """The largest candidate that trains on at least ``chars_per_param`` characters per parameter."""
    fitting = [c for c in options if c.budget_chars >= chars_per_param * c.parameters]
    if not fitting:
        return min(options, key=lambda c: c.parameters)
    return max(fitting, key=lambda c: c.parameters)


def plan(
    config: TrainConfig,
    corpus_chars: int,
    budget_s: float,
    device: torch.device | str = "cpu",
    *,
    vocab_size: int = 96,
    fixed: Iterable[str] = (),
    sizes: Iterable[tuple[int, int]] | None = None,
    measure: Callable[[TrainConfig], float] | None = None,
    precisions: Iterable[str] | None = None,
) -> TrainConfig:
    """A copy of ``config`` sized to end inside ``budget_s`` seconds at the best loss the budget allows.

    ``corpus_chars`` is the training split's length; ``fixed`` names TrainConfig fields the user set,
    which are kept. ``precisions`` are those to time (default: fp32, and bf16 where the device runs it
    natively). The time spent measuring is taken off the returned config's time_budget_s.
    """
    start = time.perf_counter()
    fixed = set(fixed)
    cfg = replace(config)
    if budget_s <= 0:
        return cfg
    before = torch.get_num_threads()
    if "threads" not in fixed and cfg.threads == 0 and measure is None and budget_s >= 60:
        cfg = replace(cfg, threads=choose_threads(cfg, vocab_size, device))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if "precision" in fixed:
        precisions = (cfg.precision,)
    elif precisions is None:
        precisions = ("fp32", "bf16") if bf16_native(device) else ("fp32",)
    try:
        cfg = _plan_sizes(
            cfg, config, corpus_chars, budget_s, device, vocab_size, fixed, sizes, measure, tuple(precisions)
        )
    finally:
        torch.set_num_threads(before)
    spent = time.perf_counter() - start
    cfg = replace(cfg, time_budget_s=max(1.0, budget_s - spent))
    return cfg.validate()


def _plan_sizes(
    cfg: TrainConfig,
    config: TrainConfig,
    corpus_chars: int,
    budget_s: float,
    device,
    vocab_size: int,
    fixed: set[str],
    sizes,
    measure,
    precisions: tuple[str, ...],
) -> TrainConfig:
    short = {"batch": SHORT_BATCH, "lr": SHORT_LR, "seq_len": SHORT_SEQ}
    for key, value in short.items():
        if key not in fixed:
            cfg = replace(cfg, **{key: value})
    if not {"hidden", "layers"} & fixed:
        options = candidates(cfg, vocab_size, budget_s, device, sizes or CANDIDATES, measure, precisions=precisions)
        best = choose(options)
        cfg = replace(cfg, layers=best.layers, hidden=best.hidden, precision=best.precision)
        cps = best.chars_per_s
    else:
        precision, cps = fastest_precision(
            cfg, measure or (lambda c: measure_chars_per_s(c, vocab_size, device)), precisions
        )
        cfg = replace(cfg, precision=precision)
    budget_chars = cps * budget_s * TRAIN_SHARE
    steps = budget_chars / (cfg.batch * cfg.seq_len)
    epochs_needed = budget_chars / max(1, corpus_chars)
    updates: dict = {}
    # Enough epochs that the budget, not the epoch count, ends training (the LR decays by time).
    updates["epochs"] = max(1, math.ceil(epochs_needed * 1.5) + 1)
    updates["warmup_steps"] = int(min(config.warmup_steps, max(2, steps * 0.05)))
    updates["dropout"] = planned_dropout(epochs_needed)
    updates["weight_decay"] = PLANNED_WEIGHT_DECAY if epochs_needed >= DROPOUT_EPOCHS else 0.0
    updates["eval_max_chars"] = min(config.eval_max_chars, BUDGET_EVAL_CHARS)
    if steps > LONG_RUN_STEPS:
        # A long budget: the usual batch and LR, whose GEMMs are more efficient, lose nothing in updates.
        for key in short:
            if key not in fixed:
                updates[key] = getattr(config, key)
    for key, value in updates.items():
        if key not in fixed:
            cfg = replace(cfg, **{key: value})
    return cfg


def planned_dropout(epochs: float) -> float:
    """The dropout a run of ``epochs`` passes over its corpus gets from the planner."""
    if epochs < DROPOUT_EPOCHS:
        return 0.0
    return round(min(MAX_DROPOUT, DROPOUT_PER_EPOCH * epochs), 2)


def describe(config: TrainConfig) -> str:
    """One line saying what the planner chose."""
    threads = f", {config.threads} thread(s)" if config.threads else ""
    threads += ", bf16 autocast" if config.precision == "bf16" else ""
    return (
        f"{config.layers}x{config.hidden} {config.input}, batch {config.batch}, seq {config.seq_len}, "
        f"{config.epochs} epochs max, dropout {config.dropout:g}, weight decay {config.weight_decay:g}, "
        f"warm-up {config.warmup_steps}{threads}, "
        f"{config.time_budget_s:.0f} s"
    )
