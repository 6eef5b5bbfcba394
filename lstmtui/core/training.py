"""TrainingSession: the training loop behind both the TUI and `lstmtui train`.

A session prepares the corpus, builds or restores the model, and trains with truncated BPTT over
contiguous streams. It emits typed events (lstmtui.core.events) to subscribers on its own thread,
and takes thread-safe commands (pause, resume, stop, set_lr, request_sample, save_now) that are
applied between steps. It never imports any user-interface code.
"""

from __future__ import annotations

import copy
import math
import os
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lstmtui.core import checkpoint
from lstmtui.core.batching import StreamBatcher
from lstmtui.core.config import TrainConfig, estimate_training_bytes
from lstmtui.core.device import describe, pick_device, set_threads
from lstmtui.core.errors import ConfigError, LstmtuiError, ProfileError
from lstmtui.core.events import (
    CheckpointEvent,
    EpochEvent,
    EvalEvent,
    Event,
    FailedEvent,
    FinishedEvent,
    PrepareEvent,
    SampleEvent,
    StateEvent,
    StepEvent,
    WarningEvent,
)
from lstmtui.core.heap import keep_step_buffers
from lstmtui.core.model import CharLSTM
from lstmtui.core.precision import autocast

LN2 = math.log(2.0)
# Largest corpus indexed for the live memorisation figure: the index is built inside the training
# thread (tinyshakespeare, 1.1M chars: 0.24 s and +24 MB peak), so a 50M-char corpus would stall
# training ~11 s and add ~1 GB; above this the figure is shown as unavailable.
LIVE_MEMO_MAX_CHARS = 5_000_000
MAX_BAD_STEPS = 8  # consecutive non-finite steps before training is declared diverged
HISTORY_POINTS = 4000  # train-loss points kept in a profile; older ones are merged pairwise


