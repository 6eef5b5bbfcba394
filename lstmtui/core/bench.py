"""The measurements behind `lstmtui bench`: every figure of one table, measured in one process run.

Each section returns rows ``{"section", "name", "value", "unit", "detail", "target", "met"}`` so the
command can print them and write them as JSON. Nothing here imports a user-interface library.
Sections: ceiling (matmul GFLOP/s at the LSTM's shapes), training (throughput), quality (time to
quality against the seed-style baseline), generation, tui, startup (help time, peak memory).
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.device import pick_device
from lstmtui.core.model import flops_per_char
from lstmtui.core.precision import bf16_native

SECTIONS = ("ceiling", "training", "quality", "generation", "tui", "startup")
LN2 = math.log(2.0)
FIRST_CHAR_REPEATS = 5  # first-character timings per model, median reported (a prime is ~30 ms)
BASELINE_HIDDEN, BASELINE_LAYERS = 256, 2  # the seed's stacked LSTM, the size of lstmtui's default
Log = Callable[[str], None]


def row(section: str, name: str, value: float | None, unit: str = "", detail: str = "",
        target: str = "", met: bool | None = None) -> dict[str, Any]:
    """One line of the table."""
    return {"section": section, "name": name, "value": value, "unit": unit, "detail": detail, "target": target, "met": met}


def _quiet(_msg: str) -> None:
    pass


# ----- 1. the matmul ceiling -----

def matmul_gflops(m: int, k: int, n: int, seconds: float = 0.2, repeats: int = 3) -> float:
    """Best-of-``repeats`` float32 GFLOP/s of an (m, k) x (k, n) product with torch on the CPU."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    c = torch.empty(m, n)
    torch.mm(a, b, out=c)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            count += 1
            dt = time.perf_counter() - start
            if dt >= seconds / repeats:
                break
        best = max(best, 2.0 * m * k * n * count / dt / 1e9)
    return best


def step_gemms(config: ModelConfig, batch: int, seq_len: int) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one training step: (label, m, k, n, times), forward and backward.

    These are the products flops_per_char counts: per layer the input projection over all
    positions, the recurrent product once per time step, and the output head; each forward
    product Y = X W (m, k, n) has two backward products, dX = dY W^T (m, n, k) and dW = X^T dY (k, m, n).
    """
    h, v, rows = config.hidden, config.vocab_size, batch * seq_len
    forward = []
    for layer in range(config.layers):
        inp = (v if config.input == "onehot" else config.embedding_dim) if layer == 0 else h
        forward.append((f"L{layer + 1} input", rows, inp, 4 * h, 1))
        forward.append((f"L{layer + 1} recurrent", batch, h, 4 * h, seq_len))
    forward.append(("head", rows, h, v, 1))
    out = []
    for label, m, k, n, times in forward:
        out += [(f"{label} fwd", m, k, n, times), (f"{label} dX", m, n, k, times), (f"{label} dW", k, m, n, times)]
    return out


def gemm_ceiling(config: ModelConfig, batch: int, seq_len: int, seconds: float = 0.1,
                 cache: dict | None = None) -> dict[str, Any]:
    """GFLOP/s of one step's products if each ran at its measured matmul rate (the step's ceiling)."""
    cache = {} if cache is None else cache
    total_flops, total_s = 0.0, 0.0
    for _label, m, k, n, times in step_gemms(config, batch, seq_len):
        key = (m, k, n)
        if key not in cache:
            cache[key] = matmul_gflops(m, k, n, seconds)
        flops = 2.0 * m * k * n * times
        total_flops += flops
        total_s += flops / (cache[key] * 1e9)
    return {"gflops": total_flops / total_s / 1e9, "step_flops": total_flops, "gemm_s": total_s}


def ceiling_section(config: ModelConfig, batch: int, seq_len: int, seconds: float, log: Log = _quiet) -> list[dict]:
    """Matmul GFLOP/s at the default model's shapes, and a large square product for scale."""
    rows = []
    seen = set()
    for label, m, k, n, _times in step_gemms(config, batch, seq_len):
        if "fwd" not in label or (m, k, n) in seen:
            continue
        seen.add((m, k, n))
        log(f"ceiling: {m}x{k} @ {k}x{n}")
        rows.append(row("ceiling", f"matmul ({m}x{k})@({k}x{n})", matmul_gflops(m, k, n, seconds), "GFLOP/s", label.replace(" fwd", "")))
    rows.append(row("ceiling", "matmul (1024x1024)@(1024x1024)", matmul_gflops(1024, 1024, 1024, seconds), "GFLOP/s", "large square product"))
    ceil = gemm_ceiling(config, batch, seq_len, seconds)
    rows.append(row("ceiling", f"step ceiling {config.layers}x{config.hidden}", ceil["gflops"], "GFLOP/s",
                    f"all fwd+bwd products of a {batch}x{seq_len} step at their measured rates"))
    return rows


