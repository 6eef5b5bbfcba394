#!/usr/bin/env python3
"""Training throughput inside the TUI against headless, plus key latency and first paint.

usage: scripts/tui_latency.py [CORPUS] [--seconds 30] [--hidden 256 --layers 2 ...]
Runs headless first, then the app (Pilot, headless terminal), with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> int:
    """Measure headless, then the app, and print both as JSON."""
    from lstmtui.commands.common import add_training_options, config_from_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--min-char-count", type=int, default=0)
    add_training_options(parser)
    args = parser.parse_args()
    from lstmtui.bench.tui import measure_headless, measure_tui
    from lstmtui.core.corpus import default_corpus_path

    corpus = args.corpus or str(default_corpus_path())
    config = config_from_args(args)
    os.environ.setdefault("LSTMTUI_HOME", tempfile.mkdtemp(prefix="lstmtui-bench-"))
    headless = measure_headless(corpus, config, args.seconds)
    tui = measure_tui(corpus, config, args.seconds)
    ratio = tui["chars_per_s"] / headless["chars_per_s"] if headless["chars_per_s"] else float("nan")
    print(json.dumps({"headless": headless, "tui": tui, "tui_vs_headless": round(ratio, 4)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
