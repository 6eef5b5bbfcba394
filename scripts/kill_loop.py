"""kill -9 `lstmtui train` at random moments, and in the middle of its saves, N times in a row.

Each round starts `lstmtui train CORPUS --profile P --save-every ...` (a real process, the console
entry point), SIGKILLs it, and then checks what a user would rely on:

* the profile loads: ProfileStore.load_meta, load_model (best and latest, checksums verified),
  every saved weight finite;
* nothing saved is ever lost: the saved step never goes back, and it is at least the step of the
  last save the killed run reported (its --log-jsonl checkpoint lines);
* at most the work since the last save is lost (reported per round, in steps and seconds);
* the next run resumes: its first step is the saved step + 1 (checked whenever the killed run's
  log still holds it), and a final, unkilled run trains on from the last saved step to the end.

Rounds alternate between a kill after a random delay ("random") and a kill while a save is in
flight ("save": the temporary version directory is watched for, the process is frozen with
SIGSTOP a random few milliseconds later and, if the save is still unfinished, killed; otherwise it
is let go and the next save is tried, up to five times).

Usage:
    .venv/bin/python scripts/kill_loop.py [--kills 20] [--seed 1] [--tiny] [--keep DIR]

Exit status 0 when every round passed, 1 otherwise. The suite runs a 3-kill version
(tests/test_reliability.py::test_kill_9_during_training_and_saves_short_loop).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lstmtui.core.checkpoint import load_model  # noqa: E402 (after the sys.path entry above)
from lstmtui.core.profiles import ProfileMeta, ProfileStore  # noqa: E402

PROFILE = "killme"
# The suite's size: a save takes a few ms. The script's default is bigger so saves take longer.
TINY_MODEL = ["--hidden", "32", "--layers", "1", "--seq-len", "16", "--batch", "8"]
DEFAULT_MODEL = ["--hidden", "192", "--layers", "2", "--seq-len", "64", "--batch", "16"]
COMMON = ["--epochs", "1000", "--eval-every", "25", "--sample-every", "0", "--threads", "1", "--plain"]


@dataclass
class Round:
    """What one kill did and what was found afterwards."""

    index: int
    mode: str
    delay_s: float
    saved_step: int | None = None
    last_logged_checkpoint: int | None = None
    last_logged_step: int | None = None
    resumed_from: int | None = None
    interrupted_save: bool = False
    lost_steps: int | None = None
    lost_s: float | None = None
    problems: list[str] = field(default_factory=list)


def words_corpus(path: Path, n_words: int = 120_000, seed: int = 1) -> Path:
    """A plain-text corpus large enough that no run reaches its last epoch."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(300)]
    lines = []
    for _ in range(n_words // 12):
        lines.append(" ".join(rng.choice(words) for _ in range(12)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_log(path: Path) -> list[dict]:
    """The complete JSON lines of a killed run's log (a torn last line is ignored)."""
    events = []
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return events
    for line in raw.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events


def _temp_dirs(store: ProfileStore, pid: int | None = None) -> list[str]:
    """Temporary version directories of saves in progress (of one process, or any): a new profile's
    in the profiles directory, a new version's inside the profile's own directory."""
    own = f".tmp-{pid}-" if pid is not None else ".tmp-"
    found = []
    for directory, prefix in ((store.root, f".{PROFILE}{own}"), (store.root / PROFILE, own)):
        try:
            found += [n for n in os.listdir(directory) if n.startswith(prefix)]
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


def _wait_for_training(proc: subprocess.Popen, log: Path, timeout: float) -> bool:
    """Wait until the run's log says training started (state events are flushed at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e.get("event") == "state" and e.get("state") == "training" for e in read_log(log)):
            return True
        time.sleep(0.05)
    return False


def _wait_for_save(proc: subprocess.Popen, store: ProfileStore, timeout: float) -> bool:
    """Poll (every 0.3 ms) until a save of this process has its temporary directory."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if _temp_dirs(store, proc.pid):
            return True
        time.sleep(0.0003)
    return False


def _committed_at(store: ProfileStore) -> float | None:
    """When the current version's meta.json was written (just before its commit), as time.time()."""
    try:
        versions = sorted(p for p in store.path(PROFILE).iterdir() if p.name.startswith("v"))
        return (versions[-1] / "meta.json").stat().st_mtime if versions else None
    except OSError:
        return None


def check_profile(store: ProfileStore) -> tuple[int, ProfileMeta]:
    """Load the profile as `lstmtui generate` and a resumed run would; return (saved step, meta)."""
    import torch

    meta = store.load_meta(PROFILE)
    for which in ("best", "latest"):
        model, vocab, _ = load_model(store, PROFILE, which)
        for key, value in model.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise AssertionError(f"{which}.{key} holds non-finite weights")
        assert len(vocab) == meta.model.vocab_size
    for group in ("optim", "state"):
        store.load_tensors(PROFILE, group)  # sizes and sha256 checked against the meta
    return int(meta.progress.step), meta


def train_command(corpus: Path, home: Path, log: Path, model: list[str], save_every_min: float, extra=()) -> list[str]:
    """The `lstmtui train` command line of one round (or of the final run, with ``extra`` options)."""
    return [
        sys.executable,
        "-m",
        "lstmtui",
        "train",
        str(corpus),
        "--profile",
        PROFILE,
        "--home",
        str(home),
        "--log-jsonl",
        str(log),
        "--save-every",
        str(save_every_min),
        *model,
        *COMMON,
        *extra,
    ]


@dataclass
class Loop:
    """What every round shares: the profile home, its store and corpus, the model and the environment."""

    home: Path
    store: ProfileStore
    corpus: Path
    model: list[str]
    env: dict[str, str]
    save_every_min: float
    echo: Callable[[str], object]
    saved_before: int | None = None  # the step the profile held after the previous round
    ever_checkpointed: bool = False

    def command(self, log: Path, extra=()) -> list[str]:
        """The `lstmtui train` command line writing its events to ``log``."""
        return train_command(self.corpus, self.home, log, self.model, self.save_every_min, extra)


def kill_loop(
    home: Path,
    kills: int = 20,
    seed: int = 1,
    tiny: bool = False,
    save_every_min: float = 0.01,
    max_delay_s: float = 12.0,
    final_steps: int = 15,
    echo=print,
    model: list[str] | None = None,
) -> dict:
    """Run the rounds; return a summary dict (rounds, problems, figures). Raises nothing on a failed check."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    loop = Loop(
        home=home,
        store=ProfileStore(home),
        corpus=words_corpus(home / "corpus.txt"),
        model=model or (TINY_MODEL if tiny else DEFAULT_MODEL),
        env=dict(os.environ, LSTMTUI_HOME=str(home), LSTMTUI_CACHE=str(home / "cache"), PYTHONUNBUFFERED="1"),
        save_every_min=save_every_min,
        echo=echo,
    )
    rng = random.Random(seed)
    rounds = [kill_round(loop, i, kills, rng, max_delay_s) for i in range(kills)]
    target, final_problems = final_run(loop, final_steps)
    lost = [r.lost_steps for r in rounds if r.lost_steps is not None]
    lost_s = [r.lost_s for r in rounds if r.lost_s is not None]
    problems = [f"kill {r.index + 1}: {p}" for r in rounds for p in r.problems] + final_problems
    return {
        "kills": kills,
        "rounds": rounds,
        "problems": problems,
        "mid_save_kills": sum(r.interrupted_save for r in rounds),
        "saved_steps": [r.saved_step for r in rounds],
        "max_lost_steps": max(lost) if lost else None,
        "max_lost_s": max(lost_s) if lost_s else None,
        "final_step": target,
    }


def kill_round(loop: Loop, i: int, kills: int, rng: random.Random, max_delay_s: float) -> Round:
    """Start a run, SIGKILL it (after a random delay, or mid-save), and check what it left."""
    mode = "save" if i % 2 else "random"
    log = loop.home / f"round-{i:03d}.jsonl"
    delay = rng.uniform(0.3, max_delay_s) if mode == "random" else rng.uniform(0.0, 0.003)
    r = Round(index=i, mode=mode, delay_s=round(delay, 3))
    proc = subprocess.Popen(loop.command(log), env=loop.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    try:
        if mode == "random":
            _wait_at_random(proc, log, r, rng, delay)
        else:
            _wait_into_a_save(proc, loop.store, rng, delay)
    finally:
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        # A temporary version directory the dead process left behind: the kill cut a save short.
        r.interrupted_save = bool(_temp_dirs(loop.store, proc.pid))
    alive_s = time.monotonic() - started
    if proc.returncode != -signal.SIGKILL:
        r.problems.append(
            f"the run ended by itself (status {proc.returncode}): {err.decode(errors='replace').strip()[-300:]}"
        )
    _check_round(loop, r, read_log(log), killed_at)
    status = "ok" if not r.problems else "FAILED: " + "; ".join(r.problems)
    loop.echo(
        f"kill {i + 1:2d}/{kills} {r.mode:6s} after {alive_s:5.1f}s  saved step {r.saved_step}  "
        f"last reported save {r.last_logged_checkpoint}  last logged step {r.last_logged_step}  "
        f"resumed from {r.resumed_from}  mid-save {'yes' if r.interrupted_save else 'no'}  "
        f"lost {r.lost_steps} steps/{r.lost_s}s  {status}"
    )
    return r


def _wait_at_random(proc: subprocess.Popen, log: Path, r: Round, rng: random.Random, delay: float) -> None:
    """Mostly during training; one random round in four during start-up and preparation."""
    if rng.random() < 0.25:
        delay = r.delay_s = round(rng.uniform(0.2, 3.0), 3)
        r.mode = "start"
    elif not _wait_for_training(proc, log, timeout=120):
        r.problems.append("training never started")
    time.sleep(delay)


def _wait_into_a_save(proc: subprocess.Popen, store: ProfileStore, rng: random.Random, delay: float) -> None:
    """Let a few saves go by, then freeze the process (SIGSTOP) a random few ms into the next one."""
    for _ in range(rng.randint(1, 3)):
        if not _wait_for_save(proc, store, timeout=90):
            break
        while _temp_dirs(store, proc.pid) and proc.poll() is None:
            time.sleep(0.001)
    # If the save had already finished when the process froze, let it go on and try the next one,
    # so the kill lands mid-save.
    for _ in range(5):
        if not _wait_for_save(proc, store, timeout=90):
            break
        time.sleep(delay)
        proc.send_signal(signal.SIGSTOP)
        if _temp_dirs(store, proc.pid):
            break
        proc.send_signal(signal.SIGCONT)


def _check_round(loop: Loop, r: Round, events: list[dict], killed_at: float) -> None:
    """What the killed run logged against what the profile holds now; problems go into ``r``."""
    checkpoints = [e for e in events if e.get("event") == "checkpoint"]
    steps = [e for e in events if e.get("event") == "step"]
    if checkpoints:
        loop.ever_checkpointed = True
        r.last_logged_checkpoint = checkpoints[-1]["step"]
    if steps:
        r.last_logged_step = steps[-1]["step"]
        r.resumed_from = steps[0]["step"] - 1
        if loop.saved_before is not None and r.resumed_from != loop.saved_before:
            r.problems.append(f"resumed from step {r.resumed_from}, but the profile held step {loop.saved_before}")
        if loop.saved_before is None and r.resumed_from != 0:
            r.problems.append(f"a new profile started at step {r.resumed_from + 1}")
    if not loop.store.exists(PROFILE):
        if loop.ever_checkpointed:
            r.problems.append("the profile vanished after a reported save")
        return
    try:
        r.saved_step, _meta = check_profile(loop.store)
    except Exception as exc:  # a failed load is the finding to report
        r.problems.append(f"the profile does not load: {type(exc).__name__}: {exc}")
        return
    if loop.saved_before is not None and r.saved_step < loop.saved_before:
        r.problems.append(f"the saved step went back from {loop.saved_before} to {r.saved_step}")
    if r.last_logged_checkpoint is not None and r.saved_step < r.last_logged_checkpoint:
        r.problems.append(
            f"a reported save (step {r.last_logged_checkpoint}) was lost: the profile holds {r.saved_step}"
        )
    if r.last_logged_step is not None:
        r.lost_steps = max(0, r.last_logged_step - r.saved_step)
    # Work lost is at most the wall time between the committed version and the kill.
    committed = _committed_at(loop.store)
    if committed is not None and steps:
        r.lost_s = round(max(0.0, killed_at - committed), 2)
    loop.saved_before = r.saved_step


def final_run(loop: Loop, final_steps: int) -> tuple[int, list[str]]:
    """A last run, not killed: it must train on from the saved step to its --max-steps and finish."""
    final_log = loop.home / "final.jsonl"
    start_step = loop.saved_before or 0
    target = start_step + final_steps
    final = subprocess.run(
        loop.command(final_log, ["--max-steps", str(target)]), env=loop.env, capture_output=True, text=True, timeout=600
    )
    events = read_log(final_log)
    steps = [e["step"] for e in events if e.get("event") == "step"]
    finished = [e for e in events if e.get("event") == "finished"]
    problems = []
    if final.returncode != 0:
        problems.append(f"the final run failed ({final.returncode}): {final.stderr.strip()[-300:]}")
    if not steps or steps[0] != start_step + 1 or steps[-1] != target:
        problems.append(f"the final run trained steps {steps[:1]}..{steps[-1:]}, expected {start_step + 1}..{target}")
    if not finished or finished[-1].get("reason") != "max_steps":
        problems.append(f"the final run did not finish at --max-steps: {finished}")
    try:
        end_step, _ = check_profile(loop.store)
        if end_step != target:
            problems.append(f"the final profile holds step {end_step}, expected {target}")
    except Exception as exc:  # a failed load is the finding to report
        problems.append(f"the final profile does not load: {exc}")
    leftovers = _temp_dirs(loop.store)
    if leftovers:
        problems.append(f"temporary directories left after a clean save: {leftovers}")
    loop.echo(
        f"final run: resumed at step {steps[0] if steps else None}, finished at {steps[-1] if steps else None} "
        f"-> {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}"
    )
    return target, problems


def main(argv: list[str] | None = None) -> int:
    """Run the loop from the command line; 0 when every round passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="the suite's tiny model (saves take a few ms)")
    parser.add_argument(
        "--save-every", type=float, default=0.01, help="minutes between periodic saves (default 0.01 = 0.6 s)"
    )
    parser.add_argument("--max-delay", type=float, default=12.0, help="longest random delay before a kill, seconds")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    home = args.keep or Path(tempfile.mkdtemp(prefix="lstmtui-kill-"))
    t0 = time.monotonic()
    try:
        summary = kill_loop(home, args.kills, args.seed, args.tiny, args.save_every, args.max_delay)
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)
    minutes = (time.monotonic() - t0) / 60
    print(f"\n{summary['kills']} kills in {minutes:.1f} min, {summary['mid_save_kills']} of them with a save in flight")
    print(f"saved step after each kill: {summary['saved_steps']}")
    print(
        f"most work lost to one kill: {summary['max_lost_steps']} logged steps, "
        f"{summary['max_lost_s']} s of wall time since the last committed save "
        f"(periodic saves every {args.save_every * 60:g} s)"
    )
    if summary["problems"]:
        print("PROBLEMS:\n  " + "\n  ".join(summary["problems"]))
        return 1
    print("every kill survived: the profile loaded, resumed from its saved step, and no reported save was lost")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