# ----- 2. training throughput -----

def training_throughput(corpus, config: TrainConfig, warmup: int = 2, steps: int = 4, max_seconds: float = 45.0) -> dict[str, Any]:
    """Chars/s of the real TrainingSession loop over ``steps`` timed steps after ``warmup`` ones (at least 2 within ``max_seconds``)."""
    from lstmtui.core.corpus import Corpus
    from lstmtui.core.events import StepEvent
    from lstmtui.core.training import TrainingSession

    total = warmup + steps
    cfg = replace(config, epochs=10**6, max_steps=total, eval_every=0, sample_every=0, sample_length=0,
                  save_every_min=0.0, time_budget_s=0.0, val_fraction=0.1, warmup_steps=min(config.warmup_steps, 1))
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
    gaps = [b[1] - a[1] for a, b in zip(timed, timed[1:])]
    per_step = config.batch * min(config.seq_len, session.batcher.stream_len)
    best = min(gaps)
    mean = sum(gaps) / len(gaps)
    mc = cfg.model_config(len(corpus.vocab))
    # Best step, like the best-of matmul ceiling: on a shared machine the mean measures the neighbours.
    cps = per_step / best
    return {"chars_per_s": cps, "gflops": cps * flops_per_char(mc) / 1e9, "step_s": best, "mean_chars_per_s": per_step / mean,
            "model": mc, "steps": len(gaps)}


def throughput_configs(default: TrainConfig, hiddens: tuple[int, ...] = (256, 512)) -> list[tuple[str, TrainConfig]]:
    """The default model, then 2x256 and 2x512 with both input encodings."""
    out = [(f"default ({default.layers}x{default.hidden} {default.input})", default)]
    for hidden in hiddens:
        for inp in ("embedding", "onehot"):
            out.append((f"2x{hidden} {inp}", replace(default, hidden=hidden, layers=2, input=inp)))
    return out


def training_section(corpus, default: TrainConfig, steps: int, ceiling_s: float, log: Log = _quiet,
                     hiddens: tuple[int, ...] = (256, 512)) -> list[dict]:
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
        rows.append(row("training", f"{name} chars/s", res["chars_per_s"], "chars/s",
                        f"batch {cfg.batch} x seq {cfg.seq_len}, best of {res['steps']} steps ({res['step_s']:.2f} s); mean {res['mean_chars_per_s']:,.0f} chars/s"))
        rows.append(row("training", f"{name} model GFLOP/s", res["gflops"], "GFLOP/s",
                        f"{flops_per_char(mc) / 1e6:.2f} MFLOP/char fwd+bwd; ceiling {ceil['gflops']:.1f} GFLOP/s"))
        rows.append(row("training", f"{name} share of ceiling", ratio, "ratio", "", ">= 0.85" if big else "",
                        (ratio >= 0.85) if big else None))
        fp32[name] = res["chars_per_s"]
    if bf16_native(pick_device(default.device)):
        # what --precision bf16 (and --time-budget, which times both) gets from the same loop
        for name, cfg in throughput_configs(default, hiddens)[1::2]:
            log(f"training: {name} bf16")
            res = training_throughput(corpus, replace(cfg, precision="bf16"), steps=steps)
            rows.append(row("training", f"{name} bf16 chars/s", res["chars_per_s"], "chars/s",
                            f"--precision bf16 (autocast; weights, optimiser and loss fp32), best of {res['steps']} steps ({res['step_s']:.2f} s)"))
            rows.append(row("training", f"{name} bf16 speed-up", res["chars_per_s"] / fp32[name], "x fp32",
                            "over the fp32 row above, same loop and shape"))
    return rows


