"""The run host: a real training session in the host's thread, its events fanned out, commands at step boundaries."""

from __future__ import annotations

import json
import math
import random
import threading

import pytest

from lstmtui.core.config import TrainConfig
from lstmtui.core.events import CheckpointEvent, Event, FinishedEvent, SampleEvent, StateEvent, StepEvent
from lstmtui.core.profiles import ProfileStore
from lstmtui.core.runhost import RunHost, Subscription
from lstmtui.core.schedule import lr_factor
from lstmtui.core.training import TrainingSession

WAIT_S = 120  # generous: the machine may be busy; no test measures time


def sums_text(n_lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(f"{a}+{b}={a + b}\n" for a, b in ((rng.randint(0, 49), rng.randint(0, 49)) for _ in range(n_lines)))


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        hidden=32,
        layers=1,
        seq_len=16,
        batch=8,
        epochs=1,
        lr=1e-2,
        warmup_steps=5,
        dropout=0.0,
        eval_every=4,
        sample_every=5,
        sample_length=20,
        save_every_min=0.0,
        threads=1,
        val_fraction=0.1,
    )
    base.update(kw)
    return TrainConfig(**base).validate()


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "sums.txt"
    path.write_text(sums_text(1500))
    return path


def read_all(sub: Subscription) -> list[Event]:
    """Every event of a subscription until it closes (the run ended and the queue is read)."""
    events: list[Event] = []
    while not sub.closed:
        event = sub.get(timeout=0.5)
        if event is not None:
            events.append(event)
    return events


def wait_for(sub: Subscription, predicate, seen: list[Event]) -> Event:
    """Read events into ``seen`` until one satisfies ``predicate``."""
    while not sub.closed:
        event = sub.get(timeout=0.5)
        if event is not None:
            seen.append(event)
            if predicate(event):
                return event
    raise AssertionError(f"the run ended without the awaited event; last: {seen[-3:]}")


def test_every_subscriber_gets_every_event_in_order(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(), profile="fan", store=ProfileStore())
    direct: list[Event] = []
    session.subscribe(direct.append)  # on the training thread: the reference sequence
    host = RunHost(session)
    subs = [host.subscribe(maxsize=100_000) for _ in range(3)]
    results: list[list[Event]] = [[] for _ in subs]
    readers = [threading.Thread(target=lambda i=i: results[i].extend(read_all(subs[i]))) for i in range(len(subs))]
    for reader in readers:
        reader.start()
    host.start()
    assert host.join(WAIT_S)
    for reader in readers:
        reader.join(WAIT_S)
    assert isinstance(host.result, FinishedEvent) and host.result.reason == "completed"
    kinds = {e.kind for e in direct}
    assert {"state", "step", "eval", "sample", "epoch", "checkpoint", "finished"} <= kinds
    for events in results:
        assert events == direct  # the same objects, all of them, in the same order
    assert all(not s.dropped and s.closed for s in subs)


def test_a_subscriber_that_never_reads_is_dropped_and_training_goes_on(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(sample_every=0, eval_every=0))
    host = RunHost(session)
    stalled = host.subscribe(maxsize=5)  # never read
    reader = host.subscribe(maxsize=100_000)
    host.start()
    events = read_all(reader)
    assert host.join(WAIT_S)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert host.result.reason == "completed" and steps and steps[-1].step == host.result.step
    assert [e.step for e in steps] == list(range(1, host.result.step + 1))  # nothing lost for the reader
    assert stalled.dropped and stalled.closed
    assert stalled.get(timeout=0) is None and stalled.drain() == []  # its stale queue was let go


