"""The training loop of one session, as nanoGPT's train.py reads.

Each iteration: take commands (wait out a pause) -> train a step -> maybe evaluate -> maybe sample
-> maybe save -> stop if a limit is reached -> at an epoch's last step, validate the whole split.
A non-finite step is skipped with the learning rate halved; several in a row end the run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import torch

from lstmtui.core import checkpoint
from lstmtui.core.config import TrainConfig
from lstmtui.core.events import EpochEvent, EvalEvent, Event, FinishedEvent, StepEvent, WarningEvent
from lstmtui.core.training.commands import Commands
from lstmtui.core.training.evaluation import evaluate
from lstmtui.core.training.progress import HISTORY_POINTS, LN2, RunState
from lstmtui.core.training.setup import Setup
from lstmtui.core.training.step import learning_rate, recover_weights, train_step

MAX_BAD_STEPS = 8  # consecutive non-finite steps before training is declared diverged
FINISHED_REASONS = ("completed", "early_stopped", "max_steps", "time_budget")
Tensors = dict[str, torch.Tensor]


class TrainingLoop:
    """Trains a prepared session until a limit, a stop or divergence; the session provides saving and samples."""

    def __init__(
        self,
        config: TrainConfig,
        setup: Setup,
        run: RunState,
        commands: Commands,
        *,
        emit: Callable[[Event], None],
        set_state: Callable[[str, str], None],
        model_lock: threading.Lock,
        save: Callable[[str], None],
        sample: Callable[[], None],
        saved_weights: Callable[[], Tensors | None],
    ) -> None:
        self.config = config
        self.setup = setup
        self.run = run
        self.commands = commands
        self._emit = emit
        self._set_state = set_state
        self._model_lock = model_lock
        self._save = save
        self._sample = sample
        self._saved_weights = saved_weights
        self._elapsed_at_step = 0.0  # training time when the last step ended
        self._end_message = ""

    def train(self) -> FinishedEvent:
        """Train until done; save, and return (and emit) the FinishedEvent."""
        tally = self.run.tally
        tally.started_at = tally.last_save = time.perf_counter()
        tally.record_every = max(1, self.setup.total_steps // HISTORY_POINTS)
        if self.run.progress.epoch_step == 0:
            self._start_epoch()
        reason = ""
        while not reason:
            reason = self._step_boundary()
            if reason:
                break
            if not self._train_step():
                reason = self._after_bad_step()
                continue
            self._maybe_evaluate()
            self.commands.take()
            self._maybe_sample()
            self._maybe_save()
            reason = self._limit_reached() or self._maybe_end_epoch()
        return self._finish(reason)

    # ----- the step -----

    def _start_epoch(self) -> None:
        self.run.hidden = None
        self.run.tally.epoch_loss, self.run.tally.epoch_steps = 0.0, 0

    def _train_step(self) -> bool:
        """Train on the epoch's next window; False when the step was skipped as non-finite."""
        setup, run, budget = self.setup, self.run, self.config.time_budget_s
        time_fraction = run.elapsed() / budget if budget > 0 else 0.0
        lr = learning_rate(run.progress, self.config, setup.batcher.steps, setup.total_steps, time_fraction)
        for group in setup.optimizer.param_groups:
            group["lr"] = lr
        x, y = setup.batcher.window(run.progress.epoch_step)
        t0 = time.perf_counter()
        with self._model_lock:
            loss, hidden = train_step(setup.model, setup.optimizer, x, y, run.hidden, self.config, setup.device)
        if setup.device.type == "cuda":
            torch.cuda.synchronize(setup.device)
        seconds = time.perf_counter() - t0
        if hidden is None:
            return False
        run.hidden = hidden
        self._count_step(loss, lr, x.numel(), seconds)
        return True

    def _count_step(self, loss: float, lr: float, chars: int, seconds: float) -> None:
        """Advance the counters, record the loss and emit the step's event."""
        setup, p, tally, budget = self.setup, self.run.progress, self.run.tally, self.config.time_budget_s
        tally.bad_steps = 0
        p.step += 1
        p.epoch_step += 1
        tally.epoch_loss += loss
        tally.epoch_steps += 1
        tally.window_loss += loss
        tally.window_steps += 1
        tally.rate.add(chars, seconds)
        elapsed = self._elapsed_at_step = self.run.elapsed()
        if tally.window_steps >= tally.record_every:
            self.run.history.add_train(p.step, tally.window_loss / tally.window_steps, elapsed)
            tally.window_loss, tally.window_steps = 0.0, 0
        eta = (setup.total_steps - p.global_step(setup.batcher.steps)) * tally.rate.seconds_per_step()
        if budget > 0:
            eta = min(eta, max(0.0, budget - elapsed))
        self._emit(
            StepEvent(
                step=p.step,
                epoch=p.epoch,
                epoch_step=p.epoch_step,
                steps_per_epoch=setup.batcher.steps,
                total_steps=setup.total_steps,
                loss=loss,
                lr=lr,
                chars_per_s=tally.rate.chars_per_s(),
                elapsed_s=elapsed,
                eta_s=eta,
            )
        )

    def _after_bad_step(self) -> str:
        """Halve the learning rate, repair non-finite weights; 'diverged' when that is hopeless, else ''."""
        run, p, tally = self.run, self.run.progress, self.run.tally
        tally.bad_steps += 1
        p.lr_scale *= 0.5
        note = recover_weights(self.setup.model, self.setup.optimizer, self._model_lock, self._finite_weights)
        if note:
            run.hidden = None
        message = f"non-finite loss at step {p.step}: step skipped, learning rate halved{note or ''}"
        self._emit(WarningEvent(step=p.step, message=message))
        if tally.bad_steps >= MAX_BAD_STEPS or note is None:
            self._end_message = (
                f"training diverged: {tally.bad_steps} non-finite step(s) in a row even after lowering the "
                f"learning rate; no non-finite weights were kept. Try a lower learning rate"
            )
            return "diverged"
        run.hidden = None
        return ""

    def _finite_weights(self) -> Tensors | None:
        return self.run.best_weights if self.run.best_weights is not None else self._saved_weights()

    # ----- after the step -----

    def _epoch_ending(self) -> bool:
        return self.run.progress.epoch_step >= self.setup.batcher.steps

    def _maybe_evaluate(self) -> None:
        every = self.config.eval_every
        if every and self.run.progress.step % every == 0 and not self._epoch_ending():
            self.evaluate(self._elapsed_at_step)

    def _maybe_sample(self) -> None:
        every = self.config.sample_every
        scheduled = every and self.run.progress.step % every == 0 and not self._epoch_ending()
        if scheduled or self.commands.take_sample():
            self._sample()

    def _maybe_save(self) -> None:
        now, tally, every_min = time.perf_counter(), self.run.tally, self.config.save_every_min
        if self.commands.take_save():
            self._save("requested")
            tally.last_save = now
        elif every_min > 0 and now - tally.last_save >= every_min * 60:
            self._save("periodic")
            tally.last_save = now

    def _limit_reached(self) -> str:
        """Why training ends after this step ('max_steps', 'time_budget', 'stopped'), or ''."""
        cfg = self.config
        if cfg.max_steps and self.run.progress.step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget_s > 0 and self._elapsed_at_step >= cfg.time_budget_s:
            return "time_budget"
        return "stopped" if self.commands.stopping else ""

    def _maybe_end_epoch(self) -> str:
        """At an epoch's last step: validate, sample and save; 'early_stopped' or 'completed' when training ends."""
        if not self._epoch_ending():
            return ""
        p, tally = self.run.progress, self.run.tally
        stop_early = self._end_epoch(tally.epoch_loss / max(1, tally.epoch_steps), self.run.elapsed())
        p.epoch += 1
        p.epoch_step = 0
        self._sample()
        self._save("epoch")
        tally.last_save = time.perf_counter()
        if stop_early:
            self._end_message = f"no better validation loss for {self.config.early_stop_patience} epochs"
            return "early_stopped"
        if p.epoch >= self.config.epochs:
            return "completed"
        self._start_epoch()
        return ""

    def _finish(self, reason: str) -> FinishedEvent:
        p = self.run.progress
        elapsed = self.run.elapsed()
        if reason != "diverged" and (not p.best_known or reason in ("max_steps", "time_budget")):
            # Make sure the saved profile has a validation figure for its final weights.
            self.evaluate(elapsed, full=True)
        if self.run.saved_step != p.step or reason != "completed":
            self._save(reason)
        state = "finished" if reason in FINISHED_REASONS else "failed" if reason == "diverged" else "stopped"
        self._set_state(state, self._end_message)
        event = FinishedEvent(
            reason=reason,
            step=p.step,
            epoch=p.epoch,
            best_val_loss=p.best_val_loss,
            best_val_bpc=p.best_val_loss / LN2,
            elapsed_s=elapsed,
            message=self._end_message,
        )
        self._emit(event)
        return event

    # ----- commands at step boundaries -----

    def _step_boundary(self) -> str:
        """Apply the queued commands, wait out a pause; 'stopped' when asked to stop, else ''."""
        commands = self.commands
        commands.take()
        if commands.paused and not commands.stopping:
            self._wait_while_paused()
        if commands.stopping:
            return "stopped"
        lr = commands.take_lr()
        if lr is not None:
            self.run.progress.base_lr, self.run.progress.lr_scale = lr, 1.0
        return ""

    def _wait_while_paused(self) -> None:
        """Block until resumed or stopped; saves and samples asked for meanwhile are made at once."""
        commands = self.commands
        self._set_state("paused", "")
        while commands.paused and not commands.stopping:
            if commands.take_save():
                self._save("requested")
            if commands.take_sample():
                self._sample()
            commands.wait()
        if not commands.stopping:
            self._set_state("training", "")

    # ----- validation -----

    def _validate(self, full: bool) -> float:
        setup, cfg = self.setup, self.config
        data = setup.val_data
        if not full and len(data) > cfg.eval_max_chars:
            data = data[: cfg.eval_max_chars]
        with self._model_lock:
            return evaluate(setup.model, data, cfg.batch, cfg.seq_len, setup.device)

    def _note_val(self, val_loss: float, elapsed: float) -> bool:
        """Record a validation loss; True (and the weights kept as the best) when it is the best yet."""
        p = self.run.progress
        self.run.history.add_val(p.step, val_loss, elapsed)
        if val_loss < p.best_val_loss:
            p.best_val_loss, p.best_step = val_loss, p.step
            with self._model_lock:
                self.run.best_weights = checkpoint.cpu_state_dict(self.setup.model)
            return True
        return False

    def evaluate(self, elapsed: float, full: bool = False) -> None:
        """Validate (a prefix of the split unless ``full``), emit the figure, save new best weights."""
        val_loss = self._validate(full)
        p = self.run.progress
        if not math.isfinite(val_loss):
            self._emit(WarningEvent(step=p.step, message="validation loss is not finite"))
            return
        improved = self._note_val(val_loss, elapsed)
        self._emit(
            EvalEvent(
                step=p.step,
                epoch=p.epoch,
                val_loss=val_loss,
                val_bpc=val_loss / LN2,
                best_val_loss=p.best_val_loss,
                elapsed_s=elapsed,
            )
        )
        if improved and not full:
            self._save("best")

    def _end_epoch(self, train_loss: float, elapsed: float) -> bool:
        """Validate the whole split at an epoch's end; True when early stopping ends training."""
        p = self.run.progress
        val_loss = self._validate(full=True)
        improved = math.isfinite(val_loss) and self._note_val(val_loss, elapsed)
        p.bad_epochs = 0 if improved else p.bad_epochs + 1
        self._emit(
            EpochEvent(
                epoch=p.epoch + 1,
                step=p.step,
                train_loss=train_loss,
                val_loss=val_loss,
                val_bpc=val_loss / LN2,
                chars_per_s=self.run.tally.rate.chars_per_s(),
                elapsed_s=elapsed,
                best_val_loss=p.best_val_loss,
                lr=self.setup.optimizer.param_groups[0]["lr"],
            )
        )
        patience = self.config.early_stop_patience
        return bool(patience) and p.bad_epochs >= patience
