"""Training settings, their defaults and their validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from lstmtui.core.errors import ConfigError

INPUT_MODES = ("onehot", "embedding")
PRECISIONS = ("fp32", "bf16")
MAX_HIDDEN = 8192
MAX_LAYERS = 16
MAX_BATCH = 8192
MAX_SEQ_LEN = 10000
MAX_EMBEDDING_DIM = 4096

# Each setting in words, as error messages and forms name it (the CLI adds its --flag where it reports).
SETTING_NAMES = {
    "vocab_size": "vocabulary size",
    "hidden": "hidden size",
    "layers": "layers",
    "dropout": "dropout",
    "input": "input encoding",
    "embedding_dim": "embedding width",
    "seq_len": "sequence length",
    "batch": "batch size",
    "epochs": "epochs",
    "lr": "learning rate",
    "min_lr_ratio": "final learning-rate ratio",
    "warmup_steps": "warm-up steps",
    "weight_decay": "weight decay",
    "grad_clip": "gradient clip",
    "seed": "seed",
    "val_fraction": "validation fraction",
    "device": "device",
    "threads": "threads",
    "precision": "precision",
    "eval_every": "validation interval (steps)",
    "eval_max_chars": "validation characters per check",
    "sample_every": "sample interval (steps)",
    "sample_length": "sample length",
    "sample_temperature": "sample temperature",
    "early_stop_patience": "early-stop patience (epochs)",
    "save_every_min": "save interval (minutes)",
    "max_steps": "step limit",
    "time_budget_s": "time budget (seconds)",
}


@dataclass
class ModelConfig:
    """The architecture of a CharLSTM: everything needed to rebuild it."""

    vocab_size: int
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    input: str = "embedding"
    embedding_dim: int = 64

    def validate(self) -> ModelConfig:
        """Raise ConfigError for impossible sizes; return self."""
        _int_range("vocab_size", self.vocab_size, 2, 1 << 20)
        _int_range("hidden", self.hidden, 1, MAX_HIDDEN)
        _int_range("layers", self.layers, 1, MAX_LAYERS)
        _float_range("dropout", self.dropout, 0.0, 0.95)
        _choice("input", self.input, INPUT_MODES)
        _int_range("embedding_dim", self.embedding_dim, 1, MAX_EMBEDDING_DIM)
        return self

    @property
    def input_size(self) -> int:
        """Width of the first LSTM layer's input."""
        return self.vocab_size if self.input == "onehot" else self.embedding_dim

    def parameter_count(self) -> int:
        """Number of trainable parameters, computed from the architecture alone."""
        h, v = self.hidden, self.vocab_size
        n = 0 if self.input == "onehot" else v * self.embedding_dim
        for layer in range(self.layers):
            inp = self.input_size if layer == 0 else h
            n += 4 * h * (inp + h) + 8 * h  # W_ih, W_hh, b_ih, b_hh
        return n + h * v + v

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dict, ignoring unknown keys, and validate."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()


@dataclass
class TrainConfig:
    """Everything that steers training; defaults are the product's stated ones."""

    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    input: str = "embedding"
    embedding_dim: int = 64
    seq_len: int = 128
    batch: int = 64
    epochs: int = 20
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 1337
    val_fraction: float = 0.1
    device: str = "auto"
    threads: int = 0
    precision: str = "fp32"
    eval_every: int = 500
    eval_max_chars: int = 200_000
    sample_every: int = 500
    sample_length: int = 200
    sample_temperature: float = 0.8
    early_stop_patience: int = 0
    save_every_min: float = 5.0
    max_steps: int = 0
    time_budget_s: float = 0.0

    def validate(self) -> TrainConfig:
        """Raise ConfigError for any impossible setting; return self."""
        self.model_config(vocab_size=2).validate()
        _int_range("seq_len", self.seq_len, 1, MAX_SEQ_LEN)
        _int_range("batch", self.batch, 1, MAX_BATCH)
        _int_range("epochs", self.epochs, 1, 1_000_000)
        _float_range("lr", self.lr, 0.0, 100.0, low_open=True)
        _float_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        _int_range("warmup_steps", self.warmup_steps, 0, 10_000_000)
        _float_range("weight_decay", self.weight_decay, 0.0, 10.0)
        _float_range("grad_clip", self.grad_clip, 0.0, 1e6)
        _int_range("seed", self.seed, 0, 2**63 - 1)
        _float_range("val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)
        _int_range("threads", self.threads, 0, 1024)
        _choice("precision", self.precision, PRECISIONS)
        _int_range("eval_every", self.eval_every, 0, 10**9)
        _int_range("eval_max_chars", self.eval_max_chars, 1, 10**12)
        _int_range("sample_every", self.sample_every, 0, 10**9)
        _int_range("sample_length", self.sample_length, 0, 10**7)
        _float_range("sample_temperature", self.sample_temperature, 0.0, 100.0)
        _int_range("early_stop_patience", self.early_stop_patience, 0, 10**6)
        _float_range("save_every_min", self.save_every_min, 0.0, 10**6)
        _int_range("max_steps", self.max_steps, 0, 10**12)
        _float_range("time_budget_s", self.time_budget_s, 0.0, 10**8)
        return self

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The architecture part of these settings for a given vocabulary size."""
        return ModelConfig(
            vocab_size=vocab_size,
            hidden=self.hidden,
            layers=self.layers,
            dropout=self.dropout,
            input=self.input,
            embedding_dim=self.embedding_dim,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older or newer profiles), and validate."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known}).validate()


def estimate_training_bytes(model: ModelConfig, batch: int, seq_len: int) -> int:
    """Rough peak memory of one training step in float32: weights, Adam state, activations."""
    params = model.parameter_count()
    weights = params * 4 * 4  # weights, gradients, two Adam moments
    per_char = model.layers * model.hidden * 4 * 8 + model.vocab_size * 4 * 3 + model.input_size * 4
    activations = batch * seq_len * per_char
    return weights + activations


def setting_name(field: str) -> str:
    """A config field as words for messages and forms: 'seq_len' -> 'sequence length'."""
    return SETTING_NAMES.get(field, field.replace("_", " "))


def _int_range(field: str, value: Any, low: int, high: int) -> None:
    name = setting_name(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, not {value!r}", field)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}", field)


def _float_range(field: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    name = setting_name(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}", field)
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{name} must be in {bracket}{low}, {high}], not {value}", field)


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{setting_name(field)} must be one of {', '.join(choices)}, not {value!r}", field)
