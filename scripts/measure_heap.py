"""Training speed and page faults with glibc's default heap behaviour against lstmtui's (core/heap.py).

Each run is a fresh process (heap settings are per process and glibc's defaults adapt to history)
that trains the same model on random data for --steps steps and reports the median step's chars/s
and the minor page faults taken. The two settings alternate for --rounds rounds, so a burst of load
elsewhere on the machine hits both; the ratio of the medians is the figure to read.

Usage: .venv/bin/python scripts/measure_heap.py [--hidden 256] [--batch 64] [--seq 128] [--rounds 3] [--steps 12]
       [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, statistics, sys, time
import torch, torch.nn.functional as F
from lstmtui.core.config import TrainConfig
from lstmtui.core.heap import keep_step_buffers
from lstmtui.core.model import CharLSTM
keep, hidden, batch, seq, steps, threads = sys.argv[1] == "1", *map(int, sys.argv[2:7])
if keep:
    assert keep_step_buffers(), "mallopt refused"
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = TrainConfig(hidden=hidden, batch=batch, seq_len=seq)
model = CharLSTM(cfg.model_config(65)).train()
opt = torch.optim.Adam(model.parameters(), 2e-3)
x, y = torch.randint(0, 65, (batch, seq)), torch.randint(0, 65, (batch, seq))
times = []
for i in range(steps + 2):
    t = time.perf_counter()
    logits, _ = model(x)
    loss = F.cross_entropy(logits.reshape(-1, 65), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    if i >= 2:  # the first two steps allocate everything for the first time either way
        times.append(time.perf_counter() - t)
    if i == 1:
        faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
print(json.dumps({"chars_per_s": batch * seq / statistics.median(times), "faults_per_step": faults / steps}))
"""


def run(keep: bool, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    if not keep:
        env["LSTMTUI_HEAP"] = "glibc"  # not even the one-arena setting lstmtui.core makes on import
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "1" if keep else "0",
            str(args.hidden),
            str(args.batch),
            str(args.seq),
            str(args.steps),
            str(args.threads),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {"glibc default": [], "lstmtui": []}
    for _ in range(args.rounds):
        results["glibc default"].append(run(False, args))
        results["lstmtui"].append(run(True, args))
    medians = {}
    print(f"2x{args.hidden}, batch {args.batch} x seq {args.seq}, {args.steps} steps per run, {args.rounds} runs each")
    for name, runs in results.items():
        cps = statistics.median(r["chars_per_s"] for r in runs)
        faults = statistics.median(r["faults_per_step"] for r in runs)
        medians[name] = cps
        print(
            f"  {name:14} {cps:10,.0f} chars/s  {faults:10,.0f} minor faults per step  "
            f"(runs: {', '.join(format(r['chars_per_s'], ',.0f') for r in runs)})"
        )
    print(f"  ratio lstmtui / default: {medians['lstmtui'] / medians['glibc default']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
