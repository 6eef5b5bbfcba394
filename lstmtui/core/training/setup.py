"""What a prepared session trains with, and the checks made before anything large is allocated."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lstmtui.core.batching import StreamBatcher
from lstmtui.core.config import ModelConfig, estimate_training_bytes
from lstmtui.core.device import available_memory
from lstmtui.core.distributed import World
from lstmtui.core.errors import ConfigError
from lstmtui.core.model import CharLSTM


@dataclass(frozen=True)
class Setup:
    """The device, data, model and optimizer of a prepared session, and its place in a distributed run.

    ``batcher`` yields this process's streams; ``trainer`` is what a training step calls (DDP around
    ``model`` in a distributed run); everything else (evaluation, samples, saves) uses ``model``.
    """

    device: torch.device
    batcher: StreamBatcher
    val_data: np.ndarray
    model: CharLSTM
    optimizer: torch.optim.Optimizer
    total_steps: int
    trainer: nn.Module | None = None
    world: World = field(default_factory=World)

    @property
    def step_model(self) -> nn.Module:
        """The module a training step calls."""
        return self.trainer if self.trainer is not None else self.model


def check_memory(model_config: ModelConfig, batch: int, seq_len: int, device: torch.device) -> None:
    """Refuse, before allocating anything, settings whose estimated memory need exceeds the device's."""
    need = estimate_training_bytes(model_config, batch, seq_len)
    have = available_memory(device)
    if have is not None and need > 0.8 * have:
        raise ConfigError(
            f"these settings need about {need / 2**30:.1f} GiB to train "
            f"({model_config.parameter_count():,} parameters, batch size {batch}, sequence length {seq_len}) "
            f"but {device.type} has {have / 2**30:.1f} GiB; "
            f"lower the hidden size, layers, batch size or sequence length"
        )


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's random generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def optimizer_for(
    model: CharLSTM, lr: float, weight_decay: float, device: torch.device | None = None
) -> torch.optim.Optimizer:
    """AdamW: decoupled weight decay (with none it is Adam, bit for bit); fused on CUDA, where it also skips
    a non-finite step on the device (step.step_unless), so the host never waits for the step."""
    fused = device is not None and device.type == "cuda"
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None)
