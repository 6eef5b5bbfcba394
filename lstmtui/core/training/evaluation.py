"""What the loop measures and shows: the validation loss, and samples from the current weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lstmtui.core.batching import StreamBatcher
from lstmtui.core.config import TrainConfig
from lstmtui.core.corpus import Vocab
from lstmtui.core.model import CharLSTM
from lstmtui.core.sampling import sample_text


def evaluate(model: CharLSTM, data: np.ndarray, batch: int, seq_len: int, device: torch.device) -> float:
    """Mean cross-entropy (nats per char) of the model over a token array, state carried."""
    streams = max(1, min(batch, (len(data) - 1) // max(1, seq_len)))
    batcher = StreamBatcher(data, streams, seq_len, device)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for x, y in batcher:
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train(was_training)
    return total / max(1, count)


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
