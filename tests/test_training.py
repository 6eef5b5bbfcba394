"""The training engine on real (small) text: it learns, it is deterministic, it resumes exactly."""

from __future__ import annotations

import math
import random
import threading
from collections import Counter

import numpy as np
import pytest
import torch

from lstmtui.core.config import TrainConfig
from lstmtui.core.profiles import ProfileStore
from lstmtui.core.training import TrainingSession


def arithmetic_text(n_lines: int, seed: int = 0) -> str:
    """Lines like '12+7=19': structured text whose digits after '=' only learning predicts."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        lines.append(f"{a}+{b}={a + b}")
    return "\n".join(lines) + "\n"


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        hidden=48,
        layers=1,
        seq_len=32,
        batch=16,
        epochs=2,
        lr=1e-2,
        warmup_steps=5,
        dropout=0.0,
        eval_every=0,
        sample_every=0,
        sample_length=40,
        save_every_min=0.0,
        threads=1,
        val_fraction=0.1,
    )
    base.update(kw)
    return TrainConfig(**base).validate()


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "sums.txt"
    path.write_text(arithmetic_text(4000))
    return path


def collect(session):
    events = []
    session.subscribe(events.append)
    return events


def unigram_entropy(text: str) -> float:
    counts = Counter(text)
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values())


def test_validation_loss_falls_below_what_only_learning_reaches(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(epochs=3))
    events = collect(session)
    result = session.run()
    assert result.kind == "finished", getattr(result, "message", result)
    epochs = [e for e in events if e.kind == "epoch"]
    assert len(epochs) == 3
    # A model that ignores context can do no better than the unigram entropy of the text.
    floor = unigram_entropy(corpus_file.read_text())
    assert epochs[-1].val_loss < 0.7 * floor, (epochs[-1].val_loss, floor)
    assert epochs[-1].val_loss < epochs[0].val_loss
    assert math.isclose(epochs[-1].val_bpc, epochs[-1].val_loss / math.log(2))
    steps = [e for e in events if e.kind == "step"]
    assert steps[-1].step == len(steps) and steps[-1].chars_per_s > 0
    samples = [e for e in events if e.kind == "sample"]
    assert samples and all(len(s.text) == 40 for s in samples)


def test_same_seed_same_run(corpus_file):
    losses = []
    for _ in range(2):
        session = TrainingSession([corpus_file], tiny_config(epochs=1, dropout=0.2, layers=2, max_steps=15))
        events = collect(session)
        session.run()
        losses.append([e.loss for e in events if e.kind == "step"])
    assert len(losses[0]) == 15
    assert losses[0] == losses[1]


def test_validation_and_samples_leave_training_untouched(corpus_file):
    """Checks only cost time: the planner may make them cheaper without changing what is learned."""
    weights = []
    for eval_max_chars, sample_every in ((10**9, 4), (500, 0)):
        cfg = tiny_config(
            epochs=1,
            dropout=0.2,
            layers=2,
            max_steps=15,
            eval_every=3,
            eval_max_chars=eval_max_chars,
            sample_every=sample_every,
        )
        session = TrainingSession([corpus_file], cfg)
        events = collect(session)
        session.run()
        assert sum(e.kind == "eval" for e in events) >= 5
        weights.append({k: v.clone() for k, v in session.model.state_dict().items()})
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_bf16_training_learns_like_fp32(corpus_file):
    """bf16 autocast changes the arithmetic of the step, not what a run learns: same steps, same loss within 3%."""
    finals = {}
    for precision in ("fp32", "bf16"):
        session = TrainingSession([corpus_file], tiny_config(epochs=2, layers=2, precision=precision))
        events = collect(session)
        result = session.run()
        assert result.kind == "finished", getattr(result, "message", result)
        finals[precision] = [e.val_loss for e in events if e.kind == "epoch"][-1]
    assert finals["bf16"] < 0.7 * unigram_entropy(corpus_file.read_text())
    assert abs(finals["bf16"] - finals["fp32"]) < 0.03 * finals["fp32"], finals
    # the weights stay float32: a bf16-trained profile generates and resumes like any other
    assert all(p.dtype == torch.float32 for p in session.model.parameters())


def test_weight_decay_pulls_the_weights_in_and_none_is_plain_adam(corpus_file):
    norms = {}
    for decay in (0.0, 0.5):
        session = TrainingSession([corpus_file], tiny_config(epochs=1, max_steps=30, weight_decay=decay))
        session.run()
        assert isinstance(session.setup.optimizer, torch.optim.AdamW)
        norms[decay] = sum(float(p.detach().norm() ** 2) for p in session.model.parameters())
    assert norms[0.5] < 0.97 * norms[0.0], norms
    # with no decay, AdamW's update is Adam's: the same run, bit for bit
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = (
        torch.optim.Adam(a.parameters(), lr=0.01),
        torch.optim.AdamW(b.parameters(), lr=0.01, weight_decay=0.0),
    )
    for _ in range(5):
        x = torch.randn(8, 4)
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("precision, decay", [("fp32", 0.0), ("bf16", 0.1)])
def test_resume_is_exact(corpus_file, precision, decay):
    """N steps, save, resume for M more == N+M uninterrupted, on CPU with the same seed."""
    store = ProfileStore()
    cfg = dict(epochs=2, dropout=0.3, layers=2, eval_every=7, sample_every=5, precision=precision, weight_decay=decay)
    full = TrainingSession([corpus_file], tiny_config(max_steps=40, **cfg), profile="full", store=store)
    full_events = collect(full)
    full.run()

    first = TrainingSession([corpus_file], tiny_config(max_steps=17, **cfg), profile="split", store=store)
    first.run()
    second = TrainingSession(
        [corpus_file], tiny_config(max_steps=40, **cfg), profile="split", store=store, overrides={"max_steps": 40}
    )
    second_events = collect(second)
    second.run()

    full_losses = [e.loss for e in full_events if e.kind == "step"]
    resumed_losses = [e.loss for e in second_events if e.kind == "step"]
    assert len(full_losses) == 40 and len(resumed_losses) == 23
    assert resumed_losses == full_losses[17:]
    a = store.load_tensors("full", "latest")
    b = store.load_tensors("split", "latest")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_pause_resume_stop_from_another_thread(corpus_file):
    store = ProfileStore()
    session = TrainingSession([corpus_file], tiny_config(epochs=50), profile="ctl", store=store)
    events = collect(session)
    paused = threading.Event()
    seen_steps = threading.Event()

    def watch(event):
        if event.kind == "step" and event.step >= 3:
            seen_steps.set()
        if event.kind == "state" and event.state == "paused":
            paused.set()

    session.subscribe(watch)
    thread = session.start()
    assert seen_steps.wait(60)
    session.pause()
    assert paused.wait(30)
    steps_at_pause = max(e.step for e in events if e.kind == "step")
    session.set_lr(5e-4)
    session.save_now()
    session.request_sample()
    threading.Event().wait(0.6)
    assert max(e.step for e in events if e.kind == "step") == steps_at_pause  # no step while paused
    assert any(e.kind == "checkpoint" for e in events)
    assert any(e.kind == "sample" for e in events)
    snap = session.weights()
    assert snap is not None and not snap[0].training
    session.resume()
    more = threading.Event()
    session.subscribe(lambda e: e.kind == "step" and e.step > steps_at_pause + 2 and more.set())
    assert more.wait(60)
    assert [e for e in events if e.kind == "step"][-1].lr < 1e-3  # the new learning rate is in use
    session.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert session.result.kind == "finished" and session.result.reason == "stopped"
    meta = store.load_meta("ctl")
    assert meta.progress.step == session.step


def test_non_finite_weights_are_recovered_from_the_best_ones(corpus_file):
    store = ProfileStore()
    session = TrainingSession([corpus_file], tiny_config(epochs=1, eval_every=3), profile="nan", store=store)
    events = collect(session)

    def poison(event):
        # A fault injected between steps on the training thread: a weight becomes NaN.
        if event.kind == "step" and event.step == 6:
            with torch.no_grad():
                session.model.head.weight[0, 0] = float("nan")

    session.subscribe(poison)
    result = session.run()
    assert result.reason == "completed"
    assert any(e.kind == "warning" and "restored" in e.message for e in events)
    for group in ("latest", "best"):
        weights = store.load_tensors("nan", group)
        assert all(torch.isfinite(v).all() for v in weights.values())


def test_persistent_non_finite_loss_stops_with_a_message_and_saves_no_nan(corpus_file):
    store = ProfileStore()
    session = TrainingSession([corpus_file], tiny_config(epochs=1, eval_every=3), profile="nan2", store=store)
    events = collect(session)

    def poison(event):
        if (event.kind == "step" and event.step >= 4) or event.kind == "warning":
            with torch.no_grad():
                session.model.head.weight[0, 0] = float("nan")

    session.subscribe(poison)
    result = session.run()
    assert result.reason == "diverged"
    assert "lower learning rate" in result.message
    assert sum(e.kind == "warning" and "non-finite" in e.message for e in events) >= 2
    for group in ("latest", "best"):
        weights = store.load_tensors("nan2", group)
        assert all(torch.isfinite(v).all() for v in weights.values())


def test_epoch_end_events_carry_the_documented_fields(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(epochs=1))
    events = collect(session)
    session.run()
    epoch = next(e for e in events if e.kind == "epoch").to_dict()
    for field in ("event", "epoch", "step", "train_loss", "val_loss", "val_bpc", "chars_per_s", "elapsed_s"):
        assert field in epoch
    assert epoch["event"] == "epoch"
    assert np.isfinite(epoch["val_loss"])


def test_samples_carry_the_share_copied_from_the_corpus(tmp_path):
    from lstmtui.core.memorisation import MemorisationIndex

    path = tmp_path / "chant.txt"
    path.write_text("the quick brown fox jumps over the lazy dog and runs away home\n" * 400)
    session = TrainingSession([path], tiny_config(epochs=3, sample_every=40, sample_length=200))
    events = collect(session)
    session.run()
    samples = [e for e in events if e.kind == "sample"]
    assert samples
    index = MemorisationIndex.from_corpus(session.corpus)
    for e in samples:
        assert e.memorised == pytest.approx(index.share(e.text, e.prime))
    # a model of one repeated sentence writes that sentence: most of the last sample is copied
    assert samples[-1].memorised > 0.5


def test_reading_the_device_every_few_steps_changes_nothing(corpus_file):
    """The deferred path a GPU or a multi-process run takes (a read every 8 steps) trains exactly as a read
    after every step: same losses, same checks and samples at the same steps, same weights."""
    runs = {}
    for every in (1, 8):
        cfg = tiny_config(epochs=2, max_steps=60, dropout=0.2, layers=2, eval_every=7, sample_every=5)
        session = TrainingSession([corpus_file], cfg, sync_every=every)
        events = collect(session)
        assert session.run().kind == "finished"
        runs[every] = (
            [(e.step, e.loss, e.lr) for e in events if e.kind == "step"],
            [(e.kind, e.step) for e in events if e.kind in ("eval", "sample", "epoch")],
            session.model.state_dict(),
        )
    assert len(runs[8][0]) == 60
    assert runs[1][0] == runs[8][0] and runs[1][1] == runs[8][1]
    assert all(torch.equal(runs[1][2][k], runs[8][2][k]) for k in runs[1][2])


def test_a_chunk_ends_where_something_is_scheduled():
    from lstmtui.core.training.deferred import chunk_length
    from lstmtui.core.training.progress import Progress

    cfg = tiny_config(eval_every=10, sample_every=4, max_steps=23)
    assert chunk_length(Progress(step=0, epoch_step=0), cfg, 100, 32) == 4  # the sample at step 4
    assert chunk_length(Progress(step=8, epoch_step=8), cfg, 100, 32) == 2  # the check at step 10
    assert chunk_length(Progress(step=20, epoch_step=97), cfg, 100, 32) == 3  # the epoch's end
    assert chunk_length(Progress(step=21, epoch_step=21), tiny_config(max_steps=23), 100, 32) == 2
    assert chunk_length(Progress(step=21, epoch_step=21), tiny_config(), 100, 1) == 1


@pytest.mark.parametrize("fused", [False, True])
def test_a_non_finite_step_is_skipped_without_a_trace(fused):
    """A NaN step changes nothing, Adam's step count included; with fused AdamW (CUDA's optimizer, run here
    on the CPU) the skip happens on the device, through found_inf, without reading the flag back."""
    from lstmtui.core.config import ModelConfig
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.training.step import train_step

    torch.manual_seed(0)
    model = CharLSTM(ModelConfig(vocab_size=11, hidden=16, layers=1, dropout=0.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, fused=fused or None)
    cfg = tiny_config()
    x, y = torch.randint(0, 11, (4, 6)), torch.randint(0, 11, (4, 6))
    device = torch.device("cpu")
    loss, skipped, _ = train_step(model, optimizer, x, y, None, cfg, device)
    assert not skipped and torch.isfinite(loss)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = optimizer.state[model.head.weight]["step"].clone()
    with torch.no_grad():
        model.head.bias[0] = float("nan")  # the loss goes NaN, and so every gradient
    _, skipped, _ = train_step(model, optimizer, x, y, None, cfg, device)
    assert skipped
    with torch.no_grad():
        model.head.bias[0] = before["head.bias"][0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(optimizer.state[model.head.weight]["step"], steps)
    # a flag from an earlier step of the same read skips a finite step too
    _, skipped, _ = train_step(model, optimizer, x, y, None, cfg, device, skip=torch.tensor(True))
    assert skipped and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
