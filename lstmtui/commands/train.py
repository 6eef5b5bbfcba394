"""`lstmtui train CORPUS`: headless training with a rich progress display or plain lines."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lstmtui.commands.common import (
    add_corpus_options,
    add_home_option,
    add_training_options,
    add_units_option,
    cleaning_from_args,
    config_from_args,
    json_line,
    option_for,
    overrides_from_args,
)
from lstmtui.commands.detach import Background, add_detach_options, detaching, start_detached
from lstmtui.commands.launch import add_nproc_option, join_world, launch_torchrun, launching, rank_display
from lstmtui.commands.train_notes import fine_tune_line
from lstmtui.core.errors import LstmtuiError
from lstmtui.core.events import Event, FailedEvent, FinishedEvent
from lstmtui.core.runhost import RunHost, Subscription
from lstmtui.core.units import format_duration, format_loss, loss_unit, unit_label
from lstmtui.core.userfiles import open_output

if TYPE_CHECKING:
    from lstmtui.core.training import TrainingSession

PLAIN_EVERY_S = 5.0
DISPLAY_EVERY_S = 0.1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `train`."""
    parser = subparsers.add_parser(
        "train",
        help="train a model without the TUI",
        description="Train a character-level LSTM on CORPUS and save it as a profile.",
    )
    parser.add_argument(
        "corpus",
        nargs="*",
        help="text file(s), a directory, or - for stdin (default with --profile: the profile's corpus)",
    )
    parser.add_argument("--profile", help="profile to create or continue (default: a new one named after the corpus)")
    parser.add_argument(
        "--extend-vocab",
        action="store_true",
        help="when fine-tuning, grow the vocabulary with the new corpus's characters (default: refuse them)",
    )
    parser.add_argument(
        "--log-jsonl", type=Path, metavar="FILE", help="write every event as one JSON object per line to FILE"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="plain progress lines even on a terminal (default: rich display on a terminal)",
    )
    add_detach_options(parser)
    add_nproc_option(parser)
    add_home_option(parser)
    add_units_option(parser)
    add_corpus_options(parser)
    add_training_options(parser)
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Train until done, stopped (Ctrl+C, SIGTERM, `lstmtui stop`) or failed; the profile keeps the work."""
    from lstmtui.core.corpus import default_corpus_path
    from lstmtui.core.profiles import ProfileStore, validate_name
    from lstmtui.core.training import TrainingSession

    config = config_from_args(args)
    unit = loss_unit(args.units)
    store = ProfileStore(args.home)
    paths = list(args.corpus)
    if args.profile:
        name = validate_name(args.profile)
    else:
        if not paths:
            paths = [str(default_corpus_path())]
        stem = "stdin" if paths[0] == "-" else Path(paths[0]).stem or Path(paths[0]).name
        name = store.unique_name(stem)
    if detaching(args):
        return start_detached(args, store, name)
    if launching(args):
        return launch_torchrun(args, name)
    world = join_world(args)  # under torchrun: this rank's place in the run; rank 0 alone reports and serves
    name = world.share_text(name)
    session = TrainingSession(
        paths,
        config,
        profile=name,
        store=store,
        cleaning=cleaning_from_args(args),
        extend_vocab=args.extend_vocab,
        overrides=overrides_from_args(args),
        world=world,
    )
    log = open_output(args.log_jsonl, "--log-jsonl", append=True) if args.log_jsonl and world.is_main else None
    if log is not None:
        # Written on the training thread, so the log holds every event even if the display falls behind.
        session.subscribe(JsonlWriter(log))
    host = RunHost(session)
    background = Background(args, store, name)  # the run's socket; a hang-up keeps it training
    tty = sys.stdout.isatty() and not args.plain and world.is_main
    display = RichReporter(unit) if tty else PlainReporter(sys.stdout, unit)
    display = rank_display(world, background.display(display, lambda: PlainReporter(sys.stdout, unit)))
    # torchrun's agent ends its processes after a hang-up: they stop and save instead of detaching
    stop_signal, previous = _install_stop_handlers(host, None if world.joined else background.hangup_handler())
    if world.is_main:
        background.serve(host)
    subscription = host.subscribe()
    host.start()
    try:
        _show_until_done(host, subscription, display)
        host.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        display.close()
        background.close()
        if log is not None:
            log.close()
    unsaved = _unsaved_work(store, name, session) if world.is_main else ""
    status = _exit_status(host.result, args.parser, unsaved, stop_signal)
    world.close()
    return status


def _show_until_done(host: RunHost, subscription: Subscription, display: Callable[[Event], None]) -> None:
    """Show the run's events until it ends, a batch every DISPLAY_EVERY_S (the training thread never wakes
    this one per step); a display that fell too far behind is dropped by the host and catches up."""
    while True:
        for event in subscription.drain():
            display(event)
        if subscription.closed:
            if not subscription.dropped:
                return
            subscription = host.subscribe()  # some lines are skipped; the display goes on from here
        time.sleep(DISPLAY_EVERY_S)


def _exit_status(
    result: FinishedEvent | FailedEvent | None,
    parser: argparse.ArgumentParser | None,
    unsaved: str,
    stop_signal: list[int],
) -> int:
    """0, 2 with a one-line error (failed, diverged, or the last save failed), or 128+signal when stopped by one."""
    message = ""
    if isinstance(result, FailedEvent):
        flag = option_for(parser, result.setting) if result.setting else None
        message = f"{flag}: {result.message}" if flag else result.message
    elif isinstance(result, FinishedEvent) and result.reason == "diverged":
        message = result.message
    message = message or unsaved
    if message:
        print(f"lstmtui: error: {message}", file=sys.stderr)
        return 2
    return 128 + stop_signal[0] if stop_signal else 0


def _unsaved_work(store, name: str, session: TrainingSession) -> str:
    """Why the profile does not hold the last trained step (its final save failed), or ''."""
    if not session.ready:
        return ""
    step = session.step
    try:
        saved = store.load_meta(name).progress.step
    except LstmtuiError:
        saved = None
    if saved == step:
        return ""
    held = f"it holds step {saved}" if saved is not None else "nothing was saved"
    return f"the final save of profile {name} failed (see the warning above): {held}, training reached step {step}"


def _install_stop_handlers(host: RunHost, on_hangup: Callable[[], None] | None = None) -> tuple[list[int], dict]:
    """Ctrl+C, SIGTERM and SIGHUP stop at a step boundary and save; a second Ctrl+C quits at once.

    With ``on_hangup`` (--on-hangup detach), SIGHUP calls it instead and training goes on.
    """
    received: list[int] = []

    def handler(signum, frame):
        if on_hangup is not None and signum == getattr(signal, "SIGHUP", None):
            on_hangup()
            return
        if received and signum == signal.SIGINT:
            # Quit at once, as a kill would: the profile keeps its last complete save. No interpreter
            # shutdown, which aborts ("terminate called...") while the training thread is inside torch.
            _say("lstmtui: interrupted; the profile keeps its last save", sys.stderr)
            os._exit(130)
        received.append(signum)
        host.stop()  # first: printing can fail when the terminal is gone (SIGHUP)
        _say(f"\nstopping at the next step and saving (signal {signal.Signals(signum).name})...", sys.stderr)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                previous[sig] = signal.signal(sig, handler)
    return received, previous


def _silence_dead_terminal() -> None:
    """The terminal went away (an SSH link dropped): let later output to it vanish instead of failing.

    Writes to a hung-up terminal fail with EIO; left alone they would kill the signal handler, the
    reporters and the interpreter's last flush before the session saves. Files and pipes are kept.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        try:
            if os.isatty(fd):
                os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


