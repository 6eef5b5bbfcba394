"""The training loop of one session, as nanoGPT's train.py reads.

Each iteration: apply rank 0's decision (wait out a pause) -> train a chunk of steps and read it
back (deferred.py) -> maybe evaluate -> maybe sample -> maybe save -> stop if a limit is reached
-> at an epoch's last step, validate the whole split. A chunk is one step on one CPU process, so
that reads step by step. A non-finite step is skipped with the learning rate halved; several in a
row end the run. In a distributed run every rank runs this loop and takes the same branches: what
depends on a clock, a command or a validation figure is rank 0's decision (decisions.py).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable

import torch

from lstmtui.core import checkpoint
from lstmtui.core.config import TrainConfig
from lstmtui.core.events import EpochEvent, EvalEvent, Event, FinishedEvent, StepEvent, WarningEvent
from lstmtui.core.training.commands import Commands
from lstmtui.core.training.decisions import Decision, decide, share_figure
from lstmtui.core.training.deferred import Chunk, ChunkRead, chunk_length, read_chunk, run_chunk, sync_interval
from lstmtui.core.training.evaluation import ValFigure, Validation
from lstmtui.core.training.forecast import EVAL_SPEEDUP, RunForecast, Schedule
from lstmtui.core.training.progress import HISTORY_POINTS, LN2, RunState
from lstmtui.core.training.setup import Setup
from lstmtui.core.training.step import recover_weights

MAX_BAD_STEPS = 8  # consecutive non-finite steps before training is declared diverged
FINISHED_REASONS = ("completed", "early_stopped", "max_steps", "time_budget")
RESERVE_MARGIN = 1.25  # the time kept for the final validation, over its prediction
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
        sync_every: int | None = None,
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
        self.validation = Validation(setup.val_data, config.eval_max_chars, setup.device)
        self.forecast = RunForecast(self._schedule())
        self._checked_step = -1  # the step whose weights the last check measured
        self.world = setup.world
        self.sync_every = sync_interval(setup.device, setup.world, sync_every)  # steps between reads
        self._time_fraction = 0.0  # of the time budget, as rank 0 last read its clock

    def train(self) -> FinishedEvent:
        """Train until done; save, and return (and emit) the FinishedEvent."""
        tally = self.run.tally
        tally.started_at = tally.last_save = time.perf_counter()
        tally.record_every = max(1, self.setup.total_steps // HISTORY_POINTS)
        if self.run.progress.epoch_step == 0:
            self._start_epoch()
        decision = self._read(None)  # commands that came before the first step
        reason = ""
        while not reason:
            reason = self._apply(decision)
            if reason:
                break
            decision, trained = self._train_chunk()
            if not trained:
                reason = self._after_bad_step()
                continue
            self._maybe_evaluate()
            self.commands.take()
            self._maybe_sample()
            self._maybe_save(decision)
            reason = self._limit_reached(decision) or self._maybe_end_epoch()
        return self._finish(reason)

    # ----- the step -----

    def _start_epoch(self) -> None:
        self.run.hidden = None
        self.run.tally.epoch_loss, self.run.tally.epoch_steps = 0.0, 0

    def _train_chunk(self) -> tuple[Decision, bool]:
        """Train the epoch's next windows up to the next read, count them, take rank 0's decision there;
        False when a step was skipped as non-finite (the steps before it count, the rest are dropped)."""
        setup, run = self.setup, self.run
        self.world.settle()  # DDP averages the first step's gradients: nobody waits there for rank 0's own work
        steps = chunk_length(run.progress, self.config, setup.batcher.steps, self.sync_every)
        chunk = run_chunk(setup, run, self.config, steps, self._time_fraction, self._model_lock)
        read, decision = self._read_back(chunk)
        times = read.step_times(chunk)
        for loss, lr, chars, (seconds, elapsed) in zip(read.losses, chunk.lrs, chunk.chars, times, strict=False):
            self._count_step(loss, lr, chars, seconds, elapsed)
        decision = decision or self._decided(self._decide())
        if read.skipped_at is not None:
            return decision, False
        run.hidden = chunk.hidden
        return decision, True

    def _count_step(self, loss: float, lr: float, chars: int, seconds: float, elapsed: float) -> None:
        """Advance the counters, record the loss and emit the step's event."""
        p, tally = self.run.progress, self.run.tally
        tally.bad_steps = 0
        p.step += 1
        p.epoch_step += 1
        tally.epoch_loss += loss
        tally.epoch_steps += 1
        tally.window_loss += loss
        tally.window_steps += 1
        tally.rate.add(chars, seconds)
        self._elapsed_at_step = elapsed
        if tally.window_steps >= tally.record_every:
            self.run.history.add_train(p.step, tally.window_loss / tally.window_steps, elapsed)
            tally.window_loss, tally.window_steps = 0.0, 0
        self.forecast.observe(p.step, p.epoch_step, elapsed)
        total, eta = self._forecast_end(elapsed)
        self._emit(
            StepEvent(
                step=p.step,
                epoch=p.epoch_number(),
                epoch_step=p.epoch_step,
                steps_per_epoch=self.setup.batcher.steps,
                total_steps=total,
                loss=loss,
                lr=lr,
                chars_per_s=tally.rate.chars_per_s(),
                elapsed_s=elapsed,
                eta_s=eta,
                forecast=self.config.time_budget_s > 0,
            )
        )

    def _after_bad_step(self) -> str:
        """Halve the learning rate, repair non-finite weights; 'diverged' when that is hopeless, else ''."""
        run, p, tally = self.run, self.run.progress, self.run.tally
        tally.bad_steps += 1
        p.lr_scale *= 0.5
        note = self._recover_weights()
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

    def _recover_weights(self) -> str | None:
        """recover_weights on rank 0, whose outcome every rank follows (restored weights are broadcast)."""
        self.world.solo()
        note = recover_weights(self.setup.model, self.setup.optimizer, self._model_lock, self._finite_weights)
        if not self.world.joined:
            return note
        (outcome,) = self.world.share([0.0 if note == "" else 2.0 if note is None else 1.0])
        if outcome == 1.0:
            with self._model_lock:
                self.world.broadcast_(list(self.setup.model.parameters()))
                self.setup.optimizer.state.clear()
        return "" if outcome == 0.0 else None if outcome == 2.0 else ", weights restored from the best finite ones"

    def _finite_weights(self) -> Tensors | None:
        return self.run.best_weights if self.run.best_weights is not None else self._saved_weights()

    # ----- after the step -----

    def _epoch_ending(self) -> bool:
        return self.run.progress.epoch_step >= self.setup.batcher.steps

    def _maybe_evaluate(self) -> None:
        every = self.config.eval_every
        if every and self.run.progress.step % every == 0 and not self._epoch_ending():
            self._maybe_save_best(self._elapsed_at_step)

    def _maybe_sample(self) -> None:
        every = self.config.sample_every
        scheduled = every and self.run.progress.step % every == 0 and not self._epoch_ending()
        if scheduled or self.commands.take_sample():
            self._sample()

    def _maybe_save(self, decision: Decision) -> None:
        if decision.save:
            self._save(decision.save)
            self.run.tally.last_save = time.perf_counter()

    def _limit_reached(self, decision: Decision) -> str:
        """Why training ends after this step ('max_steps', 'time_budget', 'stopped'), or ''."""
        cfg = self.config
        if cfg.max_steps and self.run.progress.step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget_s > 0 and decision.over_budget:
            return "time_budget"
        return "stopped" if decision.stop else ""

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
        if reason != "diverged":
            self._final_validation(reason, self.run.elapsed())
        elapsed = self.run.elapsed()
        if self.run.saved_step != p.step or reason != "completed":
            self._save(reason)
        state = "finished" if reason in FINISHED_REASONS else "failed" if reason == "diverged" else "stopped"
        self._set_state(state, self._end_message)
        best = p.best_full if p.best_full is not None else math.inf
        event = FinishedEvent(
            reason=reason,
            step=p.step,
            epoch=p.epoch_number(),
            best_val_loss=best,
            best_val_bpc=best / LN2,
            elapsed_s=elapsed,
            message=self._end_message,
        )
        self._emit(event)
        return event

    # ----- rank 0's decisions, at the reads -----

    def _read_back(self, chunk: Chunk | None) -> tuple[ChunkRead, Decision | None]:
        """Read a chunk back and, in a distributed run, take rank 0's decision in the same collective.

        One process decides after the chunk's events instead (``_decided``): a command sent while they
        were shown then acts before the next step, as when every step is read.
        """
        joined = self.world.joined
        values = self._decide().values() if joined and self.world.is_main else Decision().values()
        self.commands.take()
        read, shared = read_chunk(chunk, self.world, self.commands.stopping, values)
        return read, (self._decided(Decision.from_values(shared)) if joined else None)

    def _read(self, chunk: Chunk | None) -> Decision:
        return self._read_back(chunk)[1] or self._decided(self._decide())

    def _decided(self, decision: Decision) -> Decision:
        self._time_fraction = decision.time_fraction
        return decision

    def _decide(self) -> Decision:
        """Rank 0's decision from its commands and clock."""
        every_min, budget = self.config.save_every_min, self.config.time_budget_s
        due = every_min > 0 and time.perf_counter() - self.run.tally.last_save >= every_min * 60
        deadline = self._deadline() if budget > 0 else 0.0
        return decide(self.commands, elapsed=self.run.elapsed(), deadline=deadline, save_due=due)

    def _apply(self, decision: Decision) -> str:
        """Wait out a pause, take a new learning rate; 'stopped' when asked to stop, else ''."""
        if decision.pause and not decision.stop:
            decision = self._wait_while_paused()
        if decision.stop:
            return "stopped"
        self._take_lr(decision)
        return ""

    def _take_lr(self, decision: Decision) -> None:
        if decision.lr is not None:
            self.run.progress.base_lr, self.run.progress.lr_scale = decision.lr, 1.0

    def _wait_while_paused(self) -> Decision:
        """Block until resumed or stopped; saves and samples asked for meanwhile are made at once.

        Rank 0 shares a decision at least every ``keepalive_s``, so the others, waiting for it, never
        reach the collectives' timeout however long the pause.
        """
        self._set_state("paused", "")
        while True:
            self.world.solo()
            if self.world.is_main:
                self.commands.wait(self.world.keepalive_s)
            decision = self._read(None)
            self._take_lr(decision)
            self._maybe_save(decision)
            if self.commands.take_sample():
                self._sample()
            if decision.stop or not decision.pause:
                break
        if not decision.stop:
            self._set_state("training", "")
        return Decision(stop=decision.stop, time_fraction=decision.time_fraction)

    # ----- validation -----

    def _check(self, model=None) -> ValFigure:
        """A check between epoch ends: the estimate, or the full figure of a small split (rank 0's, shared)."""
        figure = None
        self.world.solo()
        if self.world.is_main:
            with self._model_lock:
                figure = self.validation.check(model or self.setup.model)
        return share_figure(self.world, figure)

    def _full(self, model=None) -> ValFigure:
        figure = None
        self.world.solo()
        if self.world.is_main:
            with self._model_lock:
                figure = self.validation.full(model or self.setup.model)
        return share_figure(self.world, figure)

    def _keep_if_best(self, figure: ValFigure, full: float | None) -> bool:
        """Offer a check's figure to keep-best; True (and the weights kept) when it is the best yet."""
        p = self.run.progress
        self._checked_step = p.step
        if not math.isfinite(figure.loss) or not p.note_check(figure.loss, figure.stderr, full):
            return False
        with self._model_lock:
            self.run.best_weights = checkpoint.cpu_state_dict(self.setup.model)
        return True

    def evaluate(self, elapsed: float) -> bool:
        """Check the validation loss, emit the figure, keep new best weights; True when they are the best yet."""
        figure = self._check()
        p = self.run.progress
        if not math.isfinite(figure.loss):
            self._emit(WarningEvent(step=p.step, message="validation loss is not finite"))
            return False
        self.run.history.add_val(p.step, figure.loss, elapsed)
        improved = self._keep_if_best(figure, None)
        self._emit(
            EvalEvent(
                step=p.step,
                epoch=p.epoch_number(),
                val_loss=figure.loss,
                val_bpc=figure.loss / LN2,
                best_val_loss=p.best_val_loss,
                elapsed_s=elapsed,
                estimate=figure.estimate,
                stderr=figure.stderr,
            )
        )
        return improved

    def _maybe_save_best(self, elapsed: float) -> None:
        if self.evaluate(elapsed):
            self._save("best")

    def _end_epoch(self, train_loss: float, elapsed: float) -> bool:
        """Validate the whole split at an epoch's end; True when early stopping ends training.

        Keep-best compares the check (an estimate when the split is estimated) like every other check.
        """
        p = self.run.progress
        full = self._full()
        check = self._check() if self.validation.estimates else full
        if math.isfinite(full.loss):
            self.run.history.add_val(p.step, full.loss, elapsed)
        improved = self._keep_if_best(check, full.loss)
        p.bad_epochs = 0 if improved else p.bad_epochs + 1
        self._emit(
            EpochEvent(
                epoch=p.epoch_number(),
                step=p.step,
                train_loss=train_loss,
                val_loss=full.loss,
                val_bpc=full.loss / LN2,
                chars_per_s=self.run.tally.rate.chars_per_s(),
                elapsed_s=elapsed,
                best_val_loss=p.best_val_loss,
                lr=self.setup.optimizer.param_groups[0]["lr"],
                best_estimate=p.best_estimated,
            )
        )
        patience = self.config.early_stop_patience
        return bool(patience) and p.bad_epochs >= patience

    def _final_validation(self, reason: str, elapsed: float) -> None:
        """The figures a run ends with: a check of the last weights (when a limit cut the run short or none
        was made), then the full-split figure of the kept weights, which the finish reports and the profile stores."""
        p = self.run.progress
        if self._checked_step != p.step and (not p.best_known or reason in ("max_steps", "time_budget")):
            self.evaluate(elapsed)
        if p.best_full is not None or self.run.best_weights is None:
            return
        if p.best_step == p.step:
            p.best_full = self._full().loss
            return
        with self._model_lock:
            model = copy.deepcopy(self.setup.model)
        model.load_state_dict(self.run.best_weights)
        p.best_full = self._full(model).loss

    # ----- the forecast of the end -----

    def _schedule(self) -> Schedule:
        cfg, setup, plan = self.config, self.setup, self.validation.plan
        return Schedule(
            steps_per_epoch=setup.batcher.steps,
            eval_every=cfg.eval_every,
            sample_every=cfg.sample_every,
            step_chars=cfg.batch * cfg.seq_len,
            check_chars=plan.chars_read if plan is not None else len(setup.val_data),
            full_chars=len(setup.val_data) + (plan.chars_read if plan is not None else 0),  # an epoch end's reads
            sample_chars=cfg.sample_length,
        )

    def _final_seconds(self) -> float:
        """Predicted seconds of the final validation (see Validation.final_seconds)."""
        return self.validation.final_seconds(EVAL_SPEEDUP * self.run.tally.rate.chars_per_s())

    def _deadline(self) -> float:
        """When training must end under the time budget for the final validation to end inside it."""
        budget = self.config.time_budget_s
        return max(0.5 * budget, budget - RESERVE_MARGIN * self._final_seconds())

    def _forecast_end(self, elapsed: float) -> tuple[int, float]:
        """(the step training will end at, the seconds until the run ends, final validation included)."""
        setup, p, budget = self.setup, self.run.progress, self.config.time_budget_s
        last = p.step + setup.total_steps - p.global_step(setup.batcher.steps)  # the last step of the last epoch
        if not self.forecast.ready:  # the first steps: from the step time alone
            per_step = self.run.tally.rate.seconds_per_step()
            if budget > 0 and per_step > 0:
                last = min(last, p.step + int(max(0.0, self._deadline() - elapsed) / per_step))
            eta = (last - p.step) * per_step
            return last, min(eta, max(0.0, budget - elapsed)) if budget > 0 else eta
        end = last
        if budget > 0:
            end = self.forecast.final_step(p.step, p.epoch_step, self._deadline() - elapsed, last)
        eta = self.forecast.seconds_for(p.step, p.epoch_step, end - p.step) + self._final_seconds()
        return end, min(eta, max(0.0, budget - elapsed)) if budget > 0 else eta
