"""Where a run will end, from the loop as it really runs: steps, checks, samples, epoch ends and saves.

The loop reports the training time at the end of every step. The time from one step's end to the
next is a training step plus whatever ran after the earlier step: a validation check, a sample,
an epoch end (full-split validation, a sample, a save), each on a known schedule. Steps with
nothing scheduled after them give the plain step time; the others give what their extra work
costs. Anything unscheduled (a periodic save, a collection pause) is counted as a share of the
time. The forecast adds these up over the steps to come and finds the step at which a deadline
passes, so the displayed total and ETA follow what the loop really does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# Until a kind of work has been seen, it is guessed from the step time: validation reads characters
# forward only, about this many times faster than a training step trains them.
EVAL_SPEEDUP = 2.5
# A sampled character costs about this share of a training step (one forward of one stream).
SAMPLE_STEP_SHARE = 0.05
OUTLIER = 4.0  # a plain step this many times slower than the median had something unscheduled in it
# The step time is the mean of every plain step so far: a shared machine's speed swings by a fifth
# for tens of seconds at a time, either way, and replayed over nine recorded runs the whole run's
# mean predicted the rest as well as moving averages over the last 500 steps or the last half of
# the run on the short ones and better on the long ones (docs/performance.md, "The forecast of a
# budget's end").
MEDIAN_OF = 101  # recent plain steps whose median is "usual" for the outlier test


@dataclass(frozen=True)
class Schedule:
    """What the loop does besides training, and how much it reads, for the forecast's first guesses."""

    steps_per_epoch: int
    eval_every: int = 0
    sample_every: int = 0
    step_chars: int = 1  # characters a training step trains on
    check_chars: int = 0  # characters a validation check reads
    full_chars: int = 0  # characters the validation at an epoch end reads
    sample_chars: int = 0  # characters of a sample


def _multiples(every: int, first: int, last: int, offset: int = 0) -> int:
    """How many steps j in [first, last] have j % every == offset (0 when ``every`` is 0)."""
    if every <= 0 or last < first:
        return 0
    return (last - offset) // every - (first - 1 - offset) // every


