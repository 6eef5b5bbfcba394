"""The TUI section: training throughput kept in the app against headless, key latency, time to first paint.

Used by `lstmtui bench` and scripts/tui_latency.py. Both throughput measurements count characters
trained between the first and the last step seen, from the steps' own clocks. Textual and the app
are imported only when the app is measured.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import TrainConfig

THROUGHPUT_KEPT_TARGET = 0.95
KEY_P95_TARGET_MS = 50
FIRST_PAINT_TARGET_S = 0.5


def _rate(first: Any, last: Any, config: Any) -> float:
    if first is None or last is None or last.elapsed_s <= first.elapsed_s:
        return 0.0
    return (last.step - first.step) * config.batch * config.seq_len / (last.elapsed_s - first.elapsed_s)


def measure_headless(corpus: str | Path, config: Any, seconds: float, home: str | Path | None = None) -> dict:
    """Train headless (TrainingSession, no UI) for about ``seconds``; return chars_per_s."""
    from lstmtui.core.events import StepEvent
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.training import TrainingSession

    steps: list = []
    session = TrainingSession([str(corpus)], config, profile="bench-headless", store=ProfileStore(home))
    session.subscribe(lambda e: steps.append(e) if isinstance(e, StepEvent) else None)
    thread = session.start()
    deadline = time.monotonic() + 120
    while not steps and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    time.sleep(seconds)
    session.stop()
    thread.join()
    first = steps[min(len(steps) - 1, 5)] if steps else None  # skip warm-up steps
    return {"chars_per_s": _rate(first, steps[-1] if steps else None, config), "steps": len(steps)}


def measure_tui(
    corpus: str | Path, config: Any, seconds: float, size: tuple[int, int] = (80, 24), key_presses: int = 30
) -> dict:
    """Run the app headless (Pilot) training for about ``seconds``, pressing keys meanwhile.

    Returns chars_per_s (training throughput inside the app), key_latency_ms_median / _p95 (a
    key press until the app has handled it and is idle again, while training runs) and
    first_paint_s (app start to the first screen, before torch has loaded).
    """
    from lstmtui.core.events import StepEvent
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    app = LstmtuiApp(AppOptions(corpus_paths=[str(corpus)], config=config))
    steps: list = []
    original = app.apply_update

    def spy(step, losses, events):
        if isinstance(step, StepEvent):
            steps.append(step)
        original(step, losses, events)

    app.apply_update = spy
    result: dict = {}

    async def run() -> None:
        started = time.monotonic()
        async with app.run_test(size=size) as pilot:
            while app.first_paint_at is None:
                await pilot.pause(0.01)
            result["first_paint_s"] = app.first_paint_at - started
            deadline = time.monotonic() + 120
            while not steps and time.monotonic() < deadline:
                await pilot.pause(0.05)
            await pilot.press("3")
            from textual import events

            from lstmtui.tui.widgets.generation import GenerationPanel

            line = app.query_one("#generation", GenerationPanel).query_one("#gen-settings")
            latencies = []
            end = time.monotonic() + seconds
            gap = seconds / max(1, key_presses)
            while time.monotonic() < end:
                key, char = ("plus", "+") if len(latencies) % 2 == 0 else ("minus", "-")
                before = str(line.render())
                t0 = time.perf_counter()
                # the key goes through the app's normal input path; done when the line shows it
                app.post_message(events.Key(key, char))
                while str(line.render()) == before and time.perf_counter() - t0 < 10:
                    await asyncio.sleep(0.001)
                latencies.append((time.perf_counter() - t0) * 1000)
                await pilot.pause(gap)
            result["key_latency_ms_median"] = statistics.median(latencies) if latencies else float("nan")
            result["key_latency_ms_p95"] = (
                statistics.quantiles(latencies, n=20)[-1] if len(latencies) >= 2 else result["key_latency_ms_median"]
            )
            result["key_presses"] = len(latencies)
            await app.shutdown()

    asyncio.run(run())
    first = steps[min(len(steps) - 1, 5)] if steps else None  # skip warm-up, as headless does
    result["chars_per_s"] = _rate(first, steps[-1] if steps else None, config)
    result["ui_updates"] = len(steps)
    return result


def tui_section(corpus_path: str, seconds: float, config: TrainConfig, log: Log = quiet) -> list[dict]:
    """The TUI's figures: headless runs before and after the app's run, and the app's own."""
    cfg = replace(config, save_every_min=0.0)
    old_home = os.environ.get("LSTMTUI_HOME")
    try:
        with tempfile.TemporaryDirectory(prefix="lstmtui-bench-tui-") as home:
            os.environ["LSTMTUI_HOME"] = home  # the app's profiles go here, not to the user's
            log("tui: headless run")
            before = measure_headless(corpus_path, cfg, seconds, home=home)
            log("tui: app run (headless terminal, keys pressed while training)")
            app = measure_tui(corpus_path, cfg, seconds)
            log("tui: headless run")
            after = measure_headless(corpus_path, cfg, seconds, home=home)
    except Exception as exc:  # one failed section must not lose the others
        return [row("tui", "TUI measurements", None, "", f"failed: {type(exc).__name__}: {exc}")]
    finally:
        if old_home is None:
            os.environ.pop("LSTMTUI_HOME", None)
        else:
            os.environ["LSTMTUI_HOME"] = old_home
    return _tui_rows(before, app, after, seconds)


def _tui_rows(before: dict, app: dict, after: dict, seconds: float) -> list[dict]:
    headless = (before["chars_per_s"] + after["chars_per_s"]) / 2
    ratio = app["chars_per_s"] / headless if headless > 0 else math.nan
    p50, p95, paint = app.get("key_latency_ms_median"), app.get("key_latency_ms_p95"), app.get("first_paint_s")
    return [
        row(
            "tui",
            "training in the app / headless",
            ratio,
            "ratio",
            f"app {app['chars_per_s']:,.0f} vs headless {before['chars_per_s']:,.0f} and "
            f"{after['chars_per_s']:,.0f} chars/s, {seconds:g} s each",
            f">= {THROUGHPUT_KEPT_TARGET}",
            ratio >= THROUGHPUT_KEPT_TARGET,
        ),
        row("tui", "key press to screen, median", p50, "ms", f"{app.get('key_presses', 0)} presses while training"),
        row(
            "tui",
            "key press to screen, p95",
            p95,
            "ms",
            "",
            f"<= {KEY_P95_TARGET_MS}",
            p95 is not None and p95 <= KEY_P95_TARGET_MS,
        ),
        row(
            "tui",
            "first paint",
            paint,
            "s",
            "app start to first screen",
            f"<= {FIRST_PAINT_TARGET_S}",
            paint is not None and paint <= FIRST_PAINT_TARGET_S,
        ),
    ]
