"""Truncated back-propagation through time over contiguous streams (the char-rnn method).

The text is cut into ``batch`` contiguous streams; step k of an epoch consumes characters
``[k*seq_len, (k+1)*seq_len)`` of every stream and predicts the character after each one, so
every position of the streams is predicted exactly once per epoch and the hidden state can be
carried from one step to the next. Stream i holds characters ``[i*L, (i+1)*L]`` (L+1 of them,
the last one shared with the next stream as a target only); the fewer than ``batch`` characters
left over at the very end of the text are not predicted.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lstmtui.core.errors import CorpusError


class StreamBatcher:
    """Yields (inputs, targets) windows of shape (batch, <=seq_len) over contiguous streams."""

    def __init__(self, data: np.ndarray, batch: int, seq_len: int, device: torch.device | str = "cpu") -> None:
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
        # Views, not copies: a memory-mapped corpus stays on disk until a window is read.
        self.inputs = data[:n].reshape(batch, self.stream_len)
        self.targets = data[1 : n + 1].reshape(batch, self.stream_len)
        self.steps = math.ceil(self.stream_len / seq_len)

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
        x = torch.from_numpy(self.inputs[:, start:end].astype(np.int64))  # astype copies: the corpus is read-only
        y = torch.from_numpy(self.targets[:, start:end].astype(np.int64))
        if self.device.type != "cpu":
            return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        return x, y

    def __iter__(self):
        return (self.window(k) for k in range(self.steps))

    def __len__(self) -> int:
        return self.steps
