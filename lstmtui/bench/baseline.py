"""The seed-style baseline: the Keras LSTM text-generation example's training method, for comparison.

One-hot windows of ``window`` characters taken every ``stride`` characters of the training split, a
stacked LSTM that predicts only the character after each window (from a zero state), Adam, batch 64.
It is measured with the same validation split as lstmtui (the contiguous tail), by ``window_loss``:
mean nats of predicting each of a fixed set of evenly spaced validation characters from the
``window`` characters before it, the way this model is trained and used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lstmtui.core.config import ModelConfig
from lstmtui.core.heap import keep_step_buffers
from lstmtui.core.model import CharLSTM

WINDOW = 40
STRIDE = 3
BATCH = 64
LR = 1e-3  # Keras' Adam default


class BaselineTrainer:
    """Trains a CharLSTM (one-hot input) on fixed windows, predicting only each window's next char."""

    def __init__(
        self,
        train: np.ndarray,
        vocab_size: int,
        *,
        hidden: int = 256,
        layers: int = 2,
        window: int = WINDOW,
        stride: int = STRIDE,
        batch: int = BATCH,
        lr: float = LR,
        seed: int = 1337,
    ) -> None:
        torch.manual_seed(seed)
        keep_step_buffers()  # as lstmtui's own training does, so the comparison is like for like
        self.train = np.asarray(train)
        self.window, self.batch = window, batch
        self.starts = np.arange(0, len(self.train) - window, stride, dtype=np.int64)
        if len(self.starts) < 1:
            raise ValueError("the training split is shorter than one baseline window")
        self.model = CharLSTM(
            ModelConfig(vocab_size=vocab_size, hidden=hidden, layers=layers, dropout=0.0, input="onehot")
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.starts))
        self.pos = 0
        self.steps = 0
        self.offsets = np.arange(window + 1, dtype=np.int64)

    def step(self) -> float:
        """One Adam step on the next shuffled batch of windows; returns the batch loss."""
        if self.pos + self.batch > len(self.order):
            self.order = self.rng.permutation(len(self.starts))  # Keras shuffles every epoch
            self.pos = 0
        idx = self.starts[self.order[self.pos : self.pos + self.batch]]
        self.pos += self.batch
        rows = torch.from_numpy(self.train[idx[:, None] + self.offsets].astype(np.int64))
        x, y = rows[:, :-1], rows[:, -1]
        self.model.train()
        logits = last_logits(self.model, x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        return float(loss.item())

    def train_for(self, seconds: float, on_step: Callable[[float], None] | None = None) -> int:
        """Train for a wall-clock duration; ``on_step(training_seconds)`` after each step. Returns steps."""
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.step()
            if on_step is not None:
                on_step(time.perf_counter() - start)
        return self.steps


def last_logits(model: CharLSTM, x: torch.Tensor) -> torch.Tensor:
    """Logits for the character after each window only (the head runs at the last position)."""
    out, _ = model.lstm(model.encode_input(x))
    return model.head(model.drop(out[:, -1]))


def window_positions(n: int, window: int = WINDOW, count: int = 4096) -> np.ndarray:
    """Evenly spaced positions of a validation split that have ``window`` characters before them."""
    if n <= window:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(window, n - 1, num=min(count, n - window)).astype(np.int64))


def window_loss(model: CharLSTM, val: np.ndarray, window: int = WINDOW, count: int = 4096, batch: int = 512) -> float:
    """Mean nats of predicting each chosen validation character from the ``window`` before it."""
    val = np.asarray(val)
    pos = window_positions(len(val), window, count)
    if len(pos) == 0:
        return math.nan
    offsets = np.arange(-window, 1, dtype=np.int64)
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(pos), batch):
            rows = torch.from_numpy(val[pos[i : i + batch, None] + offsets].astype(np.int64))
            logits = last_logits(model, rows[:, :-1])
            total += F.cross_entropy(logits, rows[:, -1], reduction="sum").item()
    model.train(was_training)
    return total / len(pos)
