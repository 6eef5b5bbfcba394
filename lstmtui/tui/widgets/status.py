"""The training status: state, epoch and step progress with ETA, speed, learning rate, best bpc."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from lstmtui.core.units import MISSING, format_count, format_duration, format_loss, unit_label

STATE_STYLES = {
    "starting": "dim",
    "preparing": "yellow",
    "training": "bold green",
    "paused": "bold yellow",
    "stopping": "yellow",
    "stopped": "bold magenta",
    "finished": "bold cyan",
    "failed": "bold red",
    "idle": "dim",
}
STATE_ICONS = {"training": "▶", "paused": "⏸", "stopped": "■", "finished": "✔", "failed": "✖", "preparing": "…"}
LN2 = math.log(2)


@dataclass(frozen=True)
class TrainingStats:
    """Everything the status panel shows: one value, replaced (never changed) as the run's messages arrive."""

    state: str = "starting"
    detail: str = ""
    profile: str = ""
    device: str = ""
    params: int = 0
    prepare: str = ""
    epoch: int = 0  # the epoch under way, counted from 1 (as events count it)
    epochs: int = 0
    epoch_step: int = 0
    steps_per_epoch: int = 0
    step: int = 0
    total_steps: int = 0
    total_forecast: bool = False  # the total is where a time budget is forecast to end
    loss: float = math.nan
    lr: float = math.nan
    chars_per_s: float = 0.0
    eta_s: float = math.nan
    elapsed_s: float = 0.0
    val_bpc: float = math.nan
    best_bpc: float = math.nan
    val_estimate: bool = False  # the last check estimated the full split (from windows spread over it)
    val_stderr: float = math.nan  # that estimate's standard error, in nats per character
    best_estimate: bool = False  # the best is an estimate (the kept weights' full-split figure comes at the end)
    saved: str = ""
    error: str = ""
    fine_tune: str = ""  # what a fine-tune changes ('fine-tuning: a.txt → b.txt (+3 characters)'), or ''


class StatusView(Widget):
    """Text lines describing the run; redrawn whenever its ``stats`` (bound to the app's) change."""

    DEFAULT_CSS = """
    StatusView { width: 30; height: 1fr; padding: 0 0 0 1; }
    """

    stats: reactive[TrainingStats] = reactive(TrainingStats, layout=False)
    unit: reactive[str] = reactive("bits", layout=False)  # of the losses shown: bits or nats per character

    def render(self) -> Text:
        """The status lines, cropped to the panel."""
        return render_status(self.stats, self.size.width, self.unit)


def render_status(s: TrainingStats, width: int = 30, unit: str = "bits") -> Text:
    """Status lines for the given stats, losses in ``unit`` (named once, after the best)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    icon = STATE_ICONS.get(s.state, "·")
    state = "fine-tuning" if s.state == "training" and s.fine_tune else s.state
    t.append(f"{icon} {state}", style=STATE_STYLES.get(s.state, ""))
    if s.state == "preparing" and s.prepare:
        t.append(f" {s.prepare}", style="dim")
    t.append("\n")
    if s.epochs:
        frac = s.epoch_step / s.steps_per_epoch if s.steps_per_epoch else 0.0
        epochs = f"{'≈' if s.total_forecast else ''}{s.epochs}"  # a time budget's epochs are forecast too
        label = f"epoch {max(1, min(s.epoch, s.epochs))}/{epochs} "  # counted from 1, like events
        bar_w = max(4, min(width - 18, width - 7 - len(label)))  # a long label shortens the bar, never wraps
        t.append(label)
        t.append(_bar(frac, bar_w), style="green")
        t.append(f" {frac:4.0%}\n")
    else:
        t.append("epoch –\n", style="dim")
    if s.total_steps:
        t.append(f"step {s.step:,}/{'≈' if s.total_forecast else ''}{s.total_steps:,}\n")
    else:
        t.append(f"step {s.step:,}\n")
    eta = s.eta_s if s.state in ("training", "paused") else math.nan  # an ended run has nothing left
    t.append(f"ETA {format_duration(eta)}", style="bold" if s.state == "training" else "dim")
    t.append(f"  ran {format_duration(s.elapsed_s)}\n", style="dim")
    t.append(f"{_si(s.chars_per_s)} chars/s  lr {_num(s.lr, '.1e')}\n")
    stderr = s.val_stderr if s.val_estimate else None
    val = format_loss(s.val_bpc * LN2, unit, estimate=s.val_estimate, stderr=stderr)
    t.append(f"loss {format_loss(s.loss, unit)}  val {val}\n")
    t.append("best ")
    t.append(f"{format_loss(s.best_bpc * LN2, unit, estimate=s.best_estimate)} {unit_label(unit)}\n", style="bold")
    device = (s.device or "device –").split(" (")[0]
    if s.device.endswith(", bf16"):
        device += " bf16"  # the training step's arithmetic (--precision)
    if s.params:
        device += f" · {_si(s.params)} params"
    t.append(device + "\n", style="dim")
    if s.error:
        t.append(f"✖ {s.error}\n", style="bold red")
    elif s.saved:
        t.append(f"saved {s.saved}\n", style="dim")
    return t


def _bar(frac: float, width: int) -> str:
    frac = min(1.0, max(0.0, frac))
    full = int(frac * width)
    return "█" * full + "░" * (width - full)


def _si(n: float) -> str:
    return format_count(n) if n else MISSING  # zero: nothing measured yet


def _num(v: float, fmt: str) -> str:
    return "–" if v is None or not math.isfinite(v) else format(v, fmt)
