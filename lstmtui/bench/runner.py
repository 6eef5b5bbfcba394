"""The whole suite: load the corpus once, run the chosen sections in order, collect their rows."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from lstmtui.bench.ceiling import ceiling_section
from lstmtui.bench.generation import generation_models, generation_section
from lstmtui.bench.gpu import gpu_section
from lstmtui.bench.quality import BASELINE_HIDDEN, BASELINE_LAYERS, quality_section
from lstmtui.bench.rows import SECTIONS, Log, quiet
from lstmtui.bench.service import service_section
from lstmtui.bench.startup import startup_section
from lstmtui.bench.training import training_section
from lstmtui.bench.tui import tui_section
from lstmtui.core.config import TrainConfig


def default_bench_corpus() -> Path:
    """The tinyshakespeare benchmark corpus when a shared/corpora/ folder beside the checkout (or beside the
    current folder) holds it, else the bundled sample corpus."""
    from lstmtui.core.corpus import default_corpus_path

    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "corpora" / "tinyshakespeare.txt"
        if candidate.is_file():
            return candidate
    return default_corpus_path()


def run_bench(
    corpus_path: str | Path | None = None,
    minutes: float = 5.0,
    only: set[str] | None = None,
    corpus_gb: float = 1.0,
    config: TrainConfig | None = None,
    log: Log = quiet,
    throughput_steps: int | None = None,
    tui_seconds: float | None = None,
    hiddens: tuple[int, ...] = (256, 512),
    snapshots: int = 12,
    baseline_size: tuple[int, int] = (BASELINE_LAYERS, BASELINE_HIDDEN),
    baseline: bool = True,
) -> dict[str, Any]:
    """Run the chosen sections; return {"meta": {...}, "rows": [...]}."""
    from lstmtui.core.corpus import load_corpus

    only = set(only or SECTIONS)
    corpus_path = str(corpus_path or default_bench_corpus())
    config = (config or TrainConfig()).validate()
    quick = minutes < 1.0  # a smoke run: fewer steps and shorter timings everywhere
    steps = throughput_steps or (3 if quick else 8)
    mm_s = 0.1 if quick else 0.3
    log(f"loading {corpus_path}")
    corpus = load_corpus([corpus_path])
    torch.manual_seed(0)
    run = {
        "corpus": corpus_path,
        "corpus_chars": len(corpus),
        "vocab": len(corpus.vocab),
        "sections": [s for s in SECTIONS if s in only],  # what this run measured, in table order
        "minutes": minutes,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": _device_name(config.device),
        "cpus": os.cpu_count(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    rows: list[dict] = []
    mc = config.model_config(len(corpus.vocab))
    if "ceiling" in only:
        rows += ceiling_section(mc, config.batch, config.seq_len, mm_s, log)
    if "training" in only:
        rows += training_section(corpus, config, steps, mm_s / 3, log, hiddens)
        rows += gpu_section(corpus, log)  # 2x512 and 3x1024 at batch 256 against a bare loop, when CUDA is here
    kept: dict = {}
    if "quality" in only:
        rows += quality_section(corpus, config, minutes, snapshots, log, kept, baseline_size, baseline=baseline)
    if "generation" in only:
        prime = corpus.text(0, 1024)
        rows += generation_section(
            generation_models(mc, kept.get("model"), hiddens, minutes),
            corpus.vocab,
            prime,
            chars=500 if quick else 3000,
            log=log,
        )
    if "tui" in only:
        rows += tui_section(corpus_path, tui_seconds or (5.0 if quick else 20.0), config, log)
    if "service" in only:
        rows += service_section(corpus_path, config, log, 3.0 if quick else 6.0)
    if "startup" in only:
        rows += startup_section(corpus_path, corpus_gb, 3 if quick else 10, log, config)
    run["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return {"meta": run, "rows": rows}


def _device_name(name: str) -> str:
    """The device the run trains on, as the table's heading names it."""
    from lstmtui.core.device import describe, pick_device

    return describe(pick_device(name))
