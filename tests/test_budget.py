"""The --time-budget planner: sizes from measured speed, user-set fields kept, epochs never the limit."""

from __future__ import annotations

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
