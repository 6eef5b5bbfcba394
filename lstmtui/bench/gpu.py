"""The GPU check: lstmtui's training loop against a bare nn.LSTM loop, time to a validation loss under
--time-budget, generation speed, and a one-GPU DDP run under torchrun, in one table.

``python -m lstmtui.bench.gpu`` is what scripts/gpu_check.sh runs (``--cpu-smoke``: the same
measurements, tiny, on the CPU, so CI keeps them working); ``lstmtui bench`` adds the throughput rows
(``gpu_section``) when CUDA is present.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import TrainConfig
from lstmtui.core.precision import autocast, bf16_native

TARGET_NATS = 1.40  # the validation loss the time-to-loss row waits for (tinyshakespeare)
EMBEDDING = 64  # lstmtui's default input embedding width, which the bare loop copies


@dataclass(frozen=True)
class Plan:
    """What one check measures, and how long it may take."""

    device: str
    shapes: tuple[tuple[int, int], ...]  # (layers, hidden)
    batch: int
    seq_len: int
    warmup: int  # untimed steps (a multiple of the loop's read interval, so timing starts at a read)
    steps: int  # timed steps (likewise)
    budget_s: float  # --time-budget of the time-to-loss run
    gen_chars: int
    ddp_steps: int


GPU_PLAN = Plan(
    "cuda", ((2, 512), (3, 1024)), 256, 128, warmup=32, steps=96, budget_s=100.0, gen_chars=3000, ddp_steps=224
)
SMOKE_PLAN = Plan("cpu", ((1, 32),), 8, 16, warmup=2, steps=4, budget_s=4.0, gen_chars=100, ddp_steps=6)


def precisions(device: torch.device) -> tuple[str, ...]:
    """fp32, and bf16 where the device runs it natively."""
    return ("fp32", "bf16") if bf16_native(device) else ("fp32",)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_chars_per_s(vocab: int, layers: int, hidden: int, plan: Plan, precision: str) -> float:
    """Training chars/s of the plainest loop over the same model: embedding, nn.LSTM (cuDNN), linear head,
    fused AdamW on CUDA, state carried, nothing read back until the timing ends."""
    device = torch.device(plan.device)
    emb, head = nn.Embedding(vocab, EMBEDDING).to(device), nn.Linear(hidden, vocab).to(device)
    lstm = nn.LSTM(EMBEDDING, hidden, layers, batch_first=True).to(device)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0, fused=device.type == "cuda" or None)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (plan.batch, plan.seq_len), generator=gen).to(device)
    y = torch.randint(0, vocab, (plan.batch, plan.seq_len), generator=gen).to(device)
    state = None
    for i in range(plan.warmup + plan.steps):
        if i == plan.warmup:
            _sync(device)
            started = time.perf_counter()
        with autocast(device, precision):
            out, new_state = lstm(emb(x), state)
            logits = head(out)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        state = (new_state[0].detach(), new_state[1].detach())
    _sync(device)
    return plan.batch * plan.seq_len * plan.steps / (time.perf_counter() - started)


def loop_chars_per_s(corpus, layers: int, hidden: int, plan: Plan, precision: str) -> float:
    """Training chars/s of lstmtui's own loop (TrainingSession) at the same shape, timed between two reads."""
    from lstmtui.core.corpus import Corpus
    from lstmtui.core.training import TrainingSession

    total = plan.warmup + plan.steps
    config = TrainConfig(
        hidden=hidden,
        layers=layers,
        dropout=0.0,  # the bare loop has none
        batch=plan.batch,
        seq_len=plan.seq_len,
        precision=precision,
        device=plan.device,
        epochs=1000,
        max_steps=total,
        warmup_steps=1,
        eval_every=0,
        sample_every=0,
        sample_length=0,
        save_every_min=0.0,
        val_fraction=0.02,
    ).validate()
    # One epoch holds every timed step (an epoch's end validates): the text repeats if it is too short.
    need = int(plan.batch * (plan.seq_len * (total + 2) + 1) / (1 - config.val_fraction)) + 64
    data = corpus.data[:need] if len(corpus) >= need else np.resize(np.asarray(corpus.data), need)
    small = Corpus(data=data, vocab=corpus.vocab, provenance=dict(corpus.provenance))
    session = TrainingSession(config=config, corpus=small)
    stamps: dict[int, float] = {}
    session.subscribe(lambda e: e.kind == "step" and stamps.setdefault(e.step, time.perf_counter()))
    result = session.run()
    if plan.warmup not in stamps or total not in stamps:
        raise RuntimeError(f"the throughput run ended early: {getattr(result, 'message', result)}")
    return plan.batch * plan.seq_len * plan.steps / (stamps[total] - stamps[plan.warmup])


