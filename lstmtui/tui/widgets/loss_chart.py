"""The loss chart: smoothed training loss and validation loss over the whole run, in braille."""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from lstmtui.core.units import format_count

MAX_POINTS = 2048  # per series; older points are merged in pairs, never dropped
SMOOTHING = 0.05  # EMA weight of each new training loss
AXIS_WIDTH = 6
REDRAW_INTERVAL_S = 0.5  # the chart changes slowly; redrawing it less often leaves the CPU to training
TRAIN_STYLE = "bold cyan"
VAL_STYLE = "bold yellow"
# braille dot bits by (column, row) inside a 2x4 cell
_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


class Series:
    """Points (step, value) in bounded memory: each kept point averages ``stride`` raw points, and
    when there are too many, neighbours merge and the stride doubles, so the whole run stays
    evenly drawn from its first step."""

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.limit = limit
        self.stride = 1
        self._done: list[tuple[float, float]] = []
        self._acc = [0.0, 0.0, 0]  # the bucket being filled: sum of steps, sum of values, count

    @property
    def points(self) -> list[tuple[float, float]]:
        """The kept points, the partly filled bucket last."""
        step_sum, value_sum, n = self._acc
        return self._done + [(step_sum / n, value_sum / n)] if n else list(self._done)

    def add(self, step: float, value: float) -> None:
        """Add one raw point (non-finite values are skipped)."""
        if not math.isfinite(value):
            return
        acc = self._acc
        acc[0] += step
        acc[1] += value
        acc[2] += 1
        if acc[2] >= self.stride:
            self._done.append((acc[0] / acc[2], acc[1] / acc[2]))
            self._acc = [0.0, 0.0, 0]
        if len(self._done) > self.limit:
            pts = self._done
            merged = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(pts[0::2], pts[1::2])]
            if len(pts) % 2:
                # an odd last point becomes the start of the next, twice as wide, bucket
                self._acc = [pts[-1][0] * self.stride, pts[-1][1] * self.stride, self.stride]
            self._done = merged
            self.stride *= 2

    def clear(self) -> None:
        """Forget every point."""
        self._done = []
        self._acc = [0.0, 0.0, 0]
        self.stride = 1


class LossChart(Widget):
    """Training loss (EMA-smoothed) and validation loss against steps, for the whole run."""

    DEFAULT_CSS = """
    LossChart { width: 1fr; height: 1fr; min-width: 20; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.train = Series()
        self.val = Series()
        self._ema: tuple[float, float] | None = None
        self._dirty = False

    def on_mount(self) -> None:
        self.set_interval(REDRAW_INTERVAL_S, self._redraw_if_dirty)

    def _redraw_if_dirty(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Redraw now if points were added since the last redraw."""
        if self._dirty:
            self._dirty = False
            self.refresh()

    def add_losses(self, points: list[tuple[int, float]]) -> None:
        """Add raw training losses; they are smoothed as they come."""
        for step, loss in points:
            if not math.isfinite(loss):
                continue
            # bias-corrected EMA (as in Adam): tracks the mean from the very first steps
            m, w = self._ema or (0.0, 0.0)
            m, w = m + SMOOTHING * (loss - m), w + SMOOTHING * (1.0 - w)
            self._ema = (m, w)
            self.train.add(step, m / w)
        if points:
            self._dirty = True

    def add_val(self, step: int, loss: float) -> None:
        """Add one validation loss point."""
        self.val.add(step, loss)
        self._dirty = True

    def load_history(self, history: dict) -> None:
        """Redraw a saved profile's history: {"train": [[step, loss, ...]], "val": [[step, loss, ...]]}."""
        self.train.clear()
        self.val.clear()
        self._ema = None
        train = history.get("train") or []
        self.add_losses([(int(p[0]), float(p[1])) for p in train if len(p) >= 2])
        for p in history.get("val") or []:
            if len(p) >= 2:
                self.val.add(int(p[0]), float(p[1]))
        self.refresh()

    def clear(self) -> None:
        """Empty the chart (a new run)."""
        self.train.clear()
        self.val.clear()
        self._ema = None
        self.refresh()

    def render(self) -> Text:
        """Draw the chart to fit the widget's current size."""
        width, height = self.size.width, self.size.height
        return render_chart(self.train.points, self.val.points, width, height)


