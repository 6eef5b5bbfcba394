"""The loss chart: smoothed training loss and validation loss over the whole run, in braille."""

from __future__ import annotations

import math

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from lstmtui.core.units import format_count, in_unit

MAX_POINTS = 2048  # per series; older points are merged in pairs, never dropped
SMOOTHING = 0.05  # EMA weight of each new training loss
AXIS_WIDTH = 6
TRAIN_STYLE = "bold cyan"
VAL_STYLE = "bold yellow"
MARK_STYLE = "magenta"
MARK_CHAR = "┊"
MARK_LEGEND = "┊ new corpus"
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
            merged = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(pts[0::2], pts[1::2], strict=False)]
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
    """Training loss (EMA-smoothed) and validation loss against steps, for the whole run.

    Points arrive from the app's message handlers (at most METRIC_UPDATES_PER_S times a second),
    and each batch redraws the chart once. A fine-tune onto another corpus starts its steps at 1
    again: the chart draws each such run after the one before it, with a mark where the corpus
    changed (``marks``, in the chart's steps).
    """

    DEFAULT_CSS = """
    LossChart { width: 1fr; height: 1fr; min-width: 20; }
    """

    unit: reactive[str] = reactive("bits", layout=False)  # drawn in: bits or nats per character (kept in nats)

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.train = Series()
        self.val = Series()
        self.marks: list[float] = []
        self._ema: tuple[float, float] | None = None
        self._offsets = [0.0]  # where each run's steps start on the chart
        self._last_train = -math.inf  # the last raw step of each series, to see a run start again
        self._last_val = -math.inf
        self._last_x = 0.0
        self._val_run = 0

    def add_losses(self, points: list[tuple[int, float]]) -> None:
        """Add raw training losses; they are smoothed as they come."""
        for step, loss in points:
            if not math.isfinite(loss):
                continue
            if step < self._last_train:  # the steps start again: a fine-tune onto another corpus
                self._offsets.append(self._last_x)
                self.mark(self._last_x)
                self._ema = None  # the new corpus's loss is its own curve
            self._last_train = step
            x = step + self._offsets[-1]
            self._last_x = x
            # bias-corrected EMA (as in Adam): tracks the mean from the very first steps
            m, w = self._ema or (0.0, 0.0)
            m, w = m + SMOOTHING * (loss - m), w + SMOOTHING * (1.0 - w)
            self._ema = (m, w)
            self.train.add(x, m / w)
        if points:
            self.refresh()

    def add_val(self, step: int, loss: float) -> None:
        """Add one validation loss point."""
        self._add_val(step, loss)
        self.refresh()

    def _add_val(self, step: int, loss: float) -> None:
        if step < self._last_val:
            self._val_run += 1
        self._last_val = step
        self.val.add(step + self._offsets[min(self._val_run, len(self._offsets) - 1)], loss)

    def mark(self, x: float) -> None:
        """Mark where the corpus changed (in the chart's steps); a mark next to one already there is the same."""
        span = max(1.0, self._last_x) / 200
        if all(abs(x - m) > span for m in self.marks):
            self.marks.append(x)
            self.refresh()

    def load(self, train: list[tuple[int, float]], val: list[tuple[int, float]], marks: tuple[int, ...] = ()) -> None:
        """Show a saved or attached run's whole history instead of what is drawn, marks at the given steps."""
        self.clear()
        self.add_losses(train)
        for step, loss in val:
            self._add_val(step, loss)
        for step in marks:
            self.mark(step)

    def clear(self) -> None:
        """Empty the chart (a new run)."""
        self.train.clear()
        self.val.clear()
        self.marks = []
        self._ema = None
        self._offsets = [0.0]
        self._last_train = self._last_val = -math.inf
        self._last_x = 0.0
        self._val_run = 0
        self.refresh()

    def render(self) -> Text:
        """Draw the chart to fit the widget's current size."""
        width, height = self.size.width, self.size.height
        train, val = self.train.points, self.val.points
        if self.unit != "nats":
            train, val = ([(x, in_unit(y, self.unit)) for x, y in series] for series in (train, val))
        return render_chart(train, val, width, height, self.marks)


Points = list[tuple[float, float]]


