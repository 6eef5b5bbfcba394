"""Validation figures that mean what they say: estimates of the full split, full-split finishes, epochs from 1."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lstmtui.core.config import TrainConfig
from lstmtui.core.corpus import Vocab
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileStore
from lstmtui.core.training import TrainingSession, resolve
from lstmtui.core.training.evaluation import (
    EVAL_STREAMS,
    Validation,
    WindowPlan,
    estimated_loss,
    full_split_loss,
)

CPU = torch.device("cpu")
VOCAB = Vocab(list("\n+=0123456789abcdefghijklmnopqrstuvwxyz "))


def sums_text(n_lines: int, rng: random.Random) -> str:
    """Lines like '12+7=19': easy to predict once learnt."""
    return "".join(f"{a}+{b}={a + b}\n" for a, b in ((rng.randint(0, 49), rng.randint(0, 49)) for _ in range(n_lines)))


def noise_text(n_chars: int, rng: random.Random) -> str:
    """Random words: hard to predict whatever is learnt."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(n_chars))


def mixed_text(n_blocks: int, seed: int) -> str:
    """Blocks of sums and of noise, a few hundred characters each: a split whose parts differ."""
    rng = random.Random(seed)
    blocks = (sums_text(rng.randint(20, 60), rng) + noise_text(rng.randint(200, 600), rng) for _ in range(n_blocks))
    return "".join(blocks)


