"""One optimisation step of truncated BPTT, the learning rate it runs at, and recovery from non-finite weights."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lstmtui.core.config import TrainConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.precision import autocast
from lstmtui.core.schedule import lr_factor
from lstmtui.core.training.progress import Progress

Hidden = tuple[torch.Tensor, torch.Tensor]


def learning_rate(
    progress: Progress, config: TrainConfig, steps_per_epoch: int, total_steps: int, time_fraction: float
) -> float:
    """The learning rate of the next step: the peak, scaled down after bad steps, on the schedule."""
    factor = lr_factor(
        progress.global_step(steps_per_epoch), total_steps, config.warmup_steps, config.min_lr_ratio, time_fraction
    )
    return progress.base_lr * progress.lr_scale * factor


def train_step(
    model: CharLSTM,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    hidden: Hidden | None,
    config: TrainConfig,
    device: torch.device,
) -> tuple[float, Hidden | None]:
    """One step on a window; returns (loss, the hidden state to carry), or (loss, None) when the loss or
    the gradients are not finite and the update was skipped."""
    with autocast(device, config.precision):
        logits, state = model(x, hidden)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    value = loss.item()
    if not math.isfinite(value):
        return value, None
    loss.backward()
    clip = config.grad_clip if config.grad_clip > 0 else math.inf
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return value, None
    optimizer.step()
    # float32 like the weights, whatever the step ran in: checkpoints and resumes see one dtype
    return value, (state[0].detach().float(), state[1].detach().float())


def recover_weights(
    model: CharLSTM,
    optimizer: torch.optim.Optimizer,
    lock: threading.Lock,
    finite_weights: Callable[[], dict[str, torch.Tensor] | None],
) -> str | None:
    """If the weights themselves went non-finite, load the best finite ones from ``finite_weights()``.

    Returns a note for the warning: '' when the weights were fine, None when nothing finite is left.
    """
    with torch.no_grad():
        if all(torch.isfinite(p).all() for p in model.parameters()):
            return ""
        source = finite_weights()
        if source is None:
            return None
        with lock:
            model.load_state_dict(source)
            # Adam's moments may hold the same non-finite values: start them afresh.
            optimizer.state.clear()
    return ", weights restored from the best finite ones"
