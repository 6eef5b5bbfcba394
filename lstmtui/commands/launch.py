"""`lstmtui train` on several processes: `--nproc N` starts torchrun for this machine; under torchrun, each
process joins the run (lstmtui.core.distributed) and only rank 0 reports, logs and serves the socket."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable

from lstmtui.core.errors import ConfigError, LstmtuiError
from lstmtui.core.events import Event

TORCHRUN_ENV = ("RANK", "WORLD_SIZE")
MAX_NPROC = 1024


def add_nproc_option(parser: argparse.ArgumentParser) -> None:
    """--nproc."""
    parser.add_argument(
        "--nproc",
        type=int,
        default=0,
        metavar="N",
        help="train on N processes of this machine (one per GPU; gloo on CPU) with data parallelism, started "
        "by torchrun (`python -m torch.distributed.run --standalone --nproc-per-node N`); --batch is the "
        "total over all of them (default: one process)",
    )


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher of torch.distributed) started this process."""
    return all(name in os.environ for name in TORCHRUN_ENV)


def launching(args: argparse.Namespace) -> bool:
    """Whether this invocation starts torchrun (--nproc above 1, outside torchrun)."""
    nproc = getattr(args, "nproc", 0) or 0
    if nproc < 0 or nproc > MAX_NPROC:
        raise ConfigError(f"--nproc must be between 1 and {MAX_NPROC}, not {nproc}")
    if nproc and under_torchrun():
        raise LstmtuiError("--nproc starts torchrun itself; under torchrun, leave it out")
    return nproc > 1


def join_world(args: argparse.Namespace):
    """This process's World: joined to the process group under torchrun, else a single process."""
    from lstmtui.core.distributed import World

    if not under_torchrun():
        return World()
    if getattr(args, "detach", False) and not os.environ.get("LSTMTUI_DETACHED"):
        raise LstmtuiError("under torchrun, --detach cannot detach one process; use lstmtui train --nproc N --detach")
    return World.from_env()


def torchrun_argv(argv: list[str], nproc: int, name: str, profile: str | None) -> list[str]:
    """The torchrun command line that runs this `train` command on ``nproc`` processes (without --nproc)."""
    child: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        option = arg.split("=", 1)[0]
        if len(option) >= 4 and "--nproc".startswith(option):
            skip_value = "=" not in arg
            continue
        child.append(arg)
    if not profile:
        child += ["--profile", name]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "lstmtui",
        *child,
    ]


def launch_torchrun(args: argparse.Namespace, name: str) -> int:
    """Run this `train` command on --nproc processes under torchrun and wait for it; its exit status.

    torchrun starts in a session of its own: Ctrl+C and SIGTERM reach it from here (it passes them to
    the processes, which stop and save), and a hang-up is this process's alone (--on-hangup stop
    passes it on as SIGTERM; detach leaves the run training).
    """
    from lstmtui.core.distributed import check_batch

    if "--batch" in _typed(args):
        check_batch(args.batch, args.nproc)
    if "-" in args.corpus:
        raise LstmtuiError("--nproc cannot read the corpus from stdin; give a file")
    env = dict(os.environ)
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # every process is on this machine
    argv = torchrun_argv(list(getattr(args, "argv", None) or ["train"]), args.nproc, name, args.profile)
    proc = subprocess.Popen(argv, env=env, start_new_session=True)
    previous = _forward_signals(proc, getattr(args, "on_hangup", "detach"))
    try:
        status = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


def _typed(args: argparse.Namespace) -> set[str]:
    """The options typed on the command line (their long forms as written)."""
    return {a.split("=", 1)[0] for a in (getattr(args, "argv", None) or []) if a.startswith("--")}


def _forward_signals(proc: subprocess.Popen, on_hangup: str) -> dict:
    """Pass Ctrl+C and SIGTERM to torchrun; a hang-up too with --on-hangup stop (as SIGTERM)."""

    def forward(signum, frame):
        if signum == getattr(signal, "SIGHUP", None):
            if on_hangup != "stop":
                return
            signum = signal.SIGTERM
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, forward)
    return previous


class QuietDisplay:
    """The display of ranks other than 0, which shows nothing: rank 0 reports for the whole run."""

    def __call__(self, event: Event) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Nothing to release."""


def rank_display(world, display: Callable[[Event], None]):
    """``display`` on rank 0 (or a single process), a QuietDisplay elsewhere."""
    return display if world.is_main else QuietDisplay()