def render_chart(train: Points, val: Points, width: int, height: int, marks: list[float] | None = None) -> Text:
    """Braille line chart of two series, with a y axis on the left, the step range below, and a
    dotted line at each mark (a corpus change)."""
    if width < AXIS_WIDTH + 4 or height < 3:
        return Text("")
    if not train and not val:
        return Text("\n" * (height // 2) + "waiting for the first steps…".center(width), style="dim")
    canvas = _Canvas(train + val, width - AXIS_WIDTH, height - 1)
    canvas.plot(train, 1)
    canvas.plot(val, 2)
    for x in marks or ():
        canvas.mark(x)
    text = canvas.rows()
    left, right = f"step {_short(canvas.x0)}", _short(canvas.x1)
    inner = canvas.pw - 1  # the axis line's columns right of its corner
    axis = Text(" " * (AXIS_WIDTH - 1) + "└" + left, style="dim")
    if marks and inner >= len(left) + len(right) + len(MARK_LEGEND) + 4:
        gap = inner - len(left) - len(right) - len(MARK_LEGEND)
        axis.append(" " * (gap // 2))
        axis.append(MARK_LEGEND, style=MARK_STYLE)
        axis.append(" " * (gap - gap // 2) + right)
    else:
        axis.append(right.rjust(max(0, inner - len(left))))
    axis.truncate(width)
    text.append_text(axis)
    return text


class _Canvas:
    """Braille cells of the plot area: dot bits, and which series owns each cell (val wins a shared one)."""

    def __init__(self, every: Points, pw: int, ph: int) -> None:
        self.pw, self.ph = pw, ph
        self.dots_w, self.dots_h = pw * 2, ph * 4
        self.x0, self.x1 = min(p[0] for p in every), max(p[0] for p in every)
        self.y0, self.y1 = min(p[1] for p in every), max(p[1] for p in every)
        if self.y1 - self.y0 < 1e-6:
            self.y0, self.y1 = self.y0 - 0.5, self.y1 + 0.5
        self.xspan = max(self.x1 - self.x0, 1e-9)
        self.bits = [[0] * pw for _ in range(ph)]
        self.owner = [[0] * pw for _ in range(ph)]  # 0 empty, 1 train, 2 val
        self.marked: set[int] = set()  # cell columns with a mark line

    def mark(self, x: float) -> None:
        """A dotted line down the cell column of step ``x`` (where it crosses no curve)."""
        if self.x0 <= x <= self.x1:
            col = min(self.dots_w - 1, int((x - self.x0) / self.xspan * (self.dots_w - 1) + 0.5))
            self.marked.add(col // 2)

    def _ydot(self, v: float) -> int:
        return min(self.dots_h - 1, max(0, round((self.y1 - v) / (self.y1 - self.y0) * (self.dots_h - 1))))

    def _columns(self, points: Points) -> list[tuple[int, int]]:
        # one averaged value per dot column keeps long runs cheap to draw
        sums: dict[int, list[float]] = {}
        last = self.dots_w - 1
        for x, y in points:
            col = min(last, int((x - self.x0) / self.xspan * last + 0.5)) if self.x1 > self.x0 else 0
            acc = sums.setdefault(col, [0.0, 0])
            acc[0] += y
            acc[1] += 1
        return [(c, self._ydot(s / n)) for c, (s, n) in sorted(sums.items())]

    def _dot(self, col: int, r: int, who: int) -> None:
        cy, cx = r // 4, col // 2
        self.bits[cy][cx] |= _BITS[col % 2][r % 4]
        self.owner[cy][cx] = max(self.owner[cy][cx], who)

    def plot(self, points: Points, who: int) -> None:
        """Draw a series as connected segments."""
        prev = None
        for col, row in self._columns(points):
            if prev is None:
                self._dot(col, row, who)
            else:
                self._segment(prev, (col, row), who)
            prev = (col, row)

    def _segment(self, start: tuple[int, int], end: tuple[int, int], who: int) -> None:
        # straight from the previous point, every dot row between filled, so steep drops stay connected
        (pc, pr), (col, row) = start, end
        last = pr
        for cc in range(pc + 1, col + 1):
            yy = round(pr + (row - pr) * (cc - pc) / (col - pc))
            lo, hi = sorted((last, yy))
            for r in range(lo, hi + 1):
                self._dot(cc, r, who)
            last = yy

    def rows(self) -> Text:
        """The plot area with its y axis labels, one line a cell row."""
        text = Text(no_wrap=True, overflow="crop")
        ph = self.ph
        labels = {0: self.y1, ph - 1: self.y0}
        digits = 2 if self.y1 - self.y0 >= 0.1 else 3  # a flat start still gets labels that differ
        if ph >= 5:
            labels[(ph - 1) // 2] = (self.y0 + self.y1) / 2
        for r in range(ph):
            label = f"{labels[r]:.{digits}f}" if r in labels else ""
            text.append(f"{label:>{AXIS_WIDTH - 1}}┤" if label else " " * (AXIS_WIDTH - 1) + "│", style="dim")
            self._row(text, r)
            text.append("\n")
        return text

    def _row(self, text: Text, r: int) -> None:
        styles = {0: "", 1: TRAIN_STYLE, 2: VAL_STYLE}
        run_style, run = None, []
        for c in range(self.pw):
            if self.bits[r][c]:
                ch, st = chr(0x2800 + self.bits[r][c]), styles[self.owner[r][c]]
            elif c in self.marked:
                ch, st = MARK_CHAR, MARK_STYLE
            else:
                ch, st = " ", ""
            if st != run_style and run:
                text.append("".join(run), style=run_style or None)
                run = []
            run_style = st
            run.append(ch)
        if run:
            text.append("".join(run), style=run_style or None)


def _short(n: float) -> str:
    """1234 -> 1.2k, 12345 -> 12k, 1234567 -> 1.2M: an axis label fits in a few columns."""
    n = int(n)
    return format_count(n, digits=0 if 10_000 <= n < 1_000_000 else 1)
