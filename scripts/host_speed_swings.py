"""How much a machine's own training speed moves over a run, with no lstmtui code in the loop.

Trains the model shape a short ``--time-budget`` picks (2x256 LSTM over a 64-wide embedding,
batch 16 x 64, AdamW, bf16 autocast where the CPU has it) in plain PyTorch for a while, and prints
the median step time of every 10 seconds. docs/performance.md ("The forecast of a budget's end")
uses it to tell the host's speed swings from the forecast's errors.

    python scripts/host_speed_swings.py CORPUS [SECONDS] [--fp32]
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from torch import nn


def main() -> None:
    """Train for the given seconds and print a line of 10-second step-time medians."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[1]) if len(args) > 1 else 100.0
    bf16 = "--fp32" not in sys.argv and torch.backends.mkldnn.is_available()
    text = open(args[0], encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text[:2_000_000]])
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "emb": nn.Embedding(len(chars), 64),
            "lstm": nn.LSTM(64, 256, 2, batch_first=True),
            "out": nn.Linear(256, len(chars)),
        }
    )
    opt = torch.optim.AdamW(model.parameters(), 4e-3)
    batch, seq = 16, 64
    stride = (len(data) - 1) // batch
    start = last = time.perf_counter()
    times: list[float] = []
    medians: list[str] = []
    pos = 0
    while last - start < seconds:
        rows = torch.arange(batch) * stride + pos
        x = torch.stack([data[r : r + seq] for r in rows])
        y = torch.stack([data[r + 1 : r + seq + 1] for r in rows])
        pos = (pos + seq) % (stride - seq - 1)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden, _ = model["lstm"](model["emb"](x))
            logits = model["out"](hidden)
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        now = time.perf_counter()
        times.append(now - last)
        last = now
        if len(medians) < int((now - start) // 10):
            medians.append(f"{1000 * statistics.median(times):.0f}")
            times = []
    print(f"{'bf16' if bf16 else 'fp32'}, 10-second medians of the step time (ms): {' '.join(medians)}")


if __name__ == "__main__":
    main()
