"""What the loop measures and shows: validation figures, and samples from the current weights.

Two validation figures, both the mean cross-entropy in nats per character:

- the full-split figure scores every character of the split once (but for fewer than
  ``EVAL_STREAMS`` at its very end), read as ``EVAL_STREAMS`` contiguous streams whatever the
  training batch or the number of processes; each stream but the first starts from the state the
  ``WARMUP_CHARS`` characters before it leave, so the streams add no cold starts the text has not;
- the estimate, when the split is larger than ``--eval-max-chars`` allows: ``ESTIMATE_WINDOWS``
  windows of equal length, one at a fixed pseudo-random place in each of as many equal parts of
  the split (the same places every time), each scored after an uncounted warm-up of
  ``WARMUP_CHARS`` characters. Its mean is an unbiased estimate of the full-split figure; its
  standard error is the spread of the window means over the square root of their number.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lstmtui.core.config import TrainConfig
from lstmtui.core.corpus import Vocab
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import sample_text

EVAL_STREAMS = 32  # streams of a full-split measurement: fixed, so the figure never depends on --batch
EVAL_CHUNK = 256  # time steps per forward pass (bounds the memory of the logits)
ESTIMATE_WINDOWS = 128  # windows of an estimate (fewer when --eval-max-chars is small)
MIN_WINDOW = 64  # scored characters of a window at the least
WARMUP_CHARS = 100  # uncounted characters that bring a window's state to what a continuous read has
FULL_SHARE = 0.5  # an estimate is made only when it reads at most this share of what the full split costs
ESTIMATE_SEED = 20_240_917  # where the windows lie in their parts: fixed, so every estimate reads the same text


@dataclass(frozen=True)
class ValFigure:
    """A validation loss in nats per character; an estimate carries its standard error."""

    loss: float
    stderr: float | None = None  # None: a full-split measurement (no sampling error)
    estimate: bool = False
    chars: int = 0  # characters scored
    seconds: float = 0.0


@dataclass(frozen=True)
class WindowPlan:
    """Where an estimate reads: the first scored position of each window, their length and warm-up."""

    starts: tuple[int, ...]
    length: int
    warmup: int

    @classmethod
    def for_split(cls, n_chars: int, max_chars: int) -> WindowPlan | None:
        """The estimate's windows for a split of ``n_chars``, scoring at most ``max_chars``; None when the
        split is small enough that the full figure costs little more."""
        predicted = n_chars - 1
        count = max(2, min(ESTIMATE_WINDOWS, max_chars // MIN_WINDOW))
        length = max(1, max_chars // count)
        warmup = WARMUP_CHARS
        if count * (length + warmup) > FULL_SHARE * predicted:
            return None
        span = predicted - length - warmup  # window starts lie in [warmup, warmup + span]
        part = span / count
        offsets = np.random.default_rng(ESTIMATE_SEED).random(count)
        starts = tuple(warmup + int(part * (i + offsets[i])) for i in range(count))
        return cls(starts, length, warmup)

    @property
    def chars_read(self) -> int:
        """Characters an estimate feeds the model, warm-up included."""
        return len(self.starts) * (self.length + self.warmup)


def full_split_streams(n_chars: int) -> tuple[tuple[int, ...], int]:
    """(first position of each stream, stream length) of a full-split measurement."""
    predicted = n_chars - 1
    streams = max(1, min(EVAL_STREAMS, predicted // EVAL_CHUNK))
    length = predicted // streams
    return tuple(i * length for i in range(streams)), length


def _stream_sums(
    model: CharLSTM, data: np.ndarray, starts: tuple[int, ...], length: int, warmup: int, device: torch.device
) -> np.ndarray:
    """Summed cross-entropy of each stream's ``length`` scored characters, after its warm-up.

    A stream starting fewer than ``warmup`` characters into the data starts cold (the split's own start).
    """
    first = np.asarray(starts, dtype=np.int64)[:, None]
    was_training = model.training
    model.eval()
    state = None
    sums = torch.zeros(len(starts), dtype=torch.float64, device=device)
    try:
        with torch.inference_mode():
            if warmup > 0:
                cols = np.maximum(first - warmup + np.arange(warmup)[None, :], 0)
                _, state = model(torch.from_numpy(data[cols].astype(np.int64)).to(device))
                cold = torch.from_numpy(first[:, 0] < warmup).to(device)
                state = tuple(s.masked_fill(cold[None, :, None], 0.0) for s in state)
            for c0 in range(0, length, EVAL_CHUNK):
                cols = first + np.arange(c0, min(length, c0 + EVAL_CHUNK))[None, :]
                x = torch.from_numpy(data[cols].astype(np.int64)).to(device)
                y = torch.from_numpy(data[cols + 1].astype(np.int64)).to(device)
                logits, state = model(x, state)
                loss = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")
                sums += loss.sum(dim=1, dtype=torch.float64)
    finally:
        model.train(was_training)
    return sums.cpu().numpy()


def full_split_loss(model: CharLSTM, data: np.ndarray, device: torch.device) -> ValFigure:
    """The full-split figure of the model over a token array (see the module docstring)."""
    t0 = time.perf_counter()
    starts, length = full_split_streams(len(data))
    if length < 1:
        return ValFigure(math.nan)
    sums = _stream_sums(model, data, starts, length, WARMUP_CHARS, device)
    chars = len(starts) * length
    return ValFigure(float(sums.sum() / chars), chars=chars, seconds=time.perf_counter() - t0)


def estimated_loss(model: CharLSTM, data: np.ndarray, plan: WindowPlan, device: torch.device) -> ValFigure:
    """The estimate of the full-split figure from the plan's windows, with its standard error."""
    t0 = time.perf_counter()
    means = _stream_sums(model, data, plan.starts, plan.length, plan.warmup, device) / plan.length
    stderr = float(means.std(ddof=1) / math.sqrt(len(means)))
    chars = len(means) * plan.length
    return ValFigure(float(means.mean()), stderr, True, chars, time.perf_counter() - t0)


def evaluate(model: CharLSTM, data: np.ndarray, device: torch.device) -> float:
    """Full-split mean cross-entropy (nats per char) of the model over a token array."""
    return full_split_loss(model, data, device).loss


class Validation:
    """A run's validation split with its estimate windows; times what it measures to predict the next."""

    def __init__(self, data: np.ndarray, max_chars: int, device: torch.device) -> None:
        self.data = data
        self.device = device
        self.plan = WindowPlan.for_split(len(data), max_chars)
        # the slowest evaluation time per character read yet, for estimates and full reads apart (an
        # estimate reads its many windows side by side, faster per character than 32 streams do): the
        # time kept back for the last validation of a budgeted run must hold on a machine whose speed varies
        self._seconds_per_char: dict[bool, float] = {}  # full? -> seconds

    @property
    def estimates(self) -> bool:
        """Whether checks between epoch ends estimate (the split is too large to read whole each time)."""
        return self.plan is not None

    def check(self, model: CharLSTM) -> ValFigure:
        """The figure of a check between epoch ends: the estimate, or the full figure of a small split."""
        if self.plan is None:
            return self.full(model)
        figure = estimated_loss(model, self.data, self.plan, self.device)
        self._timed(False, figure.seconds, self.plan.chars_read)
        return figure

    def full(self, model: CharLSTM) -> ValFigure:
        """The full-split figure."""
        figure = full_split_loss(model, self.data, self.device)
        self._timed(True, figure.seconds, self._full_chars_read())
        return figure

    def predicted_seconds(self, full: bool, fallback_chars_per_s: float) -> float:
        """How long a full measurement (or a check) will take: measured speed, else ``fallback_chars_per_s``."""
        full = full or self.plan is None
        chars = self._full_chars_read() if full else self.plan.chars_read
        rate = self._seconds_per_char.get(full, self._seconds_per_char.get(not full))
        if rate is not None:
            return chars * rate
        return chars / fallback_chars_per_s if fallback_chars_per_s > 0 else 0.0

    def final_seconds(self, fallback_chars_per_s: float) -> float:
        """How long the validation that ends a run takes: a check of the last weights, then (when checks
        estimate) the full-split figure of the kept ones."""
        check = self.predicted_seconds(False, fallback_chars_per_s)
        return check + (self.predicted_seconds(True, fallback_chars_per_s) if self.estimates else 0.0)

    def _full_chars_read(self) -> int:
        starts, length = full_split_streams(len(self.data))
        return len(starts) * (length + WARMUP_CHARS)

    def _timed(self, full: bool, seconds: float, chars: int) -> None:
        if chars > 0 and seconds > 0:
            self._seconds_per_char[full] = max(seconds / chars, self._seconds_per_char.get(full, 0.0))


def sample_prime(vocab: Vocab) -> str:
    """What a training sample starts from: a newline if the corpus has one, else its first character."""
    return "\n" if "\n" in vocab.chars else vocab.chars[0]


def training_sample(model: CharLSTM, vocab: Vocab, config: TrainConfig, step: int) -> tuple[str, str]:
    """(prime, text) sampled from a copy of the weights with a generator of its own, so training is undisturbed."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(config.seed * 1_000_003 + step)
    prime = sample_prime(vocab)
    text = sample_text(model, vocab, prime, config.sample_length, config.sample_temperature, generator=generator)
    return prime, text