# ----- 3. time to quality -----

class _Snapshots:
    """CPU copies of a model's weights at training-time marks, evaluated after the run (off the clock)."""

    def __init__(self, budget_s: float, count: int) -> None:
        # Geometric marks: early progress matters for the time-to-reach comparison.
        self.marks = list(np.geomspace(budget_s / 40, budget_s, count)) if count > 1 else [budget_s]
        self.taken: list[tuple[float, int, dict]] = []

    def due(self, t: float) -> bool:
        return bool(self.marks) and t >= self.marks[0]

    def take(self, t: float, step: int, model: torch.nn.Module) -> None:
        while self.marks and t >= self.marks[0]:
            self.marks.pop(0)
        self.taken.append((t, step, {k: v.detach().clone() for k, v in model.state_dict().items()}))


def run_lstmtui(corpus, config: TrainConfig, budget_s: float, snapshots: int = 12, log: Log = _quiet) -> dict[str, Any]:
    """Train with lstmtui's loop under a time budget; snapshot the weights along the way."""
    from lstmtui.core.events import EvalEvent, StepEvent
    from lstmtui.core.training import TrainingSession

    cfg = replace(config, time_budget_s=budget_s, save_every_min=0.0)
    session = TrainingSession(config=cfg, corpus=corpus)
    snaps = _Snapshots(budget_s, snapshots)
    evals = []

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            if snaps.due(event.elapsed_s):
                snaps.take(event.elapsed_s, event.step, session._model)
            if event.step % 50 == 0:
                log(f"quality: lstmtui step {event.step} loss {event.loss:.3f} at {event.elapsed_s:.0f}s")
        elif isinstance(event, EvalEvent):
            evals.append((event.elapsed_s, event.val_loss))

    session.subscribe(on_event)
    result = session.run()
    if getattr(result, "kind", "") == "failed":
        raise RuntimeError(f"lstmtui training failed: {result.message}")
    snaps.take(result.elapsed_s, result.step, session._model)
    return {"session": session, "result": result, "snapshots": snaps.taken, "config": session.config}


def run_baseline(train: np.ndarray, vocab_size: int, budget_s: float, hidden: int, layers: int,
                 snapshots: int = 12, log: Log = _quiet) -> dict[str, Any]:
    """Train the seed-style baseline for a time budget; snapshot the weights along the way."""
    from lstmtui.core.baseline import BaselineTrainer

    trainer = BaselineTrainer(train, vocab_size, hidden=hidden, layers=layers)
    snaps = _Snapshots(budget_s, snapshots)

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