def evaluate(model: CharLSTM, data: np.ndarray, batch: int, seq_len: int, device: torch.device) -> float:
    """Mean cross-entropy (nats per char) of the model over a token array, state carried."""
    streams = max(1, min(batch, (len(data) - 1) // max(1, seq_len)))
    batcher = StreamBatcher(data, streams, seq_len, device)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.inference_mode():
        for x, y in batcher:
            logits, state = model(x, state)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train(was_training)
    return total / max(1, count)


class TrainingSession:
    """Trains a CharLSTM on a corpus, saving it as a profile; see the module docstring."""

    def __init__(
        self,
        corpus_paths: Sequence[str | Path] | None = None,
        config: TrainConfig | None = None,
        *,
        profile: str | None = None,
        store=None,
        cleaning=None,
        extend_vocab: bool = False,
        corpus=None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.corpus_paths = [str(p) for p in (corpus_paths or [])]
        self.config = (config or TrainConfig()).validate()
        self.overrides = dict(overrides or {})
        self.profile_name = profile
        self.store = store
        self.cleaning = cleaning
        self.extend_vocab = extend_vocab
        self.corpus = corpus
        self._memo_index = False  # the memorisation index: built on first use, None if too large
        self._memo_lock = threading.Lock()  # the training and generation threads may both ask for it
        self.state = "created"
        self.device_name = ""
        self.parameter_count = 0
        self.history: dict[str, list[list[float]]] = {"train": [], "val": []}
        self.result: Event | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._cond = threading.Condition()
        self._model_lock = threading.Lock()
        self._paused = False
        self._stop_requested = False
        self._sample_requested = False
        self._save_requested = False
        self._pending_lr: float | None = None
        self._model: CharLSTM | None = None
        self._vocab = None
        self._thread: threading.Thread | None = None
        self._ready = False
        self._saved_step = -1
        self.meta: dict | None = None

    # ----- subscribers and commands (any thread) -----

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback(event)`` for every event; it runs on the training thread."""
        self._subscribers.append(callback)

    def pause(self) -> None:
        """Pause after the current step."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        """Resume a paused session."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop at the next step boundary, saving what was trained."""
        with self._cond:
            self._stop_requested = True
            self._cond.notify_all()

    def set_lr(self, lr: float) -> None:
        """Change the peak learning rate (the schedule scales from it) from the next step on."""
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 < lr <= 100):
            raise ConfigError(f"learning rate must be in (0, 100], not {lr!r}")
        with self._cond:
            self._pending_lr = float(lr)
            self._cond.notify_all()

    def request_sample(self) -> None:
        """Emit a sample from the current weights after the current step."""
        with self._cond:
            self._sample_requested = True
            self._cond.notify_all()

    def save_now(self) -> None:
        """Save the profile after the current step."""
        with self._cond:
            self._save_requested = True
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        """Whether the session is paused."""
        return self._paused

    def snapshot(self):
        """A CPU copy of the latest weights in eval mode with the vocabulary, or None before the model exists."""
        with self._model_lock:
            if self._model is None:
                return None
            # deepcopy, not a fresh CharLSTM: building one would draw from the global RNG
            # and make the training run differ from an uninterrupted one.
            model = copy.deepcopy(self._model).to("cpu")
        return model.eval(), self._vocab

    def start(self) -> threading.Thread:
        """Run the session in a daemon thread and return it."""
        self._thread = threading.Thread(target=self.run, name="lstmtui-training", daemon=True)
        self._thread.start()
        return self._thread

    # ----- the run -----

    def run(self) -> Event:
        """Prepare, train and save; return the FinishedEvent or FailedEvent (also emitted)."""
        lock = None
        try:
            self._set_state("preparing")
            lock = self._prepare()
            self._set_state("training")
            result = self._train()
        except LstmtuiError as exc:
            result = self._fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any engine failure becomes an event, never a dead thread
            result = self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
        self.result = result
        return result

    def _fail(self, message: str) -> FailedEvent:
        if self._model is not None and self.store is not None and self.profile_name and self._ready:
            try:
                self._save("failed")
            except Exception:  # noqa: BLE001 - the original failure is the one to report
                pass
        event = FailedEvent(message=message, step=getattr(self, "step", 0))
        self._set_state("failed", message)
        self._emit(event)
        return event

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self._emit(StateEvent(state=state, detail=detail))

    def _progress(self, stage: str, done: int, total: int) -> None:
        self._emit(PrepareEvent(stage=stage, done=done, total=total))

    # ----- preparation -----

    def _prepare(self):
        from lstmtui.core.corpus import CleaningOptions, Vocab, check_trainable, load_corpus

        cfg = self.config
        meta = None
        lock = None
        if self.store is not None and self.profile_name:
            lock = self.store.lock(self.profile_name)
            lock.__enter__()
            if self.store.exists(self.profile_name):
                meta = self.store.load_meta(self.profile_name)
        self.meta = meta
        resuming = meta is not None
        if resuming:
            saved = dict(meta.get("train_config", {}))
            saved.update({k: v for k, v in self.overrides.items() if k in TrainConfig.__dataclass_fields__})
            # The architecture is the profile's; only training settings can be overridden.
            for key in ("hidden", "layers", "input", "embedding_dim"):
                saved[key] = meta["model"][key]
            cfg = self.config = TrainConfig.from_dict(saved)
            if self.cleaning is None:
                self.cleaning = CleaningOptions.from_dict(meta.get("corpus", {}).get("cleaning", {}))
            if not self.corpus_paths and self.corpus is None:
                self.corpus_paths = list(meta.get("corpus", {}).get("paths", []))
                if not self.corpus_paths:
                    raise ProfileError(f"profile {self.profile_name} records no corpus; give one to train on")
        cleaning = self.cleaning or CleaningOptions()
        self.cleaning = cleaning

        self.device = pick_device(cfg.device)
        set_threads(cfg.threads)
        self.device_name = describe(self.device)
        _seed_everything(cfg.seed)

        if self.corpus is None:
            vocab = Vocab.from_list(meta["vocab"]) if resuming else None
            self.corpus = load_corpus(
                self.corpus_paths,
                cleaning,
                vocab=vocab,
                extend_vocab=self.extend_vocab,
                progress=self._progress,
            )
        corpus = self.corpus
        self._vocab = corpus.vocab
        keep_step_buffers()  # before the planner times steps: it should time the real thing
        if not resuming and cfg.time_budget_s > 0 and "time_budget_s" in self.overrides:
            # --time-budget typed for a new model: size it for this machine; typed options are kept.
            from lstmtui.core.budget import plan

            n_train = len(corpus) - int(len(corpus) * cfg.val_fraction)
            cfg = self.config = plan(cfg, n_train, cfg.time_budget_s, self.device,
                                     vocab_size=len(corpus.vocab), fixed=set(self.overrides))
            set_threads(cfg.threads)
            self.device_name = describe(self.device)
        if cfg.precision == "bf16":
            self.device_name += ", bf16"
        check_trainable(corpus, cfg.batch, cfg.seq_len, cfg.val_fraction)
        train, val = corpus.split(cfg.val_fraction)
        self.train_data, self.val_data = train, val
        self.batcher = StreamBatcher(train, cfg.batch, cfg.seq_len, self.device)

        model_config = cfg.model_config(len(corpus.vocab))
        check_memory(model_config, cfg.batch, cfg.seq_len, self.device)
        model = CharLSTM(model_config)
        old_vocab_size = None
        same_corpus = False
        if resuming:
            old_vocab_size = meta["model"]["vocab_size"]
            same_corpus = meta.get("corpus", {}).get("sha256") == corpus.provenance.get("sha256")
            self._restore_weights(model, meta, old_vocab_size)
        model.to(self.device).train()
        # AdamW: decoupled weight decay (with none it is Adam, bit for bit)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.base_lr = cfg.lr
        self.lr_scale = 1.0
        self.epoch = 0
        self.epoch_step = 0
        self.step = 0
        self.elapsed_before = 0.0
        self.best_val_loss = math.inf
        self.best_step = -1
        self.bad_epochs = 0
        self.hidden = None
        self.best_weights = None
        self.created = None
        if resuming:
            self.history = meta.get("history") or {"train": [], "val": []}
            self.created = meta.get("created")
            if same_corpus and old_vocab_size == len(corpus.vocab):
                self._restore_progress(model, meta)
            else:
                # Fine-tuning: the weights carry over, the schedule and optimizer start afresh.
                self.history.setdefault("events", []).append(
                    {"step": int(meta.get("progress", {}).get("step", 0)), "event": "fine-tune", "corpus": corpus.provenance.get("paths")}
                )
        self._model = model
        self.parameter_count = model.parameter_count()
        self.total_steps = self.batcher.steps * cfg.epochs
        self._ready = True
        return lock

    def _restore_weights(self, model: CharLSTM, meta: dict, old_vocab_size: int) -> None:
        name = self.profile_name
        latest = self.store.load_tensors(name, "latest")
        if old_vocab_size == model.config.vocab_size:
            checkpoint.load_weights(model, latest, name)
            return
        # --extend-vocab: copy old rows/columns, keep the new ones freshly initialised.
        fresh = model.state_dict()
        for key, old in latest.items():
            new = fresh[key]
            if old.shape == new.shape:
                fresh[key] = old
                continue
            slices = tuple(slice(0, s) for s in old.shape)
            merged = new.clone()
            merged[slices] = old
            fresh[key] = merged
        checkpoint.load_weights(model, fresh, name)

    def _restore_progress(self, model: CharLSTM, meta: dict) -> None:
        name = self.profile_name
        progress = meta.get("progress", {})
        self.epoch = int(progress.get("epoch", 0))
        self.epoch_step = int(progress.get("epoch_step", 0))
        self.step = int(progress.get("step", 0))
        self.elapsed_before = float(progress.get("elapsed_s", 0.0))
        best = progress.get("best_val_loss")
        self.best_val_loss = float(best) if best is not None else math.inf
        self.best_step = int(progress.get("best_step", -1))
        self.bad_epochs = int(progress.get("bad_epochs", 0))
        self.base_lr = float(progress.get("base_lr", self.config.lr))
        if "lr" in self.overrides:
            self.base_lr = self.config.lr
        self.lr_scale = float(progress.get("lr_scale", 1.0))
        if self.epoch_step >= self.batcher.steps:
            self.epoch, self.epoch_step = self.epoch + 1, 0
        optim = self.store.load_tensors(name, "optim")
        checkpoint.optimizer_from_tensors(self.optimizer, optim, meta.get("optim_groups", []))
        for group in self.optimizer.param_groups:
            # this session's decay, not the saved group's (profiles before AdamW saved Adam's, always 0)
            group["weight_decay"] = self.config.weight_decay
            if "decoupled_weight_decay" in group:
                group["decoupled_weight_decay"] = True
        state = self.store.load_tensors(name, "state")
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if "h" in state and self.epoch_step > 0 and state["h"].shape[1] == self.config.batch:
            self.hidden = (state["h"].to(self.device), state["c"].to(self.device))
        checkpoint.restore_rng_json(meta.get("rng", {}))
        try:
            self.best_weights = self.store.load_tensors(name, "best")
        except ProfileError:
            self.best_weights = None

    # ----- the loop -----

    def _train(self) -> Event:
        cfg = self.config
        model = self._model
        if self.epoch >= cfg.epochs:
            raise ConfigError(
                f"profile {self.profile_name} has finished its {cfg.epochs} epochs; pass a larger --epochs to train further"
            )
        start_time = time.perf_counter()
        self._start_time = start_time
        last_save = start_time
        rate = _Rate()
        window_loss, window_steps = 0.0, 0
        record_every = max(1, self.total_steps // HISTORY_POINTS)
        bad_steps = 0
        reason = "completed"
        message = ""
        budget = cfg.time_budget_s

        while self.epoch < cfg.epochs:
            if self.epoch_step == 0:
                self.hidden = None
                epoch_loss, epoch_count = 0.0, 0
            else:
                epoch_loss, epoch_count = getattr(self, "_epoch_loss", (0.0, 0))
            while self.epoch_step < self.batcher.steps:
                if not self._wait_if_paused():
                    reason = "stopped"
                    break
                self._apply_commands()
                elapsed = self.elapsed_before + time.perf_counter() - start_time
                time_fraction = elapsed / budget if budget > 0 else 0.0
                lr = self.base_lr * self.lr_scale * _lr_factor(self, time_fraction)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                x, y = self.batcher.window(self.epoch_step)
                t0 = time.perf_counter()
                with self._model_lock:
                    loss_value, ok = self._step(model, x, y)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                dt = time.perf_counter() - t0
                if not ok:
                    bad_steps += 1
                    self.lr_scale *= 0.5
                    note = self._recover_weights(model)
                    self._emit(WarningEvent(step=self.step, message=f"non-finite loss at step {self.step}: step skipped, learning rate halved{note or ''}"))
                    if bad_steps >= MAX_BAD_STEPS or note is None:
                        reason = "diverged"
                        message = (
                            f"training diverged: {bad_steps} non-finite step(s) in a row even after lowering the "
                            f"learning rate; no non-finite weights were kept. Try a lower --lr"
                        )
                        break
                    self.hidden = None
                    continue
                bad_steps = 0
                self.step += 1
                self.epoch_step += 1
                epoch_loss += loss_value
                epoch_count += 1
                self._epoch_loss = (epoch_loss, epoch_count)
                window_loss += loss_value
                window_steps += 1
                rate.add(x.numel(), dt)
                elapsed = self.elapsed_before + time.perf_counter() - start_time
                if window_steps >= record_every:
                    self._record_train(window_loss / window_steps, elapsed)
                    window_loss, window_steps = 0.0, 0
                remaining = self.total_steps - (self.epoch * self.batcher.steps + self.epoch_step)
                eta = remaining * rate.seconds_per_step()
                if budget > 0:
                    eta = min(eta, max(0.0, budget - elapsed))
                self._emit(
                    StepEvent(
                        step=self.step,
                        epoch=self.epoch,
                        epoch_step=self.epoch_step,
                        steps_per_epoch=self.batcher.steps,
                        total_steps=self.total_steps,
                        loss=loss_value,
                        lr=lr,
                        chars_per_s=rate.chars_per_s(),
                        elapsed_s=elapsed,
                        eta_s=eta,
                    )
                )
                epoch_end = self.epoch_step >= self.batcher.steps
                if cfg.eval_every and self.step % cfg.eval_every == 0 and not epoch_end:
                    self._mid_epoch_eval(elapsed)
                if (cfg.sample_every and self.step % cfg.sample_every == 0 and not epoch_end) or self._take_flag("_sample_requested"):
                    self._sample()
                now = time.perf_counter()
                if self._take_flag("_save_requested"):
                    self._save("requested")
                    last_save = now
                elif cfg.save_every_min > 0 and now - last_save >= cfg.save_every_min * 60:
                    self._save("periodic")
                    last_save = now
                if cfg.max_steps and self.step >= cfg.max_steps:
                    reason = "max_steps"
                    break
                if budget > 0 and elapsed >= budget:
                    reason = "time_budget"
                    break
                if self._stop_requested:
                    reason = "stopped"
                    break
            else:
                # The epoch ran to its end.
                elapsed = self.elapsed_before + time.perf_counter() - start_time
                stop_early = self._end_epoch(epoch_loss / max(1, epoch_count), rate, elapsed)
                self.epoch += 1
                self.epoch_step = 0
                self._sample()
                self._save("epoch")
                last_save = time.perf_counter()
                if stop_early:
                    reason = "early_stopped"
                    message = f"no better validation loss for {cfg.early_stop_patience} epochs"
                    break
                continue
            break

        elapsed = self.elapsed_before + time.perf_counter() - start_time
        if reason != "diverged" and (self.best_val_loss == math.inf or reason in ("max_steps", "time_budget")):
            # Make sure the saved profile has a validation figure for its final weights.
            self._mid_epoch_eval(elapsed, full=True)
        if self._saved_step != self.step or reason != "completed":
            self._save(reason)
        state = "finished" if reason in ("completed", "early_stopped", "max_steps", "time_budget") else "stopped"
        if reason == "diverged":
            state = "failed"
        self._set_state(state, message)
        event = FinishedEvent(
            reason=reason,
            step=self.step,
            epoch=self.epoch,
            best_val_loss=self.best_val_loss,
            best_val_bpc=self.best_val_loss / LN2,
            elapsed_s=elapsed,
            message=message,
        )
        self._emit(event)
        return event

    def _step(self, model: CharLSTM, x: torch.Tensor, y: torch.Tensor) -> tuple[float, bool]:
        """One optimisation step; returns (loss, ok). Non-finite loss or gradients skip the update."""
        with autocast(self.device, self.config.precision):
            logits, state = model(x, self.hidden)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        value = loss.item()
        if not math.isfinite(value):
            return value, False
        loss.backward()
        clip = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if not torch.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            return value, False
        self.optimizer.step()
        # float32 like the weights, whatever the step ran in: checkpoints and resumes see one dtype
        self.hidden = (state[0].detach().float(), state[1].detach().float())
        return value, True

    def _recover_weights(self, model: CharLSTM) -> str | None:
        """If the weights themselves went non-finite, go back to the best finite ones.

        Returns a note for the warning, '' when the weights were fine, None when nothing finite is left.
        """
        with torch.no_grad():
            if all(torch.isfinite(p).all() for p in model.parameters()):
                return ""
            source = self.best_weights
            if source is None:
                try:
                    source = self.store.load_tensors(self.profile_name, "latest") if self.store and self.profile_name else None
                except LstmtuiError:
                    source = None
            if source is None:
                return None
            with self._model_lock:
                model.load_state_dict(source)
                # Adam's moments may hold the same non-finite values: start them afresh.
                self.optimizer.state.clear()
            self.hidden = None
        return ", weights restored from the best finite ones"

    def _wait_if_paused(self) -> bool:
        """Block while paused; False when a stop was requested."""
        with self._cond:
            if self._paused and not self._stop_requested:
                self.state = "paused"
                self._emit(StateEvent(state="paused"))
                while self._paused and not self._stop_requested:
                    if self._save_requested:
                        self._save_requested = False
                        self._cond.release()
                        try:
                            self._save("requested")
                        finally:
                            self._cond.acquire()
                    if self._sample_requested:
                        self._sample_requested = False
                        self._cond.release()
                        try:
                            self._sample()
                        finally:
                            self._cond.acquire()
                    self._cond.wait(0.25)
                if not self._stop_requested:
                    self.state = "training"
                    self._emit(StateEvent(state="training"))
            return not self._stop_requested

    def _apply_commands(self) -> None:
        with self._cond:
            if self._pending_lr is not None:
                self.base_lr = self._pending_lr
                self.lr_scale = 1.0
                self._pending_lr = None

    def _take_flag(self, name: str) -> bool:
        with self._cond:
            value = getattr(self, name)
            setattr(self, name, False)
            return value

    def _record_train(self, loss: float, elapsed: float) -> None:
        train = self.history.setdefault("train", [])
        train.append([self.step, round(loss, 5), round(elapsed, 2)])
        if len(train) > HISTORY_POINTS:
            # Merge neighbours so the whole run stays drawn in bounded space.
            merged = [[b[0], round((a[1] + b[1]) / 2, 5), b[2]] for a, b in zip(train[0::2], train[1::2])]
            if len(train) % 2:
                merged.append(train[-1])
            self.history["train"] = merged

    def _validate(self, full: bool) -> float:
        data = self.val_data
        if not full and len(data) > self.config.eval_max_chars:
            data = data[: self.config.eval_max_chars]
        with self._model_lock:
            return evaluate(self._model, data, self.config.batch, self.config.seq_len, self.device)

    def _note_val(self, val_loss: float, elapsed: float) -> bool:
        self.history.setdefault("val", []).append([self.step, round(val_loss, 5), round(val_loss / LN2, 5), round(elapsed, 2)])
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self.best_step = self.step
            with self._model_lock:
                self.best_weights = checkpoint.cpu_state_dict(self._model)
            return True
        return False

    def _mid_epoch_eval(self, elapsed: float, full: bool = False) -> None:
        val_loss = self._validate(full)
        if not math.isfinite(val_loss):
            self._emit(WarningEvent(step=self.step, message="validation loss is not finite"))
            return
        improved = self._note_val(val_loss, elapsed)
        self._emit(
            EvalEvent(
                step=self.step,
                epoch=self.epoch,
                val_loss=val_loss,
                val_bpc=val_loss / LN2,
                best_val_loss=self.best_val_loss,
                elapsed_s=elapsed,
            )
        )
        if improved and not full:
            self._save("best")

    def _end_epoch(self, train_loss: float, rate: "_Rate", elapsed: float) -> bool:
        val_loss = self._validate(full=True)
        improved = math.isfinite(val_loss) and self._note_val(val_loss, elapsed)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        self._emit(
            EpochEvent(
                epoch=self.epoch + 1,
                step=self.step,
                train_loss=train_loss,
                val_loss=val_loss,
                val_bpc=val_loss / LN2,
                chars_per_s=rate.chars_per_s(),
                elapsed_s=elapsed,
                best_val_loss=self.best_val_loss,
                lr=self.optimizer.param_groups[0]["lr"],
            )
        )
        patience = self.config.early_stop_patience
        return bool(patience) and self.bad_epochs >= patience

    def _sample(self) -> None:
        """Emit a sample from the current weights; its RNG is its own, so training is undisturbed."""
        from lstmtui.core.sampling import sample_text

        cfg = self.config
        if cfg.sample_length <= 0:
            return
        generator = torch.Generator(device="cpu")
        generator.manual_seed(cfg.seed * 1_000_003 + self.step)
        prime = self._sample_prime()
        snap = self.snapshot()
        if snap is None:
            return
        model, vocab = snap
        text = sample_text(model, vocab, prime, cfg.sample_length, cfg.sample_temperature, generator=generator)
        self._emit(SampleEvent(step=self.step, epoch=self.epoch, temperature=cfg.sample_temperature, prime=prime, text=text,
                               memorised=self._memorised(text, prime)))

    def _memorised(self, text: str, prime: str) -> float | None:
        """Share of a sample copied verbatim from the corpus."""
        index = self.memorisation_index()
        return None if index is None else index.share(text, prime)

    def memorisation_index(self):
        """The corpus's MemorisationIndex, built once on first use (None: no corpus yet, or too large)."""
        from lstmtui.core.memorisation import MemorisationIndex

        with self._memo_lock:
            if self._memo_index is False and self.corpus is not None:
                self._memo_index = MemorisationIndex.from_corpus(self.corpus, max_chars=LIVE_MEMO_MAX_CHARS)
            return None if self._memo_index is False else self._memo_index

    def _sample_prime(self) -> str:
        chars = self._vocab.chars
        return "\n" if "\n" in chars else chars[0]

    # ----- saving -----

    def _save(self, reason: str) -> None:
        """Save the profile; a failed save warns and leaves the previous version untouched."""
        if self.store is None or not self.profile_name:
            return
        t0 = time.perf_counter()
        try:
            with self._model_lock:
                latest = checkpoint.cpu_state_dict(self._model)
                optim, groups = checkpoint.optimizer_to_tensors(self.optimizer)
            if not all(torch.isfinite(v).all() for v in latest.values() if v.is_floating_point()):
                self._emit(WarningEvent(step=self.step, message="weights are not finite: not saved"))
                return
            state = {"torch_rng": torch.get_rng_state()}
            if self.hidden is not None:
                state["h"] = self.hidden[0].detach().to("cpu", copy=True).contiguous()
                state["c"] = self.hidden[1].detach().to("cpu", copy=True).contiguous()
            tensors = {"latest": latest, "best": self.best_weights or latest, "optim": optim, "state": state}
            elapsed = self.elapsed_before + time.perf_counter() - getattr(self, "_start_time", t0)
            sampling = (self.meta or {}).get("sampling") if getattr(self, "meta", None) else None
            meta = checkpoint.build_meta(
                model=self._model.config.to_dict(),
                vocab=self._vocab.to_list(),
                train_config=self.config.to_dict(),
                progress={
                    "epoch": self.epoch,
                    "epoch_step": self.epoch_step,
                    "steps_per_epoch": self.batcher.steps,
                    "step": self.step,
                    "elapsed_s": round(elapsed, 3),
                    "best_val_loss": None if self.best_val_loss == math.inf else self.best_val_loss,
                    "best_val_bpc": None if self.best_val_loss == math.inf else self.best_val_loss / LN2,
                    "best_step": self.best_step,
                    "bad_epochs": self.bad_epochs,
                    "base_lr": self.base_lr,
                    "lr_scale": self.lr_scale,
                    "hidden_policy": checkpoint.HIDDEN_POLICY,
                    "finished": self.epoch >= self.config.epochs,
                    "parameters": self.parameter_count,
                    "device": self.device_name,
                },
                optim_groups=groups,
                rng=checkpoint.rng_json(),
                history=self.history,
                corpus=self.corpus.provenance,
            )
            if sampling:
                meta["sampling"] = sampling
            if self.created:
                meta["created"] = self.created
            path = self.store.save(self.profile_name, meta, tensors)
            self._saved_step = self.step
        except LstmtuiError as exc:
            self._emit(WarningEvent(step=self.step, message=str(exc)))
            return
        except OSError as exc:
            self._emit(WarningEvent(step=self.step, message=f"could not save profile {self.profile_name}: {exc.strerror or exc}"))
            return
        self._emit(
            CheckpointEvent(
                step=self.step,
                epoch=self.epoch,
                reason=reason,
                profile=self.profile_name,
                path=str(path),
                seconds=time.perf_counter() - t0,
            )
        )


def available_memory(device: torch.device) -> int | None:
    """Bytes of memory training can use on a device (physical RAM for the CPU), or None if unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(model_config, batch: int, seq_len: int, device: torch.device) -> None:
    """Refuse, before allocating anything, settings whose estimated memory need exceeds the device's."""
    need = estimate_training_bytes(model_config, batch, seq_len)
    have = available_memory(device)
    if have is not None and need > 0.8 * have:
        raise ConfigError(
            f"these settings need about {need / 2**30:.1f} GiB to train ({model_config.parameter_count():,} parameters, "
            f"--batch {batch}, --seq-len {seq_len}) but {device.type} has {have / 2**30:.1f} GiB; "
            f"lower --hidden, --layers, --batch or --seq-len"
        )


def _lr_factor(session: TrainingSession, time_fraction: float) -> float:
    from lstmtui.core.schedule import lr_factor

    cfg = session.config
    global_step = session.epoch * session.batcher.steps + session.epoch_step
    return lr_factor(global_step, session.total_steps, cfg.warmup_steps, cfg.min_lr_ratio, time_fraction)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class _Rate:
    """Throughput over the recent steps (exponentially weighted), in chars/s."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.chars = 0.0
        self.seconds = 0.0
        self.steps = 0

    def add(self, chars: int, seconds: float) -> None:
        if self.steps == 0:
            self.chars, self.seconds = float(chars), seconds
        else:
            self.chars += self.alpha * (chars - self.chars)
            self.seconds += self.alpha * (seconds - self.seconds)
        self.steps += 1

    def chars_per_s(self) -> float:
        return self.chars / self.seconds if self.seconds > 0 else 0.0

    def seconds_per_step(self) -> float:
        return self.seconds