def _say(text: str, stream: IO[str]) -> None:
    """Print a line; a terminal that is gone silences output rather than raising."""
    try:
        print(text, file=stream, flush=True)
    except (BrokenPipeError, ValueError):
        pass
    except OSError:
        _silence_dead_terminal()


def _fmt_time(seconds: float) -> str:
    return format_duration(seconds, missing="?")


def _copied(event, sep: str = ", ") -> str:
    """The sample's share copied verbatim from the corpus, as a label suffix ('' when unknown)."""
    return "" if event.memorised is None else f"{sep}copied {event.memorised:.0%}"


class JsonlWriter:
    """Writes each event as one JSON line (the --log-jsonl format)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, event) -> None:
        self.stream.write(json_line(event.to_dict()) + "\n")  # strict JSON: a NaN loss is null
        if event.kind != "step":
            self.stream.flush()


class PlainReporter:
    """Plain progress lines for logs and pipes: a step line every few seconds, every epoch and sample."""

    def __init__(self, stream: IO[str], unit: str = "bits") -> None:
        self.stream = stream
        self.unit = unit  # of the losses shown: bits or nats per character
        self.last = 0.0

    def _print(self, text: str) -> None:
        _say(text, self.stream)

    def __call__(self, event: Event) -> None:
        if event.kind == "step":
            now = time.monotonic()
            if now - self.last < PLAIN_EVERY_S:
                return
            self.last = now
        line = _plain_line(event, self.unit)
        if line is not None:
            self._print(line)

    def close(self) -> None:
        """Nothing to release."""


def _plain_line(event, unit: str = "bits") -> str | None:
    """The plain progress line for an event, or None for events the plain display leaves out; losses in
    ``unit`` (bits or nats per character), the unit named once a line."""
    kind = event.kind
    label = unit_label(unit)
    if kind == "step":
        return (
            f"step {event.step}/{'≈' if event.forecast else ''}{event.total_steps} epoch {event.epoch} "
            f"loss {format_loss(event.loss, unit, 4)} {label} "
            f"lr {event.lr:.2e} {event.chars_per_s:,.0f} chars/s eta {_fmt_time(event.eta_s)}"
        )
    if kind == "epoch":
        best = format_loss(event.best_val_loss, unit, 4, estimate=event.best_estimate, missing="-")
        return (
            f"epoch {event.epoch} step {event.step}: train {format_loss(event.train_loss, unit, 4, missing='-')} "
            f"val {format_loss(event.val_loss, unit, 4, missing='-')} best {best} {label} "
            f"{event.chars_per_s:,.0f} chars/s elapsed {_fmt_time(event.elapsed_s)}"
        )
    if kind == "eval":
        val = format_loss(event.val_loss, unit, 4, estimate=event.estimate, stderr=event.stderr, missing="-")
        best = format_loss(event.best_val_loss, unit, 4, estimate=event.estimate, missing="-")
        note = " (an estimate of the full split)" if event.estimate else ""
        return f"step {event.step}: val {val} {label}{note}, best {best}"
    if kind == "sample":
        title = f"sample (step {event.step}, temperature {event.temperature}{_copied(event)})"
        return f"--- {title} ---\n{event.text}\n---"
    if kind == "checkpoint" and event.reason not in ("best", "periodic"):
        return f"saved profile {event.profile} ({event.reason}) in {event.seconds:.2f}s"
    if kind == "warning":
        return f"warning: {event.message}"
    if kind == "prepare":
        return _corpus_notice(event)
    if kind == "fine_tune":
        return fine_tune_line(event)
    if kind == "state" and event.state == "preparing" and event.detail == "":
        return "preparing corpus..."
    if kind == "finished":
        return (
            f"finished ({event.reason}) at step {event.step}, epoch {event.epoch}: "
            f"best val {format_loss(event.best_val_loss, unit, 4, missing='-')} {label} (full split) "
            f"in {_fmt_time(event.elapsed_s)}" + (f" - {event.message}" if event.message else "")
        )
    return None


def _corpus_notice(event) -> str | None:
    """A note or warning from reading the corpus (what --encoding auto chose, a cache that failed), or None."""
    from lstmtui.core.corpus.load import NOTICE_PREFIXES  # numpy: not at start-up

    return event.stage if event.stage.startswith(NOTICE_PREFIXES) else None


class RichReporter:
    """A live rich progress bar with loss, validation and throughput; samples printed above it."""

    def __init__(self, unit: str = "bits") -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self.unit = unit  # of the losses shown: bits or nats per character
        self.console = Console()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.fields[approx]}{task.total}"),
            TextColumn("loss [cyan]{task.fields[loss]}"),
            TextColumn("val [magenta]{task.fields[val]}[/] " + unit_label(unit)),
            TextColumn("{task.fields[rate]} ch/s"),
            TextColumn("eta {task.fields[eta]}"),
            console=self.console,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task("preparing", total=None, approx="", loss="-", val="-", rate="-", eta="?")
        self.val = "-"
        self.progress.start()

    def __call__(self, event) -> None:
        try:
            self._show(event)
        except OSError:
            _silence_dead_terminal()

    def _show(self, event) -> None:
        kind = event.kind
        p = self.progress
        if kind == "prepare" and _corpus_notice(event):
            p.console.print(event.stage, markup=False, highlight=False)
        elif kind == "prepare":
            p.update(self.task, description=f"{event.stage}", completed=event.done, total=event.total or None)
        elif kind == "fine_tune":
            p.console.print(fine_tune_line(event), style="bold", markup=False, highlight=False)
        elif kind == "step":
            p.update(
                self.task,
                description=f"epoch {event.epoch}",
                completed=event.step,
                total=event.total_steps,
                approx="≈" if event.forecast else "",  # a time budget's total is a forecast
                loss=format_loss(event.loss, self.unit),
                val=self.val,
                rate=f"{event.chars_per_s:,.0f}",
                eta=_fmt_time(event.eta_s),
            )
        elif kind in ("epoch", "eval"):
            estimate = kind == "eval" and event.estimate
            self.val = format_loss(event.val_loss, self.unit, estimate=estimate, stderr=getattr(event, "stderr", None))
            p.update(self.task, val=self.val)
            if kind == "epoch":
                u = self.unit
                best = format_loss(event.best_val_loss, u, 4, estimate=event.best_estimate)
                p.console.print(
                    f"[bold]epoch {event.epoch}[/] train {format_loss(event.train_loss, u, 4)}  "
                    f"val {format_loss(event.val_loss, u, 4)}  best {best} {unit_label(u)}  "
                    f"{event.chars_per_s:,.0f} chars/s"
                )
        elif kind == "sample":
            from rich.panel import Panel
            from rich.text import Text

            p.console.print(
                Panel(
                    Text(event.text),
                    title=f"sample · step {event.step} · T={event.temperature}{_copied(event, ' · ')}",
                    expand=False,
                )
            )
        elif kind == "warning":
            p.console.print(f"[yellow]warning:[/] {event.message}")
        elif kind == "checkpoint" and event.reason not in ("best", "periodic"):
            p.console.print(f"[green]saved[/] profile {event.profile} ({event.reason})")
        elif kind == "finished":
            p.stop()  # the bar's last frame stays above the final line, not drawn again under it
            p.console.print(
                f"[bold green]finished[/] ({event.reason}) at step {event.step}: "
                f"best val {format_loss(event.best_val_loss, self.unit, 4, missing='-')} {unit_label(self.unit)} "
                f"(full split) in {_fmt_time(event.elapsed_s)}" + (f" - {event.message}" if event.message else "")
            )

    def close(self) -> None:
        """Stop the live display."""
        try:
            self.progress.stop()
        except OSError:
            _silence_dead_terminal()