def quality_section(corpus, config: TrainConfig, minutes: float, snapshots: int = 12, log: Log = _quiet,
                    keep: dict | None = None, baseline_size: tuple[int, int] = (BASELINE_LAYERS, BASELINE_HIDDEN),
                    plan: bool = True, baseline: bool = True) -> list[dict]:
    """Validation loss after ``minutes`` for lstmtui and the baseline, and lstmtui's time to the baseline's best."""
    from lstmtui.core.baseline import window_loss
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.training import evaluate

    from lstmtui.core import budget as planner

    budget = minutes * 60.0
    train, val = corpus.split(config.val_fraction)
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
    mc = used.model_config(vocab_size)
    model = CharLSTM(mc)
    device = torch.device("cpu")
    curve = []
    for t, _step, state in ours["snapshots"]:
        model.load_state_dict(state)
        # The planner's measuring time is part of lstmtui's time.
        curve.append((t + planning_s, evaluate(model, val, used.batch, used.seq_len, device)))
    if keep is not None:
        model.load_state_dict(ours["snapshots"][-1][2])
        keep["model"], keep["vocab"], keep["config"] = model, corpus.vocab, used
    final = curve[-1][1]
    name = f"{minutes:g} min"
    target = {5.0: "<= 1.50", 15.0: "<= 1.42"}.get(float(minutes), "")
    ours_row = row("quality", f"lstmtui val loss after {name}", final, "nats",
                   f"{final / LN2:.3f} bits/char; --time-budget chose {planner.describe(used)} (planning {planning_s:.1f} s); "
                   f"{ours['result'].step} steps", target, (final <= float(target[3:])) if target else None)
    if not baseline:
        return [ours_row]
    log(f"quality: baseline for {minutes:g} min")
    base = run_baseline(train, vocab_size, budget, baseline_size[1], baseline_size[0], snapshots, log)
    bmodel = base["trainer"].model
    bcurve = []
    for t, _step, state in base["snapshots"]:
        bmodel.load_state_dict(state)
        # The lower of its own window measure and the stream measure: the baseline's best case.
        bcurve.append((t, min(window_loss(bmodel, val), evaluate(bmodel, val, 64, 128, device))))
    best_base_t, best_base = min(bcurve, key=lambda p: p[1])
    reach = time_to_reach(curve, best_base)
    rows = [
        ours_row,
        row("quality", f"baseline val loss after {name}", bcurve[-1][1], "nats",
            f"{bcurve[-1][1] / LN2:.3f} bits/char; best {best_base:.3f} at {best_base_t:.0f} s, {base['trainer'].steps} steps"),
    ]
    if reach is None:
        rows.append(row("quality", "time to baseline's best loss", None, "ratio",
                        f"lstmtui never reached {best_base:.3f} nats", ">= 10x", False))
    else:
        ratio = best_base_t / max(reach, 1e-9)
        bound = " (at or before its first snapshot)" if reach == curve[0][0] else ""
        rows.append(row("quality", "time to baseline's best loss", ratio, "x faster",
                        f"lstmtui {reach:.1f} s{bound} vs baseline {best_base_t:.0f} s to {best_base:.3f} nats", ">= 10x", ratio >= 10))
    return rows


# ----- 4. generation -----

def generation_section(models: list[tuple[str, Any]], vocab, prime: str, chars: int = 2000, log: Log = _quiet,
                       repeats: int = FIRST_CHAR_REPEATS) -> list[dict]:
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
        first = statistics.median(generation_speed(model, vocab, prime, chars=20)["first_char_s"] for _ in range(repeats))
        res = generation_speed(model, vocab, prime, chars=chars)
        default = i == 0
        rows.append(row("generation", f"{name} chars/s", res["chars_per_s"], "chars/s", f"{res['chars']} chars",
                        ">= 5000" if default else "", (res["chars_per_s"] >= 5000) if default else None))
        rows.append(row("generation", f"{name} first char", first * 1000, "ms",
                        f"{len(prime)}-char prime, median of {repeats}; the process's first prime of this length "
                        f"{cold * 1000:.1f} ms", "<= 30" if default else "", (first <= 0.030) if default else None))
    return rows


# ----- 5. the TUI -----

def tui_section(corpus_path: str, seconds: float, config: TrainConfig, log: Log = _quiet) -> list[dict]:
    """The TUI's figures from lstmtui.tui.measure, headless runs before and after the app's run."""
    try:
        from lstmtui.tui import measure  # optional: only core is imported otherwise
    except ImportError:
        return [row("tui", "TUI measurements", None, "", "lstmtui.tui.measure is not available")]
    cfg = replace(config, save_every_min=0.0)
    old_home = os.environ.get("LSTMTUI_HOME")
    try:
        with tempfile.TemporaryDirectory(prefix="lstmtui-bench-tui-") as home:
            os.environ["LSTMTUI_HOME"] = home  # the app's profiles go here, not to the user's
            log("tui: headless run")
            before = measure.measure_headless(corpus_path, cfg, seconds, home=home)
            log("tui: app run (headless terminal, keys pressed while training)")
            app = measure.measure_tui(corpus_path, cfg, seconds)
            log("tui: headless run")
            after = measure.measure_headless(corpus_path, cfg, seconds, home=home)
    except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
        return [row("tui", "TUI measurements", None, "", f"failed: {type(exc).__name__}: {exc}")]
    finally:
        if old_home is None:
            os.environ.pop("LSTMTUI_HOME", None)
        else:
            os.environ["LSTMTUI_HOME"] = old_home
    headless = (before["chars_per_s"] + after["chars_per_s"]) / 2
    ratio = app["chars_per_s"] / headless if headless > 0 else math.nan
    p50, p95, paint = app.get("key_latency_ms_median"), app.get("key_latency_ms_p95"), app.get("first_paint_s")
    return [
        row("tui", "training in the app / headless", ratio, "ratio",
            f"app {app['chars_per_s']:,.0f} vs headless {before['chars_per_s']:,.0f} and {after['chars_per_s']:,.0f} chars/s, "
            f"{seconds:g} s each", ">= 0.95", ratio >= 0.95),
        row("tui", "key press to screen, median", p50, "ms", f"{app.get('key_presses', 0)} presses while training"),
        row("tui", "key press to screen, p95", p95, "ms", "", "<= 50", p95 is not None and p95 <= 50),
        row("tui", "first paint", paint, "s", "app start to first screen", "<= 0.5", paint is not None and paint <= 0.5),
    ]


