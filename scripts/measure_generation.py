"""Measure generation speed: time to first character after a 1 KB prime, and steady chars/s.

Random-weight models (speed does not depend on training): vocab 65, embedding input.
Usage: .venv/bin/python scripts/measure_generation.py [--threads N] [--chars N]
"""

from __future__ import annotations

import argparse
import statistics
import string
import time

import torch

from lstmtui.core.config import ModelConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import CharGenerator, SamplingConfig


class _Vocab:
    def __init__(self, chars):
        self.chars = list(chars)

    def missing(self, text):
        known = set(self.chars)
        return sorted({ch for ch in text if ch not in known})


def main() -> None:
    """Print one line per model size and method."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--chars", type=int, default=5000, help="characters per speed run")
    parser.add_argument("--sizes", default="256,512", help="hidden sizes, 2 layers each")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    chars = sorted(set(string.ascii_letters + " .,;:!?'-\n&$3"))[:65]
    vocab = _Vocab(chars)
    prime = ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)[:1024]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, vocab {len(chars)}, prime {len(prime)} chars")
    for hidden in [int(h) for h in args.sizes.split(",")]:
        torch.manual_seed(0)
        model = CharLSTM(ModelConfig(vocab_size=len(chars), hidden=hidden, layers=2)).eval()
        for cfg in (SamplingConfig(temperature=0.8), SamplingConfig(temperature=0),
                    SamplingConfig(temperature=0.8, top_k=10, top_p=0.9), SamplingConfig(beam=4)):
            firsts, rates = [], []
            for rep in range(3):
                gen = CharGenerator(model, vocab, cfg, generator=torch.Generator().manual_seed(rep))
                t0 = time.perf_counter()
                gen.prime(prime)
                it = gen.stream(args.chars)
                next(it)
                t1 = time.perf_counter()
                n = sum(1 for _ in it)
                t2 = time.perf_counter()
                firsts.append(t1 - t0)
                rates.append(n / (t2 - t1))
            print(f"2x{hidden:<4} {cfg.method:<24} first char {1000 * statistics.median(firsts):6.1f} ms   "
                  f"{statistics.median(rates):7.0f} chars/s")


if __name__ == "__main__":
    main()
