"""The --time-budget planner: sizes from measured speed, user-set fields kept, epochs never the limit."""

from __future__ import annotations

import math

import pytest
import torch

from lstmtui.core import budget
from lstmtui.core.config import TrainConfig


def fake_speed(cfg: TrainConfig) -> float:
    """A machine doing 1e11 model FLOPs/s: chars/s falls with model size like a real one."""
    from lstmtui.core.model import flops_per_char

    return 1e11 / flops_per_char(cfg.model_config(65))


def test_longer_budget_never_picks_a_smaller_model():
    sizes = []
    for seconds in (10, 60, 300, 900, 3600, 36000):
        cfg = budget.plan(TrainConfig(), 1_000_000, seconds, vocab_size=65, measure=fake_speed)
        sizes.append(cfg.model_config(65).parameter_count())
    assert sizes == sorted(sizes)
    assert sizes[0] < sizes[-1]


def test_chosen_model_sees_enough_chars_per_parameter():
    cfg = budget.plan(TrainConfig(), 1_000_000, 900, vocab_size=65, measure=fake_speed)
    chars = fake_speed(cfg) * 900 * budget.TRAIN_SHARE
    assert chars >= budget.CHARS_PER_PARAM * cfg.model_config(65).parameter_count()


def test_epochs_leave_the_budget_to_end_training():
    corpus = 200_000
    cfg = budget.plan(TrainConfig(), corpus, 600, vocab_size=65, measure=fake_speed)
    assert cfg.epochs * corpus > fake_speed(cfg) * 600
    assert cfg.warmup_steps <= TrainConfig().warmup_steps


def test_fields_the_user_set_are_kept():
    base = TrainConfig(hidden=96, layers=3, epochs=2, dropout=0.3)
    cfg = budget.plan(
        base, 1_000_000, 600, vocab_size=65, fixed={"hidden", "layers", "epochs", "dropout"}, measure=fake_speed
    )
    assert (cfg.hidden, cfg.layers, cfg.epochs, cfg.dropout) == (96, 3, 2, 0.3)


def test_no_budget_changes_nothing():
    base = TrainConfig()
    assert budget.plan(base, 1_000_000, 0, measure=fake_speed) == base


def test_measuring_time_comes_off_the_budget_and_config_is_valid():
    cfg = budget.plan(TrainConfig(), 1_000_000, 300, vocab_size=65, measure=fake_speed)
    assert 0 < cfg.time_budget_s <= 300
    cfg.validate()
    assert budget.describe(cfg)


def test_real_measurement_runs_and_keeps_the_rng():
    cfg = TrainConfig(hidden=16, layers=1, batch=4)
    state = torch.random.get_rng_state()
    assert budget.measure_chars_per_s(cfg, 20, steps=1, seq_len=8) > 0
    assert torch.equal(state, torch.random.get_rng_state())
    threads = torch.get_num_threads()
    assert budget.choose_threads(cfg, 20, rounds=1) in (0, 1)
    assert torch.get_num_threads() == threads


def test_real_plan_on_a_tiny_budget():
    cfg = budget.plan(TrainConfig(batch=4, seq_len=16), 50_000, 5, vocab_size=20, sizes=[(1, 16), (1, 32)])
    assert (cfg.layers, cfg.hidden) in [(1, 16), (1, 32)]
    assert cfg.time_budget_s <= 5


def test_dropout_grows_with_passes_over_the_corpus():
    assert budget.planned_dropout(1) == budget.planned_dropout(budget.DROPOUT_EPOCHS - 0.1) == 0.0
    values = [budget.planned_dropout(e) for e in (4, 6, 8, 10, 50)]
    assert values == sorted(values) and 0 < values[0] and values[-1] == budget.MAX_DROPOUT


def test_a_long_budget_on_a_small_corpus_gets_dropout():
    cfg = budget.plan(TrainConfig(), 200_000, 3600, vocab_size=65, measure=fake_speed)
    assert cfg.dropout == budget.MAX_DROPOUT
    short = budget.plan(TrainConfig(), 50_000_000, 60, vocab_size=65, measure=fake_speed)
    assert short.dropout == 0.0


def test_mid_epoch_checks_of_a_budgeted_run_read_a_slice_unless_typed():
    cfg = budget.plan(TrainConfig(), 1_000_000, 600, vocab_size=65, measure=fake_speed)
    assert cfg.eval_max_chars == budget.BUDGET_EVAL_CHARS < TrainConfig().eval_max_chars
    typed = budget.plan(
        TrainConfig(eval_max_chars=500_000), 1_000_000, 600, vocab_size=65, fixed={"eval_max_chars"}, measure=fake_speed
    )
    assert typed.eval_max_chars == 500_000


