"""`lstmtui ps` shows losses in the one unit the rest of lstmtui uses, named in its heading."""

from __future__ import annotations

import math

from lstmtui.commands.ps import table

ROW = {
    "name": "tiny", "pid": 42, "state": "training", "step": 10, "epoch": 1, "epochs": 3,
    "val_loss": math.log(2.0) * 2.5, "chars_per_s": 1234.0,
    "started": "2026-12-01T10:00:00+00:00", "running_s": 65.0,
}  # fmt: skip


def test_ps_names_its_unit_and_converts_the_loss():
    bits, nats = table([ROW], "bits"), table([ROW], "nats")
    assert "VAL LOSS (bits/char)" in bits.splitlines()[0] and "2.5000" in bits.splitlines()[1]
    assert "VAL LOSS (nats/char)" in nats.splitlines()[0] and f"{math.log(2.0) * 2.5:.4f}" in nats.splitlines()[1]


def test_ps_marks_a_time_budgets_epoch_count_as_a_forecast():
    fixed, budgeted = table([ROW]), table([dict(ROW, epochs=4, forecast=True)])
    assert "1/3 " in fixed.splitlines()[1] and "≈" not in fixed
    assert "1/≈4 " in budgeted.splitlines()[1]
