"""Measure generation speed: time to first character after a 1 KB prime, and steady chars/s.

Random-weight models (speed does not depend on training), vocab 65, embedding input, 2 layers.
Each figure is the median of --repeats runs; chars/s counts from the end of the prime (for beam
search, whose characters come out when the beams agree, it is the whole search's rate).
With --compare it instead times one character step of the torch stepper and of the NumPy stepper
(what CPU generation uses) side by side on the same model, alternating, and prints the ratio.
Usage: .venv/bin/python scripts/measure_generation.py [--threads N] [--chars N] [--sizes 256,512] [--compare]
"""

from __future__ import annotations

import argparse
import statistics
import string
import time

import torch

from lstmtui.core.config import ModelConfig
from lstmtui.core.corpus import Vocab
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import CpuStepper, SamplingConfig, Stepper, generation_speed


def step_us(stepper, steps: int = 2000) -> float:
    """Microseconds per character step of a stepper (ids cycling through the vocabulary)."""
    start = time.perf_counter()
    for k in range(steps):
        stepper.step(k % 65)
    return (time.perf_counter() - start) / steps * 1e6


def compare(sizes: list[int], repeats: int) -> None:
    """Torch and NumPy steppers side by side: the median of alternating runs, and their ratio."""
    for hidden in sizes:
        torch.manual_seed(0)
        model = CharLSTM(ModelConfig(vocab_size=65, hidden=hidden, layers=2)).eval()
        steppers = {"torch": Stepper(model), "numpy": CpuStepper(model)}
        times: dict[str, list[float]] = {name: [] for name in steppers}
        for _ in range(repeats):
            for name, stepper in steppers.items():
                times[name].append(step_us(stepper))
        t, n = statistics.median(times["torch"]), statistics.median(times["numpy"])
        print(f"2x{hidden:<4} step: torch {t:6.1f} us   numpy {n:6.1f} us   numpy/torch time {n / t:.2f}")


def main() -> None:
    """Print one line per model size and method."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--chars", type=int, default=5000, help="characters per speed run (default: 5000)")
    parser.add_argument("--sizes", default="256,512", help="hidden sizes, 2 layers each (default: 256,512)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure, median shown (default: 3)")
    parser.add_argument("--compare", action="store_true", help="time the torch and NumPy steppers side by side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compare:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        compare([int(h) for h in args.sizes.split(",")], max(args.repeats, 5))
        return
    chars = sorted(set(string.ascii_letters + " .,;:!?'-\n&$3"))[:65]
    vocab = Vocab(chars)
    prime = ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20)[:1024]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, vocab {len(chars)}, prime {len(prime)} chars")
    methods = (
        SamplingConfig(temperature=0.8),
        SamplingConfig(temperature=0),
        SamplingConfig(temperature=0.8, top_k=10, top_p=0.9),
        SamplingConfig(beam=4),
    )
    for hidden in [int(h) for h in args.sizes.split(",")]:
        torch.manual_seed(0)
        model = CharLSTM(ModelConfig(vocab_size=len(chars), hidden=hidden, layers=2)).eval()
        generation_speed(model, vocab, prime, 200, methods[0])  # warm-up: first-call set-up costs
        for cfg in methods:
            runs = [generation_speed(model, vocab, prime, args.chars, cfg) for _ in range(args.repeats)]
            first = statistics.median(r["first_char_s"] for r in runs)
            rate = statistics.median(r["chars_per_s"] for r in runs)
            print(f"2x{hidden:<4} {cfg.method:<26} first char {1000 * first:7.1f} ms   {rate:7.0f} chars/s")


if __name__ == "__main__":
    main()
