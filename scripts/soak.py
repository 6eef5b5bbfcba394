"""Soak the TUI: train and generate over and over for N minutes; report memory and key latency.

The real app (LstmtuiApp) runs under Textual's Pilot (App.run_test, a headless terminal of
120x40) in this process, with real training on a real corpus. Each cycle it: generates from a
typed seed for a few seconds, stops and continues it, changes sampling settings, saves, pauses and
resumes training, opens and closes the help screen, and every third cycle stops training (the
profile is saved) and trains the profile further (a new session: corpus reloaded, profile
restored). Every few seconds it samples the resident memory (VmRSS from /proc/self/status) and
records how long each key press took to be handled (Pilot's press returns once the app has
processed the key and is idle again).

Reports: RSS growth after the first minute (target < 5%: the mean over the second minute against
the mean over the last minute, since single samples swing with momentary allocations), and key latency (median and 95th
percentile) in the first and last thirds of the run (target: no rise). Exit status 0 when both
targets are met and nothing failed, 1 otherwise.

Usage:
    .venv/bin/python scripts/soak.py [--minutes 30] [--json FILE] [--tiny]

The suite runs a ~15-second version (tests/test_reliability.py::test_short_soak_of_the_app).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEEDS = ["the ", "and then ", "it was ", "she said ", "in the morning "]
_KEY_CHARS = {"space": " ", "plus": "+", "minus": "-", "question_mark": "?", "enter": "\r", "escape": "\x1b"}


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS), or from getrusage's peak where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


class Soak:
    """Drives one app through the cycles and keeps the figures."""

    def __init__(self, app, pilot, seconds: float, echo) -> None:
        self.app, self.pilot, self.seconds, self.echo = app, pilot, seconds, echo
        self.t0 = time.monotonic()
        self.rss: list[tuple[float, float]] = []  # (seconds since start, MB)
        self.keys: list[tuple[float, str, float]] = []  # (seconds since start, key, seconds taken)
        self.errors: list[str] = []
        self.cycles = 0
        self.restarts = 0
        self.generated = 0
        self._last_rss = -1e9

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sample(self) -> None:
        if self.now() - self._last_rss >= 2.0:
            self._last_rss = self.now()
            self.rss.append((round(self.now(), 1), round(rss_mb(), 1)))

    async def press(self, *keys: str) -> None:
        """Send each key as the terminal driver would; time it until the app has handled it and drawn.

        Pilot.press is not used: it waits for the process to look idle, which a process that is
        training never does. Instead a callback queued right behind the key marks when the app got
        through it, and one queued after the next refresh marks when the screen showed the result.
        """
        from textual import events

        app = self.app
        for key in keys:
            char = key if len(key) == 1 else _KEY_CHARS.get(key)
            start = time.perf_counter()
            handled, drawn = asyncio.Event(), asyncio.Event()
            app.post_message(events.Key(key, char))
            app.call_later(handled.set)
            await asyncio.wait_for(handled.wait(), 30)
            app.call_after_refresh(drawn.set)
            await asyncio.wait_for(drawn.wait(), 30)
            self.keys.append((round(self.now(), 2), key, time.perf_counter() - start))
        self.sample()

    async def wait(self, condition, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            await self.pilot.pause(0.1)
            self.sample()
        return condition()

    async def idle(self, seconds: float) -> None:
        await self.wait(lambda: False, seconds)

    async def cycle(self) -> None:
        from lstmtui.tui.widgets.generation import GenerationPanel

        app = self.app
        panel = app.query_one("#generation", GenerationPanel)
        seed = SEEDS[self.cycles % len(SEEDS)]
        await self.press("3", "i", *[("space" if c == " " else c) for c in seed], "enter")
        await self.wait(lambda: panel.status in ("done", "stopped") or len(panel.text) > 1500, 4.0)
        await self.press("space")  # stop
        await self.wait(lambda: panel.status in ("done", "stopped"), 5.0)
        await self.press("plus", "m", "space")  # new settings, continue the same text
        await self.idle(1.0)
        await self.press("space", "minus", "m", "m", "m", "m")
        self.generated += len(panel.text)
        await self.press("1", "s")
        await self.idle(0.5)
        if app.stats.state == "training":
            await self.press("p")
            await self.wait(lambda: app.stats.state == "paused", 10.0)
            await self.press("p")
            await self.wait(lambda: app.stats.state == "training", 10.0)
        await self.press("question_mark")
        await self.idle(0.3)
        await self.press("escape")
        if self.cycles % 3 == 2:
            # Stop (saves) and train the profile further: a fresh session, corpus and profile reloaded.
            await self.press("x")
            await self.wait(lambda: app.training_worker is None, 30.0)
            await self.press("p")
            if await self.wait(lambda: app.stats.state == "training", 60.0):
                self.restarts += 1
        if app.stats.state == "failed" or app.stats.error:
            self.errors.append(f"training: {app.stats.error or app.stats.state}")
        self.cycles += 1

    async def run(self) -> None:
        app = self.app
        if not await self.wait(lambda: app.stats.state == "training" and app.stats.step > 0, 120.0):
            self.errors.append(f"training did not start: state {app.stats.state} {app.stats.error}")
            return
        self.t0 = time.monotonic()  # the clock starts with training
        self.rss.clear()
        self._last_rss = -1e9
        self.sample()
        next_report = 60.0
        while self.now() < self.seconds and not self.errors:
            await self.cycle()
            if self.now() >= next_report:
                next_report += 60.0
                recent = [k[2] for k in self.keys[-50:]] or [float("nan")]
                self.echo(
                    f"{self.now() / 60:5.1f} min  cycles {self.cycles}  step {app.stats.step:,}  "
                    f"RSS {self.rss[-1][1]:.0f} MB  key median {statistics.median(recent) * 1000:.0f} ms  "
                    f"p95 {_pct(recent, 0.95) * 1000:.0f} ms"
                )


def summarise(s: Soak, seconds: float, step: int) -> dict:
    """The figures: RSS growth after the first minute (or the first sixth of a short run), latency trend."""
    # Single samples swing +-25 MB with what is allocated at that instant (a prime, a corpus reload),
    # so the growth compares the mean over the minute after the first with the mean of the last minute.
    warm = min(60.0, seconds / 6)
    end_t = max((t for t, _ in s.rss), default=0.0)
    after = [mb for t, mb in s.rss if t >= warm]
    start_window = [mb for t, mb in s.rss if warm <= t < 2 * warm] or after[:1]
    end_window = [mb for t, mb in s.rss if t > end_t - warm and t >= 2 * warm] or after[-3:]
    base = statistics.mean(start_window) if start_window else float("nan")
    end = statistics.mean(end_window) if end_window else float("nan")
    growth = (end - base) / base * 100 if after else float("nan")
    third = seconds / 3
    first = [d for t, _, d in s.keys if t < third]
    last = [d for t, _, d in s.keys if t >= 2 * third]
    return {
        "seconds": round(s.now(), 1),
        "cycles": s.cycles,
        "training_restarts": s.restarts,
        "steps": step,
        "generated_chars": s.generated,
        "keys": len(s.keys),
        "rss_mb_at_warm": round(base, 1),
        "rss_mb_first_sample_after_warm": after[0] if after else None,
        "warm_s": warm,
        "rss_mb_end": round(end, 1),
        "rss_mb_max": max((mb for _, mb in s.rss), default=float("nan")),
        "rss_growth_pct": round(growth, 2),
        "key_ms_first_third": {
            "median": round(statistics.median(first) * 1000, 1) if first else None,
            "p95": round(_pct(first, 0.95) * 1000, 1) if first else None,
        },
        "key_ms_last_third": {
            "median": round(statistics.median(last) * 1000, 1) if last else None,
            "p95": round(_pct(last, 0.95) * 1000, 1) if last else None,
        },
        "key_ms_max": round(max((d for _, _, d in s.keys), default=0.0) * 1000, 1),
        "rss_samples": s.rss,
        "errors": s.errors,
    }


def soak(minutes: float, home: Path, corpus: str | None = None, tiny: bool = False, echo=print) -> dict:
    """Run the app under Pilot for `minutes` of training; return the summary dict."""
    os.environ["LSTMTUI_HOME"] = str(home)
    os.environ.setdefault("LSTMTUI_CACHE", str(Path(home) / "cache"))
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.corpus import default_corpus_path
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    if tiny:
        config = TrainConfig(
            hidden=32,
            layers=1,
            seq_len=32,
            batch=8,
            epochs=1000,
            eval_every=50,
            sample_every=50,
            sample_length=60,
            threads=1,
            warmup_steps=5,
            save_every_min=0.2,
        )
    else:
        config = TrainConfig(
            hidden=128,
            layers=2,
            seq_len=64,
            batch=32,
            epochs=1000,
            eval_every=200,
            sample_every=100,
            sample_length=200,
            threads=1,
            save_every_min=1.0,
        )
    corpus = corpus or str(default_corpus_path())
    app = LstmtuiApp(AppOptions(corpus_paths=[corpus], config=config.validate(), home=Path(home)))
    errors: list[str] = []
    real_notify = app.notify

    def notify(message, *args, **kwargs):
        if kwargs.get("severity") == "error":
            errors.append(f"notified: {message}")
        return real_notify(message, *args, **kwargs)

    app.notify = notify
    result: dict = {}

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            s = Soak(app, pilot, minutes * 60, echo)
            try:
                await s.run()
            finally:
                result.update(summarise(s, minutes * 60, app.stats.step))
                result["errors"] = result["errors"] + errors
                await pilot.press("ctrl+c")  # save and quit
                await pilot.pause(0.2)

    asyncio.run(main())
    result["return_code"] = app.return_code
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--corpus", help="text to train on (default: the bundled sample prose)")
    parser.add_argument("--tiny", action="store_true", help="the suite's tiny model")
    parser.add_argument("--json", type=Path, help="also write the figures (with every RSS sample) to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lstmtui-soak-") as home:
        t0 = time.monotonic()
        r = soak(args.minutes, Path(home), args.corpus, args.tiny, echo=lambda line: print(line, flush=True))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    first, last = r["key_ms_first_third"], r["key_ms_last_third"]
    print(
        f"\nsoak: {r['seconds'] / 60:.1f} min of training in {(time.monotonic() - t0) / 60:.1f} min, "
        f"{r['cycles']} cycles, {r['training_restarts']} stop/train-further restarts, {r['steps']:,} steps, "
        f"{r['generated_chars']:,} characters generated, {r['keys']} keys"
    )
    print(
        f"RSS mean over the {r['warm_s']:.0f} s after the first {r['warm_s']:.0f} s: {r['rss_mb_at_warm']} MB; "
        f"over the last {r['warm_s']:.0f} s: {r['rss_mb_end']} MB "
        f"(max {r['rss_mb_max']} MB): growth {r['rss_growth_pct']:+.2f}% (target < 5%)"
    )
    print(
        f"key latency first third: median {first['median']} ms, p95 {first['p95']} ms; "
        f"last third: median {last['median']} ms, p95 {last['p95']} ms; max {r['key_ms_max']} ms"
    )
    ok = not r["errors"] and r["rss_growth_pct"] < 5.0
    if first["p95"] and last["p95"] and last["p95"] > max(2 * first["p95"], first["p95"] + 50):
        print("key latency rose")
        ok = False
    if r["errors"]:
        print("ERRORS:\n  " + "\n  ".join(r["errors"]))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
