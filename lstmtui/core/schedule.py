"""Learning-rate schedule: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.

Progress is measured in steps, or, under a time budget, in whichever of steps and wall time is
further along, so a budgeted run ends with the learning rate fully decayed.
"""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_lr_ratio: float, time_fraction: float = 0.0) -> float:
    """Multiplier of the peak learning rate at a given step (0-based) of ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max((step - warmup_steps) / span, time_fraction))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
