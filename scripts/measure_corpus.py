#!/usr/bin/env python3
"""Measure corpus preparation: MB/s and peak RSS for a cold load, and the time of a cached re-load.

    python scripts/measure_corpus.py FILE [--mb 200] [--kind latin1|bmp|astral|bench]
        FILE is created from the sample prose if absent: latin1 = some accented words (every
        character below U+0100), bmp = curly quotes and dashes too, astral = CJK words and emoji;
        bench = the generated text `lstmtui bench` prepares (--mb 1000 is its 1 GB)

Run each measurement in a fresh process so the peak RSS is that of one load.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def make(path: Path, mb: int, kind: str) -> None:
    """Write about ``mb`` MB of the sample prose with non-ASCII characters of the given kind."""
    if kind == "bench":
        from lstmtui.bench.startup import write_generated_corpus

        write_generated_corpus(path, mb * 10**6)
        return
    base = (REPO / "sample_corpora" / "prose.txt").read_text("utf-8")
    text = base.replace("Rosa", "Rosá").replace("Edith", "Édith")
    if kind == "bmp":
        text = (
            text.replace('"', "\u201c", 1).replace(',"', ",\u201d").replace("'", "\u2019").replace(", ", " \u2014 ", 3)
        )
        text = text.replace('. "', ". \u201c").replace('"', "\u201d")
    elif kind == "astral":
        text = text.replace("the", "\u65e5\u672c").replace("and", "\U0001f642")
    block = text.encode()
    with open(path, "wb") as f:
        written = 0
        while written < mb << 20:
            f.write(block)
            written += len(block)


def peak_rss_mb() -> float:
    """This process image's peak RSS: VmHWM, since ru_maxrss can carry the parent's from the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(path: str, cache: str) -> dict:
    from lstmtui.core.corpus import load_corpus

    stages: list[str] = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    c = load_corpus([path], cache_dir=Path(cache), progress=lambda s, d, t: stages.append(s))
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    size = c.provenance["size_bytes"]
    return {
        "seconds": round(dt, 3),
        "MB_per_s": round(size / dt / 1e6, 1),
        "cpu_s": round(cpu, 3),  # all threads; the machine may be shared, so wall time varies
        "MB_per_cpu_s": round(size / max(cpu, 1e-9) / 1e6, 1),
        "peak_rss_MB": round(peak_rss_mb(), 1),
        "n_chars": c.provenance["n_chars"],
        "vocab": len(c.vocab),
        "dtype": str(c.data.dtype),
        "progress_calls": len(stages),
        "stages": sorted(set(stages)),
    }


def main() -> int:
    """Cold load then warm load, each in its own process."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file")
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--kind", choices=("latin1", "bmp", "astral", "bench"), default="latin1")
    p.add_argument("--child", nargs=1, metavar="CACHE", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one(a.file, a.child[0])))
        return 0
    path = Path(a.file)
    if not path.exists():
        make(path, a.mb, a.kind)
    with tempfile.TemporaryDirectory() as cache:
        for run in ("cold", "cached"):
            out = subprocess.run(
                [sys.executable, __file__, str(path), "--child", cache], capture_output=True, text=True
            )
            if out.returncode:
                print(out.stderr, file=sys.stderr)
                return 1
            print(run, out.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
