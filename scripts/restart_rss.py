"""RSS of a process that starts, trains briefly and stops a TrainingSession on one profile, 40 times.

Headless: separates the engine from the app when the TUI soak shows memory growth.
Usage: .venv/bin/python scripts/restart_rss.py
"""

import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["LSTMTUI_HOME"] = tempfile.mkdtemp()
from lstmtui.core.config import TrainConfig  # noqa: E402
from lstmtui.core.profiles import ProfileStore  # noqa: E402
from lstmtui.core.training import TrainingSession  # noqa: E402


def rss() -> float:
    """Resident memory of this process in MB."""
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


cfg = TrainConfig(
    hidden=128, layers=2, seq_len=64, batch=16, epochs=1000, sample_every=20, sample_length=100, threads=1
).validate()
corpus = Path(__file__).resolve().parent.parent / "sample_corpora" / "prose.txt"
store = ProfileStore(Path(os.environ["LSTMTUI_HOME"]))
for i in range(40):
    s = TrainingSession([corpus], cfg, store=store, profile="leak")
    t = threading.Thread(target=s.run)
    t.start()
    time.sleep(1.5)
    s.stop()
    t.join()
    gc.collect()
    if i % 5 == 0:
        print(f"restart {i}: RSS {rss():.1f} MB", flush=True)
print(f"end: RSS {rss():.1f} MB")