def throughput_rows(corpus, plan: Plan, log: Log = quiet) -> tuple[list[dict], dict[str, float]]:
    """The loop and the bare loop at each shape and precision, and the loop's share of the bare one."""
    rows, speeds = [], {}
    vocab = len(corpus.vocab)
    for layers, hidden in plan.shapes:
        for precision in precisions(torch.device(plan.device)):
            name = f"{layers}x{hidden} batch {plan.batch} {precision}"
            log(f"gpu: {name}")
            ours = loop_chars_per_s(corpus, layers, hidden, plan, precision)
            bare = bare_chars_per_s(vocab, layers, hidden, plan, precision)
            speeds[name] = ours
            detail = f"seq {plan.seq_len}, {plan.steps} steps after {plan.warmup}; bare nn.LSTM loop {bare:,.0f}"
            rows.append(row("gpu", f"{name} chars/s", ours, "chars/s", detail))
            rows.append(row("gpu", f"{name} share of bare loop", ours / bare, "ratio", "lstmtui loop / bare loop"))
    return rows, speeds


def gpu_section(corpus, log: Log = quiet) -> list[dict]:
    """`lstmtui bench`'s GPU rows: the throughput comparison, when CUDA is present (else none)."""
    if not torch.cuda.is_available():
        return []
    return throughput_rows(corpus, GPU_PLAN, log)[0]


def time_to_loss(corpus_path: Path, plan: Plan, target: float = TARGET_NATS, log: Log = quiet):
    """(rows, the trained session) of a --time-budget run: the time its validation first reached ``target``."""
    from lstmtui.core.training import TrainingSession

    log(f"gpu: --time-budget {plan.budget_s:g}s")
    config = TrainConfig(device=plan.device, time_budget_s=plan.budget_s, threads=0)
    session = TrainingSession([corpus_path], config, overrides={"time_budget_s": plan.budget_s})
    reached: list[float] = []
    session.subscribe(
        lambda e: e.kind in ("eval", "epoch") and e.val_loss <= target and not reached and reached.append(e.elapsed_s)
    )
    result = session.run()
    cfg = session.config
    best = getattr(result, "best_val_loss", math.nan)
    detail = (
        f"--time-budget {plan.budget_s:g}s chose {cfg.layers}x{cfg.hidden} batch {cfg.batch} {cfg.precision}; "
        f"best validation {best:.3f} nats"
    )
    value = reached[0] if reached else None
    name = f"time to {target:.2f} nats" + ("" if reached else " (not reached)")
    return [row("gpu", name, value, "s", detail)], session


def generation_rows(session, plan: Plan, log: Log = quiet) -> list[dict]:
    """Generation chars/s and the time to the first character after a 1 KB prime, on the device."""
    from lstmtui.core.sampling import generation_speed

    copied = session.weights()
    if copied is None:
        return []
    model, vocab = copied
    model = model.to(plan.device)
    prime = session.corpus.text(0, 1024)
    log("gpu: generation")
    generation_speed(model, vocab, prime[:64], chars=50)  # first-use allocations and kernel choices
    res = generation_speed(model, vocab, prime, chars=plan.gen_chars)
    size = f"{model.config.layers}x{model.config.hidden} on {plan.device}"
    return [
        row("gpu", "generation chars/s", res["chars_per_s"], "chars/s", f"{size}, {res['chars']} chars"),
        row("gpu", "generation first char", res["first_char_s"] * 1000, "ms", f"{size}, after a 1,024-char prime"),
    ]


