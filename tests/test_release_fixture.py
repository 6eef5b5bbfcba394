"""A profile saved by the previous release (0.1.0) resumes with the same next 20 losses, bit for bit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1"
REPO = Path(__file__).resolve().parent.parent


def test_previous_release_profile_resumes_bit_for_bit(tmp_path):
    expected = json.loads((FIXTURE / "next_losses.json").read_text())
    home = tmp_path / "home"
    shutil.copytree(FIXTURE / "profiles", home / "profiles")
    log = tmp_path / "run.jsonl"
    last = expected["first_step"] + len(expected["losses"]) - 1
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstmtui",
            "train",
            str(REPO / expected["corpus"]),
            "--profile",
            "release-0.1",
            "--home",
            str(home),
            "--max-steps",
            str(last),
            "--plain",
            "--device",
            "cpu",
            "--log-jsonl",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    steps = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(expected["first_step"], last + 1))
    assert [e["loss"] for e in steps] == expected["losses"]
