"""CharLSTM: per-character input encoding, stacked nn.LSTM, dropout, and a dense softmax head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lstmtui.core.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]


class CharLSTM(nn.Module):
    """A stacked character-level LSTM language model.

    ``forward(x, state)`` takes int64 character ids of shape (batch, time) and returns logits of
    shape (batch, time, vocab) and the new (h, c) state, each (layers, batch, hidden).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.embedding = (
            nn.Embedding(config.vocab_size, config.embedding_dim) if config.input == "embedding" else None
        )
        self.lstm = nn.LSTM(
            input_size=config.input_size,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.vocab_size)

    def encode_input(self, x: torch.Tensor) -> torch.Tensor:
        """Map character ids to the first layer's input: one-hot rows or learned embeddings."""
        if self.embedding is not None:
            return self.embedding(x)
        # One-hot is tiny next to the LSTM's own work (vocab << 4*hidden); kept exact on purpose.
        return F.one_hot(x, self.config.vocab_size).to(self.head.weight.dtype)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Return logits (batch, time, vocab) and the new LSTM state."""
        out, new_state = self.lstm(self.encode_input(x), state)
        return self.head(self.drop(out)), new_state

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> State:
        """Zero (h, c) state for a batch."""
        device = device or self.head.weight.device
        shape = (self.config.layers, batch, self.config.hidden)
        zeros = torch.zeros(shape, device=device, dtype=self.head.weight.dtype)
        return zeros, zeros.clone()

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def flops_per_char(config: ModelConfig, backward: bool = True) -> float:
    """Multiply-add FLOPs (2 per MAC) to process one character, forward and optionally backward."""
    h, v = config.hidden, config.vocab_size
    fwd = 0.0
    for layer in range(config.layers):
        inp = config.input_size if layer == 0 else h
        if layer == 0 and config.input == "onehot":
            inp = v  # counted as the dense product the one-hot definition implies
        fwd += 2 * 4 * h * (inp + h)
    fwd += 2 * h * v
    return fwd * 3 if backward else fwd