def ddp_rows(corpus_path: Path, plan: Plan, workdir: Path, single: float | None, log: Log = quiet) -> list[dict]:
    """A run under torchrun with one process (DDP around the model): chars/s, against the same shape alone."""
    layers, hidden = plan.shapes[0]
    log("gpu: torchrun --nproc-per-node 1")
    jsonl = workdir / "ddp.jsonl"
    steps = plan.warmup + plan.ddp_steps
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]
    argv += ["-m", "lstmtui", "train", str(corpus_path), "--device", plan.device, "--hidden", str(hidden)]
    argv += ["--layers", str(layers), "--batch", str(plan.batch), "--seq-len", str(plan.seq_len)]
    argv += ["--max-steps", str(steps), "--eval-every", "0", "--sample-every", "0", "--sample-length", "0"]
    argv += ["--warmup-steps", "1", "--val-fraction", "0.02", "--plain", "--profile", "ddp", "--log-jsonl", str(jsonl)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return [row("gpu", "torchrun DDP (1 process) chars/s", None, "chars/s", f"failed: {tail[:200]}")]
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    at = {e["step"]: e["elapsed_s"] for e in events if e["event"] == "step"}
    chars = plan.batch * plan.seq_len * (steps - plan.warmup)
    cps = chars / max(1e-9, at[steps] - at[plan.warmup])
    detail = f"{layers}x{hidden} batch {plan.batch} fp32, {steps - plan.warmup} steps after {plan.warmup}"
    if single:
        detail += f"; {cps / single:.2f}x the same shape in one process"
    return [row("gpu", "torchrun DDP (1 process) chars/s", cps, "chars/s", detail)]


def run_check(plan: Plan, corpus_path: Path, workdir: Path, log: Log = quiet) -> dict:
    """Every measurement of the check: {"meta": ..., "rows": [...]} as `lstmtui bench` reports them."""
    from lstmtui.core.corpus import load_corpus
    from lstmtui.core.device import describe, pick_device

    device = pick_device(plan.device)
    corpus = load_corpus([str(corpus_path)])
    rows, speeds = throughput_rows(corpus, plan, log)
    loss_rows, session = time_to_loss(corpus_path, plan, log=log)
    rows += loss_rows + generation_rows(session, plan, log)
    first = f"{plan.shapes[0][0]}x{plan.shapes[0][1]} batch {plan.batch} fp32"
    rows += ddp_rows(corpus_path, plan, workdir, speeds.get(first), log)
    meta = {
        "corpus": str(corpus_path),
        "corpus_chars": len(corpus),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": describe(device),
        "sections": ["gpu"],
        "minutes": 0,
    }
    return {"meta": meta, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    """Run the check and print its table (scripts/gpu_check.sh)."""
    parser = argparse.ArgumentParser(prog="python -m lstmtui.bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="the benchmark corpus (tinyshakespeare on a GPU)")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU, in seconds")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    plan = SMOKE_PLAN if args.cpu_smoke else GPU_PLAN
    if plan.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (use --cpu-smoke on a machine without one)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lstmtui-gpu-check-") as tmp:
        corpus = args.corpus or _smoke_corpus(Path(tmp))
        if not corpus.is_file():
            print(f"gpu_check: no corpus at {corpus}", file=sys.stderr)
            return 2
        started = time.perf_counter()
        results = run_check(plan, corpus, Path(tmp), log=lambda m: print(m, file=sys.stderr, flush=True))
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    from lstmtui.bench.report import render

    render(results, wide=True)
    print(f"device: {results['meta']['device']}; {results['meta']['seconds']:g} s in all")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


def _smoke_corpus(folder: Path) -> Path:
    """A corpus for the smoke run: lines of sums, long enough for the tiny plan."""
    path = folder / "sums.txt"
    lines = [f"{(i * 37) % 50}+{(i * 11) % 50}={(i * 37) % 50 + (i * 11) % 50}" for i in range(2000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    raise SystemExit(main())
