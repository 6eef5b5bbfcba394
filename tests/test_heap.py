"""The heap settings for training (core/heap.py): steps reuse their buffers instead of page-faulting them in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Trains the default-width model (its step buffers are 33 MB, above glibc's default mmap threshold)
# in a worker thread, as the TUI does, and counts the minor page faults of the last steps.
STEPS_SCRIPT = r"""
import json, resource, sys, threading
import lstmtui.core  # one malloc arena, set before any worker thread allocates
import torch, torch.nn.functional as F
from lstmtui.core.config import TrainConfig
from lstmtui.core.heap import keep_step_buffers
from lstmtui.core.model import CharLSTM

out = {}

def train():
    out["kept"] = keep_step_buffers()
    torch.manual_seed(0)
    cfg = TrainConfig(hidden=256, batch=64, seq_len=128)
    model = CharLSTM(cfg.model_config(65)).train()
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    x, y = torch.randint(0, 65, (64, 128)), torch.randint(0, 65, (64, 128))
    for i in range(5):
        if i == 2:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 65), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out["faults_per_step"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 3

torch.set_num_threads(1)
t = threading.Thread(target=train)
t.start()
t.join()
print(json.dumps(out))
"""


def faults(keep: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if not keep:
        env["LSTMTUI_HEAP"] = "glibc"  # glibc's own behaviour, one arena per thread included
    out = subprocess.run(
        [sys.executable, "-c", STEPS_SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_training_steps_in_a_worker_thread_reuse_their_buffers():
    default, kept = faults(False), faults(True)
    assert kept["kept"] is True
    assert default["kept"] is False  # LSTMTUI_HEAP=glibc turns the settings off
    # glibc's default maps and unmaps each large buffer every step (tens of thousands of faults);
    # kept, a step mostly touches pages it already has (9-40x fewer faults in runs so far).
    assert default["faults_per_step"] > 20_000, default
    assert kept["faults_per_step"] < default["faults_per_step"] / 4, (default, kept)


def test_heap_calls_are_safe_to_repeat():
    from lstmtui.core import heap

    first = heap.keep_step_buffers()
    assert heap.keep_step_buffers() == first
    heap.release_free_heap()
    assert heap.use_one_arena() in (True, False)