def bf16_faster(factor: float):
    """fake_speed, with bf16 autocast ``factor`` times faster than fp32."""
    return lambda cfg: fake_speed(cfg) * (factor if cfg.precision == "bf16" else 1.0)


def test_bf16_is_chosen_only_when_measured_clearly_faster():
    both = ("fp32", "bf16")
    fast = budget.plan(TrainConfig(), 1_000_000, 900, vocab_size=65, measure=bf16_faster(1.5), precisions=both)
    assert fast.precision == "bf16" and "bf16" in budget.describe(fast)
    # more characters per second buy a model at least as large
    plain = budget.plan(TrainConfig(), 1_000_000, 900, vocab_size=65, measure=fake_speed, precisions=("fp32",))
    assert fast.model_config(65).parameter_count() >= plain.model_config(65).parameter_count()
    noise = budget.plan(TrainConfig(), 1_000_000, 900, vocab_size=65, measure=bf16_faster(1.05), precisions=both)
    assert noise.precision == "fp32"
    sized = budget.plan(
        TrainConfig(hidden=64, layers=1),
        1_000_000,
        900,
        vocab_size=65,
        fixed={"hidden", "layers"},
        measure=bf16_faster(1.5),
        precisions=both,
    )
    assert sized.precision == "bf16" and (sized.layers, sized.hidden) == (1, 64)


def test_a_typed_precision_is_kept():
    typed = budget.plan(
        TrainConfig(precision="fp32"),
        1_000_000,
        900,
        vocab_size=65,
        fixed={"precision"},
        measure=bf16_faster(2.0),
        precisions=("fp32", "bf16"),
    )
    assert typed.precision == "fp32"
    typed = budget.plan(
        TrainConfig(precision="bf16"), 1_000_000, 900, vocab_size=65, fixed={"precision"}, measure=bf16_faster(0.5)
    )
    assert typed.precision == "bf16"


def test_real_measurement_in_bf16_runs():
    cfg = TrainConfig(hidden=16, layers=1, batch=4, precision="bf16")
    assert budget.measure_chars_per_s(cfg, 20, steps=1, seq_len=8) > 0


def test_runs_of_several_passes_get_weight_decay_unless_typed():
    long = budget.plan(TrainConfig(), 200_000, 3600, vocab_size=65, measure=fake_speed)
    assert long.weight_decay == budget.PLANNED_WEIGHT_DECAY > 0 and "weight decay 0.1" in budget.describe(long)
    short = budget.plan(TrainConfig(), 50_000_000, 60, vocab_size=65, measure=fake_speed)
    assert short.weight_decay == 0.0
    typed = budget.plan(
        TrainConfig(weight_decay=0.01), 200_000, 3600, vocab_size=65, fixed={"weight_decay"}, measure=fake_speed
    )
    assert typed.weight_decay == 0.01


# ----- the forecast of where a budgeted run ends -----