@pytest.fixture(scope="module")
def trained():
    """A small model trained on mixed text, and a validation array that starts with a long run of sums."""
    torch.manual_seed(0)
    rng = random.Random(1)
    train = torch.from_numpy(VOCAB.encode(mixed_text(120, seed=2)).astype(np.int64))
    model = CharLSTM(TrainConfig(hidden=48, layers=1, dropout=0.0).model_config(len(VOCAB)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    streams = train[: (len(train) - 1) // 16 * 16 + 1]
    n = (len(streams) - 1) // 16
    xs, ys = streams[:-1].reshape(16, n), streams[1:].reshape(16, n)
    state = None
    for k in range(0, min(n, 64 * 100), 64):
        logits, state = model(xs[:, k : k + 64], state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), ys[:, k : k + 64].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    val = VOCAB.encode(sums_text(1000, rng) + mixed_text(80, seed=3))
    return model, val


def continuous_loss(model: CharLSTM, data: np.ndarray) -> float:
    """The loss of one continuous read of the whole array, state carried all the way."""
    x = torch.from_numpy(data[:-1].astype(np.int64))[None]
    y = torch.from_numpy(data[1:].astype(np.int64))[None]
    with torch.inference_mode():
        logits, _ = model(x)
        return F.cross_entropy(logits[0], y[0]).item()


def test_estimate_windows_are_fixed_spread_over_the_split_and_bounded():
    n, budget = 1_000_000, 20_000
    plan = WindowPlan.for_split(n, budget)
    assert plan == WindowPlan.for_split(n, budget)  # the same windows every time
    count = len(plan.starts)
    assert count >= 32 and count * plan.length <= budget
    assert list(plan.starts) == sorted(plan.starts)
    # one window in each of `count` equal parts of the split, from its start to its end
    part = (n - 1 - plan.length - plan.warmup) / count
    for i, start in enumerate(plan.starts):
        assert plan.warmup + i * part <= start < plan.warmup + (i + 1) * part
    assert plan.starts[0] >= plan.warmup and plan.starts[-1] + plan.length < n - 1
    assert plan.chars_read == count * (plan.length + plan.warmup)
    # a split the full figure reads about as cheaply is read whole
    assert WindowPlan.for_split(30_000, budget) is None
    assert WindowPlan.for_split(n, 10**9) is None


def test_the_estimate_is_unbiased_where_a_prefix_of_the_split_is_not(trained):
    model, val = trained
    full = full_split_loss(model, val, CPU)
    plan = WindowPlan.for_split(len(val), 4000)
    estimate = estimated_loss(model, val, plan, CPU)
    assert estimate.estimate and full.estimate is False and full.stderr is None
    assert estimate.stderr > 0 and estimate.chars == len(plan.starts) * plan.length
    assert abs(estimate.loss - full.loss) <= 2 * estimate.stderr
    assert estimated_loss(model, val, plan, CPU).loss == estimate.loss  # the same windows, the same figure
    # what the checks between epoch ends used to read: the first --eval-max-chars characters
    prefix = full_split_loss(model, val[:4000], CPU)
    assert abs(prefix.loss - full.loss) > 5 * estimate.stderr


def test_each_window_is_read_after_an_uncounted_warm_up(trained):
    model, val = trained
    plan = WindowPlan.for_split(len(val), 4000)
    warm = estimated_loss(model, val, plan, CPU)
    cold = estimated_loss(model, val, dataclasses.replace(plan, warmup=0), CPU)
    assert warm.chars == cold.chars == len(plan.starts) * plan.length  # the warm-up is not counted
    assert cold.loss > warm.loss  # a cold state inflates what a window reads


def test_the_full_split_figure_reads_the_split_as_one_stream_whatever_the_batch(trained):
    model, val = trained
    val = val[: 8 * EVAL_STREAMS * 64]
    full = full_split_loss(model, val, CPU)
    assert full.chars >= len(val) - EVAL_STREAMS
    # 32 streams, each after a warm-up on the text before it: a continuous read's figure
    assert full.loss == pytest.approx(continuous_loss(model, val), rel=2e-3)
    whole = Validation(val, 10**9, CPU)
    assert whole.full(model).loss == full.loss
    assert not whole.estimates and whole.check(model).loss == full.loss  # a small split is checked whole


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        hidden=48,
        layers=1,
        seq_len=32,
        batch=16,
        epochs=50,
        lr=1e-2,
        warmup_steps=5,
        dropout=0.0,
        eval_every=10,
        eval_max_chars=2000,
        sample_every=0,
        sample_length=40,
        save_every_min=0.0,
        threads=1,
        val_fraction=0.3,
    )
    base.update(kw)
    return TrainConfig(**base).validate()


@pytest.fixture
def mixed_file(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text(mixed_text(300, seed=5))
    return path


def test_checks_are_labelled_estimates_keep_best_compares_them_and_the_finish_is_a_full_split_figure(mixed_file):
    store = ProfileStore()
    session = TrainingSession([mixed_file], tiny_config(max_steps=60), profile="est", store=store)
    events = []
    session.subscribe(events.append)
    finished = session.run()
    assert finished.kind == "finished", finished
    checks = [e for e in events if e.kind == "eval"]
    assert len(checks) >= 6
    assert all(e.estimate and e.stderr is not None and 0 < e.stderr < 1 for e in checks)
    assert [e.to_dict()["estimate"] for e in checks] == [True] * len(checks)
    # keep-best chose the lowest estimate; the best each check reports is the lowest estimate so far
    lowest = min(checks, key=lambda e: e.val_loss)
    assert [e.best_val_loss for e in checks] == list(np.minimum.accumulate([e.val_loss for e in checks]))
    progress = store.load_meta("est").progress
    assert progress.best_step == lowest.step and progress.best_estimate == lowest.val_loss
    assert progress.best_estimate_stderr == lowest.stderr
    # the finish reports, and the profile stores, the full-split figure of the kept weights
    _, val = session.corpus.split(session.config.val_fraction)
    model = CharLSTM(session.config.model_config(len(session.corpus.vocab)))
    model.load_state_dict(session.run_state.best_weights)
    full = full_split_loss(model, val, CPU).loss
    assert finished.best_val_loss == pytest.approx(full, rel=1e-6)
    assert progress.best_val_loss == finished.best_val_loss
    assert finished.best_val_loss != lowest.val_loss
    resumed = resolve.resumed_progress(progress, session.config, {}, session.setup.batcher.steps)
    assert resumed.best_val_loss == lowest.val_loss and resumed.best_estimated  # keep-best goes on with estimates
    assert resumed.best_full == finished.best_val_loss


def test_a_small_split_is_checked_whole_and_its_best_is_a_full_figure(mixed_file):
    session = TrainingSession([mixed_file], tiny_config(max_steps=30, eval_max_chars=10**9))
    events = []
    session.subscribe(events.append)
    finished = session.run()
    checks = [e for e in events if e.kind == "eval"]
    assert checks and not any(e.estimate for e in checks) and all(e.stderr is None for e in checks)
    assert finished.best_val_loss == min(e.val_loss for e in checks)


def test_epochs_are_counted_from_one_in_every_event_and_line(tmp_path):
    from lstmtui.commands.train import _plain_line

    path = tmp_path / "sums.txt"
    path.write_text(sums_text(1500, random.Random(0)))
    store = ProfileStore()
    cfg = tiny_config(epochs=2, eval_every=0, val_fraction=0.1)
    session = TrainingSession([path], cfg, profile="ep", store=store)
    events = []
    session.subscribe(events.append)
    finished = session.run()
    steps = [e for e in events if e.kind == "step"]
    per_epoch = steps[0].steps_per_epoch
    assert [e.epoch for e in steps] == [1] * per_epoch + [2] * per_epoch
    assert [e.epoch for e in events if e.kind == "epoch"] == [1, 2]
    # the sample and the save at the end of epoch 2 (of 2) belong to epoch 2, not 3
    assert [e.epoch for e in events if e.kind == "sample"] == [1, 2]
    assert {e.epoch for e in events if e.kind == "checkpoint"} == {1, 2}
    assert finished.epoch == 2 and store.load_meta("ep").progress.epoch == 2  # the profile counts epochs done
    assert "epoch 1 loss" in _plain_line(steps[0]) and "epoch 2 loss" in _plain_line(steps[-1])


def test_a_run_cut_short_before_any_check_finishes_with_the_full_figure_of_its_weights(mixed_file):
    session = TrainingSession([mixed_file], tiny_config(max_steps=3, eval_every=0))
    finished = session.run()
    _, val = session.corpus.split(session.config.val_fraction)
    assert math.isfinite(finished.best_val_loss)
    assert finished.best_val_loss == pytest.approx(full_split_loss(session.model, val, CPU).loss, rel=1e-6)


def test_validation_predicts_the_time_of_what_ends_a_run(trained):
    model, val = trained
    validation = Validation(val, 4000, CPU)
    assert validation.estimates
    guess = validation.final_seconds(fallback_chars_per_s=1e6)  # nothing measured yet: from the fallback
    assert guess == pytest.approx((validation.plan.chars_read + len(val)) / 1e6, rel=0.1)  # (+ warm-ups)
    check = validation.check(model)
    assert validation.predicted_seconds(False, 1e6) == pytest.approx(check.seconds)
    full = validation.full(model)
    assert validation.predicted_seconds(True, 1e6) == pytest.approx(full.seconds)
    # the end of a run: a check of the last weights, then the full-split figure of the kept ones
    assert validation.final_seconds(1e6) == pytest.approx(check.seconds + full.seconds)
    again = validation.check(model)  # the slowest time seen is the one predicted
    assert validation.predicted_seconds(False, 1e6) == pytest.approx(max(check.seconds, again.seconds))
    assert Validation(val, 10**9, CPU).final_seconds(1e6) < guess  # a split read whole: one read
