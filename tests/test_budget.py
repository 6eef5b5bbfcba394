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
    cfg = budget.plan(base, 1_000_000, 600, vocab_size=65, fixed={"hidden", "layers", "epochs", "dropout"}, measure=fake_speed)
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
    typed = budget.plan(TrainConfig(eval_max_chars=500_000), 1_000_000, 600, vocab_size=65,
                        fixed={"eval_max_chars"}, measure=fake_speed)
    assert typed.eval_max_chars == 500_000
