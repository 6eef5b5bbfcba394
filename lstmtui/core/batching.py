"""Truncated back-propagation through time over contiguous streams (the char-rnn method).

The text is cut into ``batch`` contiguous streams; step k of an epoch consumes characters
``[k*seq_len, (k+1)*seq_len)`` of every stream and predicts the character after each one, so
every position of the streams is predicted exactly once per epoch and the hidden state can be
carried from one step to the next. Stream i holds characters ``[i*L, (i+1)*L]`` (L+1 of them,
the last one shared with the next stream as a target only); the fewer than ``batch`` characters
left over at the very end of the text are not predicted.

A data-parallel rank trains a contiguous block of the streams (``rows``): the streams, and so the
epoch, are the same whatever the number of ranks. On CUDA, windows are staged in a ring of pinned
host buffers and copied with ``non_blocking``, so the host never waits for a copy to finish.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lstmtui.core.errors import CorpusError

# Pinned memory the staging buffers may take: past it, fewer buffers, and the host may then wait for
# a copy to finish before it refills a buffer (only with windows of tens of megabytes).
MAX_STAGING_BYTES = 256 * 2**20


class StreamBatcher:
    """Yields (inputs, targets) windows of shape (streams, <=seq_len) over contiguous streams.

    ``batch`` is the number of streams the text is cut into; ``rows`` (default: all) the ones this
    batcher yields. ``staging`` > 0 stages windows through that many host buffers (pinned for CUDA),
    more than the steps the caller runs without waiting for the device.
    """

    def __init__(
        self,
        data: np.ndarray,
        batch: int,
        seq_len: int,
        device: torch.device | str = "cpu",
        rows: slice | None = None,
        staging: int = 0,
    ) -> None:
        self.batch = batch
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.stream_len = (len(data) - 1) // batch
        if self.stream_len < 1:
            raise CorpusError(
                f"the text has {len(data)} characters, too few for {batch} parallel streams; "
                f"use a longer corpus or a smaller batch size",
                "batch",
            )
        n = batch * self.stream_len
        rows = rows or slice(0, batch)
        # Views, not copies: a memory-mapped corpus stays on disk until a window is read.
        self.inputs = data[:n].reshape(batch, self.stream_len)[rows]
        self.targets = data[1 : n + 1].reshape(batch, self.stream_len)[rows]
        self.steps = math.ceil(self.stream_len / seq_len)
        self._stage = _StagingRing(staging, len(self.inputs), seq_len, self.device) if staging > 0 else None

    @property
    def chars_per_epoch(self) -> int:
        """Number of predicted positions in one epoch."""
        return self.batch * self.stream_len

    def window(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k-th window of the epoch as int64 tensors on the batcher's device."""
        if not 0 <= k < self.steps:
            raise IndexError(f"window {k} outside 0..{self.steps - 1}")
        start = k * self.seq_len
        end = min(start + self.seq_len, self.stream_len)
        if self._stage is not None:
            return self._stage.copy(self.inputs[:, start:end], self.targets[:, start:end], self.device)
        x = torch.from_numpy(self.inputs[:, start:end].astype(np.int64))  # astype copies: the corpus is read-only
        y = torch.from_numpy(self.targets[:, start:end].astype(np.int64))
        if self.device.type != "cpu":
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y

    def __iter__(self):
        return (self.window(k) for k in range(self.steps))

    def __len__(self) -> int:
        return self.steps


class _StagingRing:
    """Host buffers (pinned for CUDA) windows are copied through to the device, reused once their copy is done."""

    def __init__(self, depth: int, rows: int, seq_len: int, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        depth = max(2, min(depth, MAX_STAGING_BYTES // (16 * rows * seq_len)))
        buffers = [torch.empty(2 * rows * seq_len, dtype=torch.int64) for _ in range(depth)]
        self.buffers = [b.pin_memory() for b in buffers] if self.cuda else buffers
        self.copied: list[torch.cuda.Event | None] = [None] * depth
        self.next = 0

    def copy(self, inputs: np.ndarray, targets: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``inputs`` and ``targets`` on ``device`` as int64, copied asynchronously from a staging buffer."""
        slot = self.next
        self.next = (slot + 1) % len(self.buffers)
        event = self.copied[slot]
        if event is not None:
            event.synchronize()  # at once unless the caller runs more steps ahead than there are buffers
        rows, width = inputs.shape
        staged = self.buffers[slot][: 2 * rows * width].view(2, rows, width)
        host = staged.numpy()
        host[0] = inputs
        host[1] = targets
        if not self.cuda:
            on_device = staged.to(device, copy=True)  # the buffer is reused: the window must not alias it
        else:
            on_device = staged.to(device, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
            self.copied[slot] = done
        return on_device[0], on_device[1]