# ----- 6. start-up and memory -----

def _lstmtui_command() -> list[str]:
    script = Path(sys.executable).with_name("lstmtui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstmtui"]


def help_seconds(repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time of `lstmtui --help` in a fresh process."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(_lstmtui_command() + ["--help"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def _child(args: list[str], timeout: float) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "lstmtui.core.bench", *args], check=True, capture_output=True,
                         text=True, timeout=timeout)
    values = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if value:
            values[key] = float(value)
    return values


def training_rss(corpus_path: str, steps: int, config: TrainConfig | None = None) -> dict[str, float]:
    """Peak RSS (MB) of a fresh process that loads the corpus and trains the default model for some steps."""
    cfg = replace(config or TrainConfig(), max_steps=steps, eval_every=0, sample_every=0, save_every_min=0.0)
    return _child(["rss-train", corpus_path, json.dumps(cfg.to_dict())], timeout=600)


def write_generated_corpus(path: Path, n_bytes: int, seed: int = 0) -> None:
    """Write ``n_bytes`` of generated English-like text (random words from a fixed list, lines of prose)."""
    rng = np.random.default_rng(seed)
    words = ("the of and to in a is that for it as was with be by on not he I this are or his from at which "
             "but have an they you were her she there one all we their been has will more would when who "
             "what said so its up into time only river light garden morning winter letter question answer "
             "country history number, people; thought. world: house— city! école naïve").split()
    block_words = rng.choice(len(words), size=400_000)
    text = " ".join(words[i] for i in block_words)
    lines = [text[i : i + 72] for i in range(0, len(text), 72)]
    block = ("\n".join(lines) + "\n").encode("utf-8")
    with open(path, "wb") as f:
        written = 0
        while written < n_bytes:
            piece = block[: n_bytes - written]
            f.write(piece)
            written += len(piece)


def corpus_prep(gigabytes: float, workdir: Path) -> dict[str, float]:
    """Preparation rate (MB/s) and peak RSS (MB) of load_corpus on a generated corpus, in a fresh process."""
    n_bytes = int(gigabytes * 1e9)
    path = workdir / "generated.txt"
    write_generated_corpus(path, n_bytes)
    res = _child(["prep", str(path), str(workdir / "cache")], timeout=1800)
    res["mb_per_s"] = n_bytes / 1e6 / res["seconds"]
    return res


def startup_section(corpus_path: str, corpus_gb: float, rss_steps: int, log: Log = _quiet,
                    config: TrainConfig | None = None) -> list[dict]:
    """`lstmtui --help` time, peak RSS while training, and corpus preparation rate and RSS."""
    log("startup: lstmtui --help")
    rows = []
    h = help_seconds()
    rows.append(row("startup", "lstmtui --help", h, "s", "best of 3, fresh process", "<= 0.3", h <= 0.3))
    log("startup: training RSS")
    rss = training_rss(corpus_path, rss_steps, config)
    rows.append(row("startup", "peak RSS training default model", rss["rss_mb"], "MB", f"{int(rss['steps'])} steps, corpus loaded"))
    if corpus_gb > 0:
        log(f"startup: preparing a {corpus_gb:g} GB corpus")
        with tempfile.TemporaryDirectory(prefix="lstmtui-bench-") as tmp:
            prep = corpus_prep(corpus_gb, Path(tmp))
        size = f"{corpus_gb:g} GB generated text"
        full = corpus_gb >= 1.0
        rows.append(row("startup", "corpus preparation rate", prep["mb_per_s"], "MB/s", size, ">= 50", prep["mb_per_s"] >= 50))
        rows.append(row("startup", "peak RSS preparing corpus", prep["rss_mb"], "MB", size,
                        "< 1000" if full else "", (prep["rss_mb"] < 1000) if full else None))
    return rows