def test_commands_act_at_step_boundaries(corpus_file):
    store = ProfileStore()
    cfg = tiny_config(epochs=20, sample_every=0, eval_every=0)
    session = TrainingSession([corpus_file], cfg, profile="cmd", store=store)
    host = RunHost(session)

    def on_step(event: Event) -> None:  # on the training thread, between steps: exact boundaries
        if isinstance(event, StepEvent) and event.step == 3:
            host.pause()
        if isinstance(event, StepEvent) and event.step == 6:
            host.stop()

    session.subscribe(on_step)
    sub = host.subscribe()
    host.start()
    seen: list[Event] = []
    wait_for(sub, lambda e: isinstance(e, StateEvent) and e.state == "paused", seen)
    assert max(e.step for e in seen if isinstance(e, StepEvent)) == 3
    assert host.snapshot().paused and host.snapshot().state == "paused"
    host.save()
    host.sample()
    host.set_lr(5e-4)
    saved = wait_for(sub, lambda e: isinstance(e, CheckpointEvent), seen)
    sample = wait_for(sub, lambda e: isinstance(e, SampleEvent), seen)
    assert saved.step == 3 and saved.reason == "requested" and sample.step == 3
    assert store.load_meta("cmd").progress.step == 3
    assert not any(isinstance(e, StepEvent) and e.step > 3 for e in seen)  # nothing trained while paused
    host.resume()
    step4 = wait_for(sub, lambda e: isinstance(e, StepEvent), seen)
    assert step4.step == 4
    assert step4.lr == pytest.approx(5e-4 * lr_factor(3, step4.total_steps, cfg.warmup_steps, cfg.min_lr_ratio))
    assert host.join(WAIT_S)
    rest = read_all(sub)
    assert max(e.step for e in rest if isinstance(e, StepEvent)) == 6
    assert host.result.reason == "stopped" and host.result.step == 6
    assert store.load_meta("cmd").progress.step == 6


def test_an_impossible_learning_rate_is_refused_in_the_callers_thread(corpus_file):
    host = RunHost(TrainingSession([corpus_file], tiny_config()))
    for bad in (0.0, -1.0, math.nan, math.inf, 1e9):
        with pytest.raises(Exception, match="learning rate must be"):
            host.set_lr(bad)


def test_snapshot_before_and_after_a_run(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(), profile="snap", store=ProfileStore())
    host = RunHost(session)
    before = host.snapshot()
    assert before.state == "created" and before.config is None and before.parameters == 0
    assert before.history.train == () and before.last_step is None and before.result is None
    assert host.weights() is None
    sub = host.subscribe(maxsize=100_000)
    host.start()
    events = read_all(sub)
    assert host.join(WAIT_S)
    snap = host.snapshot()
    steps = [e for e in events if isinstance(e, StepEvent)]
    samples = [e for e in events if isinstance(e, SampleEvent)]
    assert snap.name == "snap" and snap.state == "finished" and not snap.paused
    assert snap.config == session.config and snap.config.batch == 8
    assert snap.parameters == session.parameter_count > 0
    assert snap.device.startswith("cpu") and snap.precision == "fp32"
    assert snap.last_step == steps[-1]
    assert snap.samples == tuple(samples[-10:]) and snap.samples
    assert [p.step for p in snap.history.train] == [e.step for e in steps]  # short runs keep every step
    assert [p.loss for p in snap.history.train] == [round(e.loss, 5) for e in steps]
    vals = [e for e in events if e.kind in ("eval", "epoch")]
    assert [p.step for p in snap.history.val] == [e.step for e in vals]
    assert snap.last_eval == vals[-1] and snap.last_checkpoint is not None
    assert snap.best_val_loss == pytest.approx(min(e.val_loss for e in vals))
    assert snap.result == host.result and isinstance(snap.result, FinishedEvent)
    data = snap.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data  # strict JSON
    assert data["config"]["batch"] == 8 and data["result"]["event"] == "finished"
    model, vocab = host.weights()
    assert not model.training and model.config.vocab_size == len(vocab)
    assert host.memorisation_index() is not None


def test_the_run_outlives_unsubscribing(corpus_file):
    session = TrainingSession([corpus_file], tiny_config(epochs=3, sample_every=0, eval_every=0))
    host = RunHost(session)
    sub = host.subscribe()
    host.start()
    seen: list[Event] = []
    first = wait_for(sub, lambda e: isinstance(e, StepEvent), seen)
    host.unsubscribe(sub)
    assert host.join(WAIT_S)
    assert sub.closed and not sub.dropped
    assert host.result.reason == "completed" and host.result.step > first.step
    late = host.subscribe()  # after the end: nothing more will come
    assert late.closed and late.get(timeout=0) is None