def _ends_on(every: int, steps_per_epoch: int, end: int) -> int | None:
    """The residue modulo lcm(every, steps_per_epoch) of the epoch ends (steps ≡ ``end`` modulo
    steps_per_epoch) that are multiples of ``every``; None when none is."""
    g = math.gcd(every, steps_per_epoch)
    for k in range(every // g):
        j = end % steps_per_epoch + k * steps_per_epoch
        if j % every == 0:
            return j % (every // g * steps_per_epoch)
    return None


class RunForecast:
    """Learns the time of a step and of each kind of extra work; predicts the step a deadline ends."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.step_s = 0.0  # a training step with nothing after it
        self._plain = 0  # plain intervals seen
        self._recent: deque[float] = deque(maxlen=MEDIAN_OF)  # the latest plain intervals
        self._usual = 0.0  # their median: an outlier's threshold that a burst of slow steps cannot raise
        self._extra: dict[str, float] = {}  # seconds of each kind of extra work, once seen
        self._other_s = 0.0  # unscheduled time seen
        self._observed_s = 0.0  # time covered by observed intervals
        self._last: tuple[int, int, float] | None = None  # (step, epoch step, elapsed) of the last step

    # ----- learning -----

    def observe(self, step: int, epoch_step: int, elapsed: float) -> None:
        """The loop finished step ``step`` (``epoch_step`` of its epoch) at ``elapsed`` seconds of training."""
        last, self._last = self._last, (step, epoch_step, elapsed)
        if last is None or step != last[0] + 1 or elapsed < last[2]:
            return  # the first step seen, or a skipped one: no clean interval
        interval = elapsed - last[2]
        self._observed_s += interval
        kinds = self._after(last[0], last[1])
        if not kinds:
            self._plain_interval(interval)
        elif self._plain:
            self._extra_interval(kinds, interval - self.step_s)

    def _plain_interval(self, interval: float) -> None:
        if self._plain >= 10 and interval > OUTLIER * self._usual:
            self._other_s += interval - self._usual
            return
        self._plain += 1
        self._recent.append(interval)
        if self._plain <= 25 or self._plain % 25 == 0:  # a median of 101 numbers, now and then
            self._usual = sorted(self._recent)[len(self._recent) // 2]
        self.step_s += (interval - self.step_s) / self._plain

    def _extra_interval(self, kinds: tuple[str, ...], extra: float) -> None:
        """Share the extra time of an interval among its kinds: the unseen ones get what the seen leave."""
        extra = max(0.0, extra)
        known = sum(self._extra[k] for k in kinds if k in self._extra)
        unknown = [k for k in kinds if k not in self._extra]
        if unknown:
            guesses = {k: self._guess(k) for k in unknown}
            left, total = max(0.0, extra - known), sum(guesses.values())
            for k in unknown:
                self._extra[k] = left * (guesses[k] / total if total > 0 else 1.0 / len(unknown))
            return
        if known > 0 and extra > OUTLIER * known:  # something unscheduled ran too
            self._other_s += extra - known
            return
        scale = extra / known if known > 0 else 1.0
        for k in kinds:  # a moving average over the last few times each kind ran
            self._extra[k] += 0.5 * (self._extra[k] * scale - self._extra[k])

    def _after(self, step: int, epoch_step: int) -> tuple[str, ...]:
        """The extra work the loop does after ``step`` (``epoch_step`` of its epoch)."""
        s = self.schedule
        if epoch_step >= s.steps_per_epoch:
            return ("epoch",)
        kinds = []
        if s.eval_every and step % s.eval_every == 0:
            kinds.append("check")
        if s.sample_every and step % s.sample_every == 0:
            kinds.append("sample")
        return tuple(kinds)

    def _guess(self, kind: str) -> float:
        s, per_char = self.schedule, self.step_s / max(1, self.schedule.step_chars)
        if kind == "check":
            return s.check_chars * per_char / EVAL_SPEEDUP
        if kind == "sample":
            return s.sample_chars * self.step_s * SAMPLE_STEP_SHARE
        return s.full_chars * per_char / EVAL_SPEEDUP + self._guess("sample")

    def cost(self, kind: str) -> float:
        """Seconds one ``kind`` of extra work ('check', 'sample', 'epoch') takes: measured, else guessed."""
        return self._extra[kind] if kind in self._extra else self._guess(kind)

    # ----- predicting -----

    @property
    def ready(self) -> bool:
        """Whether enough steps have been seen to forecast."""
        return self._plain >= 3

    def seconds_for(self, step: int, epoch_step: int, steps: int) -> float:
        """Predicted seconds from the end of ``step`` to the end of ``step + steps``."""
        if steps <= 0:
            return 0.0
        s = self.schedule
        last = step + steps - 1  # extra work runs after each of the steps step .. last
        epoch_start = step - epoch_step  # the step the current epoch began after
        ends = 0
        if s.steps_per_epoch > 0:
            first_end = epoch_start + s.steps_per_epoch
            ends = max(0, (last - first_end) // s.steps_per_epoch + 1) if last >= first_end else 0
        seconds = steps * self.step_s + ends * self.cost("epoch")
        seconds += self._scheduled(s.eval_every, step, last, epoch_start) * self.cost("check")
        seconds += self._scheduled(s.sample_every, step, last, epoch_start) * self.cost("sample")
        share = self._other_s / self._observed_s if self._observed_s > 0 else 0.0
        return seconds / max(0.5, 1.0 - share)

    def _scheduled(self, every: int, first: int, last: int, epoch_start: int) -> int:
        """Steps in [first, last] that ``every`` schedules work after: its multiples, less the epoch ends
        (an epoch end does its own work instead)."""
        count = _multiples(every, first, last)
        spe = self.schedule.steps_per_epoch
        if count and spe > 0:
            residue = _ends_on(every, spe, epoch_start)
            if residue is not None:
                count -= _multiples(every // math.gcd(every, spe) * spe, first, last, residue)
        return count

    def final_step(self, step: int, epoch_step: int, remaining_s: float, cap: int) -> int:
        """The step at which training passes a deadline ``remaining_s`` seconds away (at most ``cap``)."""
        if remaining_s <= 0 or step >= cap:
            return step
        low, high = 0, cap - step  # the largest n whose steps end before the deadline
        while low < high:
            mid = (low + high + 1) // 2
            if self.seconds_for(step, epoch_step, mid) < remaining_s:
                low = mid
            else:
                high = mid - 1
        return min(cap, step + low + 1)  # the step that ends past the deadline ends the run
