"""The service section: what watching a detached run costs it, attaching, remote keys, and memory.

One detached run (`lstmtui train` in a session of its own, no terminal) trains while this process
watches it in turns, each ``seconds`` long: no client, three protocol clients reading every event,
one attached TUI (the app headless under Pilot, through RunClient), no client again. Throughput
comes from the run's own step clock (two snapshots a turn), so the watchers' own work is not
counted; the two client-free turns bracket the others against drift. The attached app also gives
attach-to-first-paint, key-press-to-remote-effect (p until the paused state arrives, and back) and
the time generation waits for the run's weights. Memory: the detached run's RSS against the same
run in the app (a fresh process, ``python -m lstmtui.bench.service tui-rss``, once the detached run
has stopped), before and after `d`. The model is the bench's, capped at hidden 128, one layer, batch
32, sequence 64 and one thread: many small steps are the most events per second for the service to
carry, and the section stays near a minute on a busy machine.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import TrainConfig

CLIENTS_KEPT_TARGET = 0.97
TUI_KEPT_TARGET = 0.95
RUN_NAME = "bench-service"
START_TIMEOUT_S = 120.0
KEY_ROUNDS = 4  # pause and resume, each round: 2 key presses


def run_flags(config: TrainConfig) -> list[str]:
    """The `lstmtui train` options that give the bench's model and batch."""
    flags = ["--hidden", str(config.hidden), "--layers", str(config.layers), "--seq-len", str(config.seq_len),
             "--batch", str(config.batch), "--epochs", "1000", "--eval-every", "0", "--sample-every", "0"]  # fmt: skip
    return [*flags, "--threads", str(config.threads)] if config.threads else flags


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB (Linux; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _clock(record) -> tuple[int, float]:
    """The run's latest (step, training seconds), read from a fresh snapshot."""
    from lstmtui.service import RunClient

    with RunClient.connect(record, timeout=30) as client:
        step = client.snapshot.get("last_step") or {}
    return int(step.get("step") or 0), float(step.get("elapsed_s") or 0.0)


def _rate(before: tuple[int, float], after: tuple[int, float], config: TrainConfig) -> float:
    steps, seconds = after[0] - before[0], after[1] - before[1]
    return steps * config.batch * config.seq_len / seconds if seconds > 0 else math.nan


def _turn(record, config: TrainConfig, seconds: float) -> float:
    before = _clock(record)
    time.sleep(seconds)
    return _rate(before, _clock(record), config)


def _with_readers(record, config: TrainConfig, seconds: float, n: int = 3) -> tuple[float, int]:
    """Throughput while ``n`` protocol clients read every event; (chars/s, events read)."""
    from lstmtui.service import RunClient

    stop = threading.Event()
    counts = [0] * n

    def read(i: int) -> None:
        with RunClient.connect(record, timeout=30) as client:
            while not stop.is_set() and not client.closed:
                if client.read(0.2) is not None:
                    counts[i] += 1

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # connected and past the snapshot
    rate = _turn(record, config, seconds)
    stop.set()
    for t in threads:
        t.join(5)
    return rate, sum(counts)


def _with_app(record, config: TrainConfig, seconds: float) -> dict[str, Any]:
    """Attach the app headless (Pilot); throughput while it watches, then its timings."""
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    home = Path(record.home) if record.home else None
    app = LstmtuiApp(AppOptions(home=home, start_training=False, attach=record))
    out: dict[str, Any] = {}

    async def run() -> None:
        started = time.monotonic()
        async with app.run_test(size=(100, 30)) as pilot:
            while app.first_paint_at is None:
                await pilot.pause(0.005)
            out["first_paint_s"] = app.first_paint_at - started
            while app.stats.step == 0 and time.monotonic() - started < 60:
                await asyncio.sleep(0.005)
            out["shown_s"] = time.monotonic() - started
            before = await asyncio.to_thread(_clock, record)
            await asyncio.sleep(seconds)
            out["chars_per_s"] = _rate(before, await asyncio.to_thread(_clock, record), config)
            out["key_ms"] = [
                await _remote_effect(pilot, app, want) for _ in range(KEY_ROUNDS) for want in ("paused", "training")
            ]
            out["weights_ms"] = []
            for _ in range(3):  # the first one also loads torch into this process
                t0 = time.perf_counter()
                await asyncio.to_thread(app.host.weights)
                out["weights_ms"].append((time.perf_counter() - t0) * 1000)
            await pilot.press("q", "y")
            await pilot.pause(0.2)

    asyncio.run(run())
    return out


async def _remote_effect(pilot, app, want: str) -> float:
    """Press p and wait until the run's new state arrives; milliseconds."""
    t0 = time.perf_counter()
    await pilot.press("p")
    while app.stats.state != want and time.perf_counter() - t0 < 10:
        await asyncio.sleep(0.001)
    return (time.perf_counter() - t0) * 1000


def _tui_rss(corpus: str, config: TrainConfig, seconds: float) -> dict[str, float]:
    """The same run in the app, in a fresh process: RSS while shown, and after d."""
    out = subprocess.run(
        [sys.executable, "-m", "lstmtui.bench.service", "tui-rss", corpus, json.dumps(config.to_dict()), str(seconds)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 4 * seconds,
        check=True,
    )
    return {k: float(v) for k, _, v in (line.partition("=") for line in out.stdout.splitlines()) if v}


def section_config(config: TrainConfig) -> TrainConfig:
    """The bench's settings, capped for this section (see the module docstring)."""
    return replace(
        config,
        hidden=min(config.hidden, 128),
        layers=1,
        batch=min(config.batch, 32),
        seq_len=min(config.seq_len, 64),
        threads=1,
        eval_every=0,
        sample_every=0,
    ).validate()


def service_section(corpus_path: str, config: TrainConfig, log: Log = quiet, seconds: float = 6.0) -> list[dict]:
    """The service rows; a failure becomes one row saying so."""
    config = section_config(config)
    saved = {k: os.environ.get(k) for k in ("LSTMTUI_HOME", "LSTMTUI_RUNS")}
    proc = None
    try:
        with tempfile.TemporaryDirectory(prefix="lstmtui-bench-service-") as tmp:
            os.environ["LSTMTUI_HOME"], os.environ["LSTMTUI_RUNS"] = f"{tmp}/home", f"{tmp}/runs"
            log("service: starting a detached run")
            proc, record = _start_run(corpus_path, config)
            figures = _measure(proc, record, config, seconds, log)
            _stop(record, proc)
            log("service: the same run in the app (memory)")
            figures["tui"] = _tui_rss(corpus_path, config, seconds)
    except Exception as exc:  # one failed section must not lose the others
        return [row("service", "service measurements", None, "", f"failed: {type(exc).__name__}: {exc}")]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return service_rows(figures, seconds, config)


def _start_run(corpus: str, config: TrainConfig):
    from lstmtui.service import list_runs

    command = [sys.executable, "-m", "lstmtui", "train", corpus, "--profile", RUN_NAME, "--plain", *run_flags(config)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        records = [r for r in list_runs() if r.pid == proc.pid]
        if records and _clock(records[0])[0] > 5:
            return proc, records[0]
        time.sleep(0.2)
    raise RuntimeError(f"the detached run did not start training (status {proc.poll()})")


def _measure(proc, record, config: TrainConfig, seconds: float, log: Log) -> dict[str, Any]:
    """Turns of no client, 3 readers, no client, the app, no client: each watched turn between two free ones."""
    log("service: no client")
    free = [_turn(record, config, seconds)]
    rss_detached = rss_mb(proc.pid)
    log("service: three clients reading every event")
    clients, events = _with_readers(record, config, seconds)
    log("service: no client")
    free.append(_turn(record, config, seconds))
    log("service: an attached TUI")
    app = _with_app(record, config, seconds)
    log("service: no client")
    free.append(_turn(record, config, seconds))
    return {"free": free, "clients": clients, "events": events, "app": app, "rss_detached": rss_detached}


def _stop(record, proc) -> None:
    from lstmtui.service import RunClient

    with RunClient.connect(record, timeout=30) as client:
        client.request("stop", timeout=30)
    proc.wait(START_TIMEOUT_S)


def service_rows(f: dict[str, Any], seconds: float, config: TrainConfig) -> list[dict]:
    """The section's table rows from its figures."""
    free, app = f["free"], f["app"]
    clients_base, app_base = (free[0] + free[1]) / 2, (free[1] + free[2]) / 2
    clients_ratio = f["clients"] / clients_base if clients_base > 0 else math.nan
    app_ratio = app["chars_per_s"] / app_base if app_base > 0 else math.nan
    keys, weights, tui = app["key_ms"], app["weights_ms"], f["tui"]
    model = f"hidden {config.hidden}, batch {config.batch}x{config.seq_len}, 1 thread, {seconds:g} s turns"
    free_text = " / ".join(f"{x:,.0f}" for x in free)
    return [
        row("service", "detached run, 3 clients reading / none", clients_ratio, "ratio",
            f"{f['clients']:,.0f} chars/s, {f['events']:,} events read; no client {free_text} chars/s; {model}",
            f">= {CLIENTS_KEPT_TARGET}", clients_ratio >= CLIENTS_KEPT_TARGET),
        row("service", "detached run, attached TUI / none", app_ratio, "ratio",
            f"{app['chars_per_s']:,.0f} chars/s; the app headless (Pilot) here, the run in its own process",
            f">= {TUI_KEPT_TARGET}", app_ratio >= TUI_KEPT_TARGET),
        row("service", "attach to first paint", app["first_paint_s"], "s", "app start to its first screen"),
        row("service", "attach to the run shown", app["shown_s"], "s", "history, status and step drawn"),
        row("service", "key to remote effect, median", statistics.median(keys), "ms",
            f"p until the run's paused / training state arrives, {len(keys)} presses, max {max(keys):.0f} ms"),
        row("service", "generation weights, attached", statistics.median(weights[1:]), "ms",
            f"the run saves, the app loads latest; the first time {weights[0]:,.0f} ms (loads torch)"),
        row("service", "memory, detached run", f["rss_detached"], "MB", "RSS of `lstmtui train` in its own session"),
        row("service", "memory, same run in the TUI", tui.get("rss_tui", math.nan), "MB",
            f"after d (app closed, training on): {tui.get('rss_after_d', math.nan):,.0f} MB"),
    ]  # fmt: skip


def _tui_rss_main(corpus: str, config_json: str, seconds: float) -> None:
    """Child process: train in the app (Pilot) for ``seconds``, print its RSS, press d, print it again."""
    from lstmtui.tui.app import AppOptions, LstmtuiApp

    config = TrainConfig.from_dict(json.loads(config_json))
    app = LstmtuiApp(AppOptions(corpus_paths=[corpus], config=config, new_profile=f"{RUN_NAME}-tui"))

    async def run() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + START_TIMEOUT_S
            while app.stats.step == 0 and time.monotonic() < deadline:
                await pilot.pause(0.1)
            await pilot.pause(seconds)
            print(f"rss_tui={rss_mb(os.getpid())}", flush=True)
            await pilot.press("d")
            await pilot.pause(0.5)

    asyncio.run(run())
    time.sleep(1.0)
    print(f"rss_after_d={rss_mb(os.getpid())}", flush=True)
    host = app.run_link.host
    if host is not None:
        host.stop()
        host.join(60)
    if app.run_link.server is not None:
        app.run_link.server.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "tui-rss":
        _tui_rss_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit("usage: python -m lstmtui.bench.service tui-rss CORPUS CONFIG_JSON SECONDS")
