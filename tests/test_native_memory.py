"""Native memory that Python's own accounting does not see: repeated work must not grow it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Primes of ever new lengths, as the app's settings changes re-prime the text so far. Each length
# is a new oneDNN primitive, kept in oneDNN's cache until it holds 1024 of them.
PRIMES_SCRIPT = r"""
import ctypes, json, os, sys
import lstmtui.core  # before any LSTM runs: caps oneDNN's primitive cache
import torch
from lstmtui.core.config import ModelConfig
from lstmtui.core.corpus import Vocab
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import CharGenerator, SamplingConfig

libc = ctypes.CDLL("libc.so.6")

def rss_mb():
    libc.malloc_trim(0)  # freed heap is returned first: what stays is memory still held
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

torch.set_num_threads(1)
torch.manual_seed(0)
chars = [chr(c) for c in range(32, 127)] + ["\n"]
vocab = Vocab(chars)
model = CharLSTM(ModelConfig(vocab_size=len(chars), hidden=64, layers=2)).eval()
text = "the quick brown fox jumps over the lazy dog. " * 40
rss = {}
for i in range(161):
    gen = CharGenerator(model, vocab, SamplingConfig(length=5, seed=i))
    gen.prime(text[:20 + 7 * i])
    gen.generate(5)
    if i in (40, 160):
        rss[i] = rss_mb()
print(json.dumps({"cap": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), "at_40": rss[40], "at_160": rss[160]}))
"""


def run_primes(env_extra: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"} | env_extra
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", PRIMES_SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and calls glibc's malloc_trim")
def test_generation_primes_of_new_lengths_keep_resident_memory_bounded():
    result = run_primes({})
    assert result["cap"] == "32"
    # 120 more primes of new lengths: +25 MB with oneDNN's default cache (1024), +0.5 MB capped at 32
    assert result["at_160"] - result["at_40"] < 10, result
