"""Training steps the host does not wait for: a run of steps is queued on the device, then read once.

A chunk is up to ``sync_interval`` steps. Each step leaves its loss and a "skipped" flag on the
device; a skipped step (non-finite loss or gradients) also skips every later step of its chunk, so
nothing after it changes the weights. The read that ends a chunk copies the losses and flags to the
host in one go and, in a distributed run, sums them over the ranks together with rank 0's decision
(decisions.py) in one collective. A chunk never spans a step after which something is scheduled (a
validation, a sample, an epoch's end, the step limit), so everything after a read happens at the
same steps as it would with a read after every step.

On the CPU a read costs nothing and happens after every step (one process), which keeps the events
and results of a run exactly what they are step by step; CUDA and multi-process runs read every
few steps.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch

from lstmtui.core.config import TrainConfig
from lstmtui.core.distributed import World
from lstmtui.core.training.progress import Progress, RunState
from lstmtui.core.training.setup import Setup
from lstmtui.core.training.step import learning_rate, train_step

SYNC_EVERY_CUDA = 32  # steps between reads on a GPU: the host queues this far ahead
SYNC_EVERY_PROCESSES = 8  # steps between the decisions a multi-process CPU run shares


def sync_interval(device: torch.device, world: World, asked: int | None = None) -> int:
    """Steps between reads: ``asked``, else by device (1 for one CPU process: a read costs nothing there)."""
    if asked:
        return asked
    if device.type == "cuda":
        return SYNC_EVERY_CUDA
    return SYNC_EVERY_PROCESSES if world.joined else 1


def chunk_length(progress: Progress, config: TrainConfig, steps_per_epoch: int, every: int) -> int:
    """Steps of the next chunk: at most ``every``, ending at the next step something is scheduled after."""
    n = min(every, steps_per_epoch - progress.epoch_step)
    for interval in (config.eval_every, config.sample_every):
        if interval > 0:
            n = min(n, interval - progress.step % interval)
    if config.max_steps:
        n = min(n, config.max_steps - progress.step)
    return max(1, n)


@dataclass
class Chunk:
    """Steps queued without a read: their losses and flags on the device, what the host knows of them."""

    losses: list[torch.Tensor] = field(default_factory=list)
    skipped: list[torch.Tensor] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)  # characters each step trained on, over all ranks
    started: float = 0.0  # perf_counter when the first step was queued
    elapsed_at_start: float = 0.0  # the run's training time then
    hidden: tuple[torch.Tensor, torch.Tensor] | None = None  # the state after the last step

    def __len__(self) -> int:
        return len(self.losses)


@dataclass(frozen=True)
class ChunkRead:
    """A chunk as read back: the losses (mean over ranks) of the steps before the first skipped one."""

    losses: list[float]
    skipped_at: int | None  # index of the first skipped step; None when every step counted
    seconds: float  # wall time of the chunk, read included

    def step_times(self, chunk: Chunk) -> list[tuple[float, float]]:
        """(seconds, elapsed training time at its end) of each counted step, the chunk's time shared evenly."""
        each = self.seconds / max(1, len(chunk))
        return [(each, chunk.elapsed_at_start + (i + 1) * each) for i in range(len(self.losses))]


def run_chunk(
    setup: Setup, run: RunState, config: TrainConfig, steps: int, time_fraction: float, lock: threading.Lock
) -> Chunk:
    """Queue ``steps`` training steps on the epoch's next windows, carrying the hidden state; read nothing."""
    p, batcher, world = run.progress, setup.batcher, setup.world
    chunk = Chunk(started=time.perf_counter(), elapsed_at_start=run.elapsed(), hidden=run.hidden)
    skip = None
    for i in range(steps):
        lr = learning_rate(p, config, batcher.steps, setup.total_steps, time_fraction, ahead=i)
        for group in setup.optimizer.param_groups:
            group["lr"] = lr
        x, y = batcher.window(p.epoch_step + i)
        with lock, world.peers_lost():
            loss, skip, chunk.hidden = train_step(
                setup.step_model, setup.optimizer, x, y, chunk.hidden, config, setup.device, skip
            )
        chunk.losses.append(loss)
        chunk.skipped.append(skip)
        chunk.lrs.append(lr)
        chunk.chars.append(x.numel() * world.size)
    return chunk


def read_chunk(chunk: Chunk | None, world: World, stop: bool, decision: list[float]) -> tuple[ChunkRead, list[float]]:
    """Read a chunk back (one device read) and share rank 0's ``decision`` values (one collective).

    Every rank passes whether it was asked to stop; the returned decision carries their sum as its
    first value, followed by rank 0's ``decision``.
    """
    n = len(chunk) if chunk is not None else 0
    local: list[float] = []
    if n:
        local = torch.cat([torch.stack(chunk.losses).double(), torch.stack(chunk.skipped).double()]).tolist()
    summed, shared = world.exchange([*local, float(stop)], decision)
    losses, skipped = summed[:n], summed[n : 2 * n]
    skipped_at = next((i for i, flag in enumerate(skipped) if flag > 0), None)
    counted = losses if skipped_at is None else losses[:skipped_at]
    seconds = time.perf_counter() - chunk.started if chunk is not None else 0.0
    return ChunkRead([loss / world.size for loss in counted], skipped_at, seconds), [summed[2 * n], *shared]