def simulate(
    schedule,
    deadline: float,
    *,
    step_s=0.01,
    check_s=0.2,
    sample_s=0.1,
    epoch_s=0.6,
    every_s=0.0,
    jitter=0.0,
    swing=0.0,
    swing_steps=600,
):
    """Run the loop's timing on a clock of its own; return [(elapsed, predicted final step)] and the final step.

    After each step the loop checks and samples on their schedule, or ends the epoch (and nothing else);
    ``every_s`` > 0 adds an unscheduled 0.1 s pause that often (a periodic save, a collection);
    ``swing`` > 0 makes steps that much faster, then slower, by turns of ``swing_steps`` steps (a
    shared machine whose neighbours come and go).
    """
    import random

    from lstmtui.core.training.forecast import RunForecast

    rng = random.Random(0)
    forecast = RunForecast(schedule)
    t, step, epoch_step, next_pause, seen = 0.0, 0, 0, every_s, []
    cap = 10**9
    while True:
        speed = 1 + (swing if (step // swing_steps) % 2 else -swing) if swing else 1.0
        t += step_s * speed * (1 + jitter * (2 * rng.random() - 1))
        step, epoch_step = step + 1, epoch_step + 1
        forecast.observe(step, epoch_step, t)
        if forecast.ready:
            seen.append((t, forecast.final_step(step, epoch_step, deadline - t, cap)))
        if t >= deadline:
            return seen, step
        if epoch_step == schedule.steps_per_epoch:
            t, epoch_step = t + epoch_s, 0
        else:
            t += check_s if step % schedule.eval_every == 0 else 0.0
            t += sample_s if step % schedule.sample_every == 0 else 0.0
        if every_s and t >= next_pause:
            t, next_pause = t + 0.1, next_pause + every_s


def worst_error(seen, final: int, deadline: float) -> float:
    """The largest relative error of the predicted final step from a tenth of the deadline on."""
    return max(abs(pred - final) / final for t, pred in seen if t >= 0.1 * deadline)


def test_the_forecast_finds_the_step_a_deadline_ends_with_checks_samples_and_epoch_ends():
    from lstmtui.core.training.forecast import Schedule

    schedule = Schedule(700, eval_every=50, sample_every=100, step_chars=512, check_chars=20_000, full_chars=80_000)
    seen, final = simulate(schedule, 60.0)
    # overheads take a quarter of the time here: planning from the step time alone is far off
    assert final < 0.8 * 60.0 / 0.01
    assert worst_error(seen, final, 60.0) < 0.015
    noisy, final = simulate(schedule, 60.0, jitter=0.3, every_s=2.0)
    assert worst_error(noisy, final, 60.0) < 0.05


def test_the_forecast_averages_over_more_of_a_swinging_speed_the_longer_the_run():
    from lstmtui.core.training.forecast import Schedule

    # a 2-minute run of 30 ms steps whose speed swings by a fifth every 20 s, as on a shared host
    schedule = Schedule(1000, eval_every=500, sample_every=500, step_chars=1024, check_chars=32_800, full_chars=144_339)
    seen, final = simulate(schedule, 120.0, step_s=0.03, check_s=0.5, sample_s=0.4, epoch_s=1.5, swing=0.2)
    late = [(t, pred) for t, pred in seen if t >= 60.0]
    # a 500-step moving average follows each swing (5.1% off in the second half); the mean of the run does not
    assert max(abs(pred - final) / final for t, pred in late) < 0.04


def test_the_forecast_counts_what_runs_after_each_step():
    from lstmtui.core.training.forecast import RunForecast, Schedule

    schedule = Schedule(steps_per_epoch=10, eval_every=4, sample_every=6)
    forecast = RunForecast(schedule)
    t = 0.0
    for step in range(1, 41):  # four epochs: 1 s a step, checks 2 s, samples 3 s, epoch ends 5 s
        t += 1.0
        forecast.observe(step, (step - 1) % 10 + 1, t)
        if step % 10 == 0:
            t += 5.0
        else:
            t += (2.0 if step % 4 == 0 else 0.0) + (3.0 if step % 6 == 0 else 0.0)
    assert forecast.step_s == pytest.approx(1.0)
    assert (forecast.cost("check"), forecast.cost("sample"), forecast.cost("epoch")) == pytest.approx((2, 3, 5))
    # from the end of step 40 (an epoch's last) to the end of step 52, steps 40..51 are followed by
    # epoch ends (40, 50), checks (44, 48; not 40, an epoch end) and samples (42, 48)
    assert forecast.seconds_for(40, 10, 12) == pytest.approx(12 + 2 * 5 + 2 * 2 + 2 * 3)
    assert forecast.final_step(40, 10, 32.5, cap=1000) == 53  # step 52 ends at 32 s, 53 past the deadline
    assert forecast.final_step(40, 10, 10**6, cap=45) == 45


def test_a_budgeted_run_shows_the_step_it_really_ends_at(tmp_path):
    """From a tenth of the budget on, the displayed total is close to the step the run ends at."""
    import random

    from lstmtui.core.training import TrainingSession

    rng = random.Random(0)
    path = tmp_path / "sums.txt"
    path.write_text(
        "".join(f"{a}+{b}={a + b}\n" for a, b in ((rng.randint(0, 99), rng.randint(0, 99)) for _ in range(20_000)))
    )
    cfg = TrainConfig(
        hidden=64,
        layers=1,
        batch=16,
        seq_len=32,
        epochs=1000,
        eval_every=40,
        eval_max_chars=2000,
        sample_every=80,
        sample_length=100,
        save_every_min=0.0,
        threads=1,
        time_budget_s=20.0,
    )
    session = TrainingSession([path], cfg.validate())
    events = []
    session.subscribe(events.append)
    finished = session.run()
    assert finished.reason == "time_budget" and math.isfinite(finished.best_val_loss)
    steps = [e for e in events if e.kind == "step"]
    assert steps[-1].step == finished.step
    shown = [e.total_steps for e in steps if e.elapsed_s >= 0.1 * cfg.time_budget_s]
    # the epochs allow ~150 times more steps; the margin is for a shared machine, whose speed can
    # change twofold within seconds (the forecast's accuracy itself is tested on a clock of its own above)
    assert max(abs(total - finished.step) for total in shown) <= 0.5 * finished.step
    assert all(e.forecast for e in steps), "a budget's total is a forecast, and says so"
    from lstmtui.commands.train import RichReporter, _plain_line

    assert f"step {steps[0].step}/≈{steps[0].total_steps} " in _plain_line(steps[0])
    bar = RichReporter()
    try:
        bar(steps[0])
        assert bar.progress.tasks[0].fields["approx"] == "≈"
    finally:
        bar.progress.stop()
    assert steps[-1].eta_s <= cfg.time_budget_s
