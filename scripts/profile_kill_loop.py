"""Kill -9 a process saving a profile at random moments, N times, and check the profile every time.

Usage: .venv/bin/python scripts/profile_kill_loop.py [KILLS] [SEED]
Prints the step the profile held after each kill and how many kills interrupted a save in flight.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_profiles import kill_during_saves  # noqa: E402  (the suite's own loop, run longer)

from lstmtui.core.profiles import ProfileStore  # noqa: E402


def main() -> int:
    """Run the loop and print what survived."""
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as home:
        steps, interrupted = kill_during_saves(ProfileStore(home), kills=kills, seed=seed)
    print(f"{kills} kills: the profile loaded with valid checksums after every one")
    print(f"{interrupted} kills left an interrupted save or clean-up behind (recovered)")
    print(f"saved step after each kill: {steps[1:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
