"""Start-up and memory: `lstmtui --help` time, peak RSS while training, corpus preparation rate and RSS.

The memory figures come from fresh processes: ``python -m lstmtui.bench.startup prep|rss-train ...``
runs one job and prints ``key=value`` lines.
"""

from __future__ import annotations

import importlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import TrainConfig

HELP_TARGET_S = 0.3
PREP_RATE_TARGET_MB_S = 50
PREP_RSS_TARGET_MB = 1000  # for a corpus of 1 GB and more


def _lstmtui_command() -> list[str]:
    script = Path(sys.executable).with_name("lstmtui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstmtui"]


def help_seconds(repeats: int = 3) -> float:
    """Best-of-``repeats`` wall time of `lstmtui --help` in a fresh process."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [*_lstmtui_command(), "--help"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        best = min(best, time.perf_counter() - start)
    return best


def _child(args: list[str], timeout: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "lstmtui.bench.startup", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
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
    words = (
        "the of and to in a is that for it as was with be by on not he I this are or his from at which "
        "but have an they you were her she there one all we their been has will more would when who "
        "what said so its up into time only river light garden morning winter letter question answer "
        "country history number, people; thought. world: house— city! école naïve"
    ).split()
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


def startup_section(
    corpus_path: str, corpus_gb: float, rss_steps: int, log: Log = quiet, config: TrainConfig | None = None
) -> list[dict]:
    """`lstmtui --help` time, peak RSS while training, and corpus preparation rate and RSS."""
    log("startup: lstmtui --help")
    rows = []
    h = help_seconds()
    rows.append(
        row("startup", "lstmtui --help", h, "s", "best of 3, fresh process", f"<= {HELP_TARGET_S}", h <= HELP_TARGET_S)
    )
    log("startup: training RSS")
    rss = training_rss(corpus_path, rss_steps, config)
    rows.append(
        row(
            "startup",
            "peak RSS training default model",
            rss["rss_mb"],
            "MB",
            f"{int(rss['steps'])} steps, corpus loaded",
        )
    )
    if corpus_gb > 0:
        log(f"startup: preparing a {corpus_gb:g} GB corpus")
        with tempfile.TemporaryDirectory(prefix="lstmtui-bench-") as tmp:
            prep = corpus_prep(corpus_gb, Path(tmp))
        size = f"{corpus_gb:g} GB generated text"
        full = corpus_gb >= 1.0
        rows.append(
            row(
                "startup",
                "corpus preparation rate",
                prep["mb_per_s"],
                "MB/s",
                size,
                f">= {PREP_RATE_TARGET_MB_S}",
                prep["mb_per_s"] >= PREP_RATE_TARGET_MB_S,
            )
        )
        rows.append(
            row(
                "startup",
                "peak RSS preparing corpus",
                prep["rss_mb"],
                "MB",
                size,
                f"< {PREP_RSS_TARGET_MB}" if full else "",
                (prep["rss_mb"] < PREP_RSS_TARGET_MB) if full else None,
            )
        )
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

    # torch is loaded before the corpus is prepared, as in `lstmtui train`, so its pages count too
    importlib.import_module("torch")
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


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
