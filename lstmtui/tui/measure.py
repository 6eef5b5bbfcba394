"""Measure the TUI against headless training: throughput kept, key latency, time to first paint.

Used by scripts/tui_latency.py (and meant for `lstmtui bench`). Both measurements count
characters trained between the first and the last step seen, from the steps' own clocks.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any


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


def measure_tui(corpus: str | Path, config: Any, seconds: float, size: tuple[int, int] = (80, 24),
                key_presses: int = 30) -> dict:
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
