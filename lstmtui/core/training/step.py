"""One optimisation step of truncated BPTT, the learning rate it runs at, and recovery from non-finite weights."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lstmtui.core.config import TrainConfig
from lstmtui.core.model import CharLSTM
from lstmtui.core.precision import autocast
from lstmtui.core.schedule import lr_factor
from lstmtui.core.training.progress import Progress

Hidden = tuple[torch.Tensor, torch.Tensor]


def learning_rate(
    progress: Progress,
    config: TrainConfig,
    steps_per_epoch: int,
    total_steps: int,
    time_fraction: float,
    ahead: int = 0,
) -> float:
    """The learning rate of the next step (or of the one ``ahead`` steps after it): the peak, scaled down
    after bad steps, on the schedule."""
    factor = lr_factor(
        progress.global_step(steps_per_epoch) + ahead,
        total_steps,
        config.warmup_steps,
        config.min_lr_ratio,
        time_fraction,
    )
    return progress.base_lr * progress.lr_scale * factor


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    hidden: Hidden | None,
    config: TrainConfig,
    device: torch.device,
    skip: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Hidden]:
    """One step on a window that never waits for the device: returns (loss, skipped, hidden state to carry).

    ``skipped`` is a bool tensor, true when the loss or the gradients were not finite (or ``skip``,
    an earlier step's flag, was true): the update was then not applied. Nothing is read back to the
    host, except the flag where the optimizer cannot skip on the device (see ``step_unless``).
    """
    with autocast(device, config.precision):
        logits, state = model(x, hidden)
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    # A non-finite loss makes every gradient NaN (a finite one is multiplied by 1, bit for bit), so the
    # gradient norm, which DDP makes the same on every rank, alone decides whether the step is skipped.
    (loss * torch.where(torch.isfinite(loss), 1.0, math.nan)).backward()
    clip = config.grad_clip if config.grad_clip > 0 else math.inf
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    skipped = ~torch.isfinite(norm)
    if skip is not None:
        skipped = skipped | skip
    step_unless(optimizer, skipped)
    # float32 like the weights, whatever the step ran in: checkpoints and resumes see one dtype
    return loss.detach(), skipped, (state[0].detach().float(), state[1].detach().float())


def step_unless(optimizer: torch.optim.Optimizer, skipped: torch.Tensor) -> None:
    """Apply the optimizer's update unless ``skipped``.

    A fused AdamW (on CUDA) takes the flag as ``found_inf`` and skips on the device, step count
    included, so the host never waits; any other optimizer has the flag read back, which on the
    CPU costs nothing.
    """
    if optimizer.defaults.get("fused"):
        optimizer.found_inf = skipped.float()
        optimizer.step()
    elif not bool(skipped):
        optimizer.step()


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
