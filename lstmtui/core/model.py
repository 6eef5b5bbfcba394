"""CharLSTM: per-character input encoding, stacked nn.LSTM, dropout, and a dense softmax head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lstmtui.core.config import ModelConfig

State = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class LayerWeights:
    """One LSTM layer's parameters in PyTorch's layout: gate rows in i, f, g, o order."""

    weight_ih: torch.Tensor  # (4 * hidden, input size)
    weight_hh: torch.Tensor  # (4 * hidden, hidden)
    bias_ih: torch.Tensor  # (4 * hidden,)
    bias_hh: torch.Tensor  # (4 * hidden,)


@dataclass(frozen=True)
class StepWeights:
    """Every tensor a hand-written step of the network needs, detached from autograd."""

    embedding: torch.Tensor | None  # (vocab, embedding dim); None: the input is one-hot
    layers: tuple[LayerWeights, ...]
    head_weight: torch.Tensor  # (vocab, hidden)
    head_bias: torch.Tensor  # (vocab,)

    @property
    def hidden(self) -> int:
        """The LSTM's hidden size."""
        return self.layers[0].weight_hh.shape[1]


class CharLSTM(nn.Module):
    """A stacked character-level LSTM language model.

    ``forward(x, state)`` takes int64 character ids of shape (batch, time) and returns logits of
    shape (batch, time, vocab) and the new (h, c) state, each (layers, batch, hidden).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim) if config.input == "embedding" else None
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

    def last_logits(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Like forward, but the logits of the last position only, (batch, 1, vocab).

        Feeding a long prime needs only the next character's distribution; the head then runs
        once instead of once per position.
        """
        out, new_state = self.lstm(self.encode_input(x), state)
        return self.head(self.drop(out[:, -1:])), new_state

    def step_weights(self) -> StepWeights:
        """The parameters as typed tensors (shared with the model, no copies) for a single-step cell."""
        lstm = self.lstm

        def layer(k: int) -> LayerWeights:
            return LayerWeights(
                weight_ih=getattr(lstm, f"weight_ih_l{k}").detach(),
                weight_hh=getattr(lstm, f"weight_hh_l{k}").detach(),
                bias_ih=getattr(lstm, f"bias_ih_l{k}").detach(),
                bias_hh=getattr(lstm, f"bias_hh_l{k}").detach(),
            )

        return StepWeights(
            embedding=None if self.embedding is None else self.embedding.weight.detach(),
            layers=tuple(layer(k) for k in range(lstm.num_layers)),
            head_weight=self.head.weight.detach(),
            head_bias=self.head.bias.detach(),
        )

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