def _peak_rss_mb() -> float:
    # VmHWM is this process image's own peak; ru_maxrss also counts the parent's pages at fork.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def _child_main(argv: list[str]) -> int:
    from lstmtui.core.corpus import load_corpus

    if argv[0] == "prep":
        start = time.perf_counter()
        corpus = load_corpus([argv[1]], cache_dir=Path(argv[2]))
        print(f"seconds={time.perf_counter() - start}")
        print(f"chars={len(corpus)}")
        print(f"rss_mb={_peak_rss_mb()}")
        return 0
    if argv[0] == "rss-train":
        from lstmtui.core.training import TrainingSession

        cfg = TrainConfig.from_dict(json.loads(argv[2]))
        session = TrainingSession([argv[1]], cfg)
        result = session.run()
        print(f"steps={result.step}")
        print(f"rss_mb={_peak_rss_mb()}")
        return 0
    return 2


# ----- the whole suite -----

def default_bench_corpus() -> Path:
    """../shared/corpora/tinyshakespeare.txt when present, else the bundled sample corpus."""
    from lstmtui.core.corpus import default_corpus_path

    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "corpora" / "tinyshakespeare.txt"
        if candidate.is_file():
            return candidate
    return default_corpus_path()


def run_bench(corpus_path: str | Path | None = None, minutes: float = 5.0, only: set[str] | None = None,
              corpus_gb: float = 1.0, config: TrainConfig | None = None, log: Log = _quiet,
              throughput_steps: int | None = None, tui_seconds: float | None = None,
              hiddens: tuple[int, ...] = (256, 512), snapshots: int = 12,
              baseline_size: tuple[int, int] = (BASELINE_LAYERS, BASELINE_HIDDEN), baseline: bool = True) -> dict[str, Any]:
    """Run the chosen sections; return {"meta": {...}, "rows": [...]}."""
    from lstmtui.core.corpus import load_corpus

    only = set(only or SECTIONS)
    corpus_path = str(corpus_path or default_bench_corpus())
    config = (config or TrainConfig()).validate()
    quick = minutes < 1.0
    steps = throughput_steps or (3 if quick else 8)
    mm_s = 0.1 if quick else 0.3
    log(f"loading {corpus_path}")
    corpus = load_corpus([corpus_path])
    torch.manual_seed(0)
    meta = {"corpus": corpus_path, "corpus_chars": len(corpus), "vocab": len(corpus.vocab), "minutes": minutes,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    rows: list[dict] = []
    mc = config.model_config(len(corpus.vocab))
    if "ceiling" in only:
        rows += ceiling_section(mc, config.batch, config.seq_len, mm_s, log)
    if "training" in only:
        rows += training_section(corpus, config, steps, mm_s / 3, log, hiddens)
    kept: dict = {}
    if "quality" in only:
        rows += quality_section(corpus, config, minutes, snapshots, log, kept, baseline_size, baseline=baseline)
    if "generation" in only:
        prime = corpus.text(0, 1024)
        rows += generation_section(generation_models(mc, kept.get("model"), hiddens, minutes), corpus.vocab, prime,
                                   chars=500 if quick else 3000, log=log)
    if "tui" in only:
        rows += tui_section(corpus_path, tui_seconds or (5.0 if quick else 20.0), config, log)
    if "startup" in only:
        rows += startup_section(corpus_path, corpus_gb, 3 if quick else 10, log, config)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return {"meta": meta, "rows": rows}


def generation_models(default: ModelConfig, trained, hiddens: tuple[int, ...], minutes: float) -> list[tuple[str, Any]]:
    """The models the generation section times: the default architecture first (its row has the
    targets), the quality run's model when --time-budget chose another size, then 2x the largest."""
    from lstmtui.core.model import CharLSTM

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


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