def render_chart(train: list[tuple[float, float]], val: list[tuple[float, float]], width: int, height: int) -> Text:
    """Braille line chart of two series, with a y axis on the left and the step range below."""
    if width < AXIS_WIDTH + 4 or height < 3:
        return Text("")
    if not train and not val:
        return Text("\n" * (height // 2) + "waiting for the first steps…".center(width), style="dim")
    pw, ph = width - AXIS_WIDTH, height - 1
    dots_w, dots_h = pw * 2, ph * 4
    every = train + val
    x0 = min(p[0] for p in every)
    x1 = max(p[0] for p in every)
    y0 = min(p[1] for p in every)
    y1 = max(p[1] for p in every)
    if y1 - y0 < 1e-6:
        y0, y1 = y0 - 0.5, y1 + 0.5
    xspan = max(x1 - x0, 1e-9)

    bits = [[0] * pw for _ in range(ph)]
    owner = [[0] * pw for _ in range(ph)]  # 0 empty, 1 train, 2 val (val wins a shared cell)

    def ydot(v: float) -> int:
        return min(dots_h - 1, max(0, round((y1 - v) / (y1 - y0) * (dots_h - 1))))

    def columns(points: list[tuple[float, float]]) -> list[tuple[int, int]]:
        # one averaged value per dot column keeps long runs cheap to draw
        sums: dict[int, list[float]] = {}
        for x, y in points:
            col = min(dots_w - 1, int((x - x0) / xspan * (dots_w - 1) + 0.5)) if x1 > x0 else 0
            acc = sums.setdefault(col, [0.0, 0])
            acc[0] += y
            acc[1] += 1
        return [(c, ydot(s / n)) for c, (s, n) in sorted(sums.items())]

    def dot(col: int, r: int, who: int) -> None:
        cy, cx = r // 4, col // 2
        bits[cy][cx] |= _BITS[col % 2][r % 4]
        owner[cy][cx] = max(owner[cy][cx], who)

    def plot(points: list[tuple[float, float]], who: int) -> None:
        prev = None
        for col, row in columns(points):
            if prev is None:
                dot(col, row, who)
            else:
                # straight segment from the previous point, filled so steep drops stay connected
                pc, pr = prev
                last = pr
                for cc in range(pc + 1, col + 1):
                    yy = round(pr + (row - pr) * (cc - pc) / (col - pc))
                    lo, hi = sorted((last, yy))
                    for r in range(lo, hi + 1):
                        dot(cc, r, who)
                    last = yy
            prev = (col, row)

    plot(train, 1)
    plot(val, 2)

    text = Text(no_wrap=True, overflow="crop")
    labels = {0: y1, ph - 1: y0}
    if ph >= 5:
        labels[(ph - 1) // 2] = (y0 + y1) / 2
    styles = {0: "", 1: TRAIN_STYLE, 2: VAL_STYLE}
    for r in range(ph):
        label = f"{labels[r]:.2f}" if r in labels else ""
        text.append(f"{label:>{AXIS_WIDTH - 1}}┤" if label else " " * (AXIS_WIDTH - 1) + "│", style="dim")
        run_style, run = None, []
        for c in range(pw):
            ch = chr(0x2800 + bits[r][c]) if bits[r][c] else " "
            st = styles[owner[r][c]]
            if st != run_style and run:
                text.append("".join(run), style=run_style or None)
                run = []
            run_style = st
            run.append(ch)
        if run:
            text.append("".join(run), style=run_style or None)
        text.append("\n")
    left, right = f"step {_short(x0)}", _short(x1)
    axis = " " * (AXIS_WIDTH - 1) + "└" + left + right.rjust(max(0, pw - 1 - len(left)))
    text.append(axis[:width], style="dim")
    return text


def _short(n: float) -> str:
    """1234 -> 1.2k, 12345 -> 12k, 1234567 -> 1.2M: an axis label fits in a few columns."""
    n = int(n)
    return format_count(n, digits=0 if 10_000 <= n < 1_000_000 else 1)
