"""The benchmark's correctness on a tiny budget: it runs, and its FLOP counts match the architecture."""

from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lstmtui.bench.baseline import BaselineTrainer, window_loss, window_positions
from lstmtui.bench.ceiling import gemm_ceiling, matmul_gflops, step_gemms
from lstmtui.bench.generation import generation_models
from lstmtui.bench.quality import time_to_reach
from lstmtui.bench.report import format_value, render, title
from lstmtui.bench.rows import SECTIONS, row
from lstmtui.bench.runner import run_bench
from lstmtui.cli import main
from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.model import CharLSTM, flops_per_char

TINY = TrainConfig(hidden=16, layers=1, batch=4, seq_len=16, embedding_dim=8, warmup_steps=2, sample_length=20)


def counted_flops(config: ModelConfig, batch: int, seq: int) -> float:
    """FLOPs torch's own counter sees in one forward+backward (native LSTM kernels, so every product is visible)."""
    model = CharLSTM(config)
    x = torch.randint(0, config.vocab_size, (batch, seq))
    y = torch.randint(0, config.vocab_size, (batch, seq))
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        logits, _ = model(x)
        F.cross_entropy(logits.reshape(-1, config.vocab_size), y.reshape(-1)).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("inp", ["embedding", "onehot"])
@pytest.mark.parametrize("layers", [1, 3])
def test_flops_per_char_matches_torch_flop_counter(inp, layers):
    cfg = ModelConfig(vocab_size=11, hidden=16, layers=layers, input=inp, embedding_dim=8, dropout=0.0)
    batch, seq = 3, 5
    # flops_per_char counts the general step; a step from a zero state skips the gradient into that
    # state at t=0, and one-hot input (no gradient wanted) skips the first layer's dX product.
    skipped = cfg.layers * 2 * batch * cfg.hidden * 4 * cfg.hidden
    if inp == "onehot":
        skipped += 2 * batch * seq * 4 * cfg.hidden * cfg.vocab_size
    assert counted_flops(cfg, batch, seq) == flops_per_char(cfg) * batch * seq - skipped


@pytest.mark.parametrize("inp", ["embedding", "onehot"])
def test_step_gemms_add_up_to_flops_per_char(inp):
    cfg = ModelConfig(vocab_size=65, hidden=32, layers=2, input=inp, embedding_dim=8)
    total = sum(2 * m * k * n * times for _l, m, k, n, times in step_gemms(cfg, 4, 7))
    assert total == flops_per_char(cfg) * 4 * 7


def test_matmul_and_ceiling_are_positive():
    cfg = ModelConfig(vocab_size=20, hidden=16, layers=1)
    assert matmul_gflops(16, 16, 16, seconds=0.01) > 0
    ceil = gemm_ceiling(cfg, 4, 8, seconds=0.01)
    assert ceil["gflops"] > 0 and ceil["step_flops"] == flops_per_char(cfg) * 32


def test_time_to_reach_interpolates():
    curve = [(10.0, 3.0), (20.0, 2.0), (30.0, 1.5)]
    assert time_to_reach(curve, 2.5) == pytest.approx(15.0)
    assert time_to_reach(curve, 3.5) == 10.0
    assert time_to_reach(curve, 1.0) is None


def test_baseline_trains_on_windows_and_scores_val():
    data = (torch.arange(3000) % 7).numpy().astype("uint8")
    trainer = BaselineTrainer(data, 7, hidden=16, layers=1, batch=8)
    first = trainer.step()
    for _ in range(30):
        last = trainer.step()
    assert last < first
    assert len(window_positions(500)) == 460
    assert 0 < window_loss(trainer.model, data[:500]) < 3


def test_run_bench_tiny(shakespeare_or_sample, tmp_path):
    results = run_bench(
        shakespeare_or_sample,
        minutes=0.02,
        config=TINY,
        corpus_gb=0.001,
        throughput_steps=2,
        hiddens=(16,),
        snapshots=2,
        baseline_size=(1, 16),
        only={"training", "quality", "generation", "startup"},
    )
    rows = {r["name"]: r for r in results["rows"]}
    assert rows["default (1x16 embedding) chars/s"]["value"] > 0
    assert rows["2x16 onehot share of ceiling"]["value"] > 0
    from lstmtui.core.precision import bf16_native

    if bf16_native("cpu"):
        assert rows["2x16 embedding bf16 chars/s"]["value"] > 0 and rows["2x16 embedding bf16 speed-up"]["value"] > 0
    assert 0 < rows["lstmtui val loss after 0.02 min"]["value"] < 6
    assert 0 < rows["baseline val loss after 0.02 min"]["value"] < 6
    assert "time to baseline's best loss" in rows
    assert rows["default model chars/s"]["value"] > 0
    first = rows["default model first char"]
    assert first["value"] > 0 and "median of 5" in first["detail"] and "first prime of this length" in first["detail"]
    assert rows["peak RSS preparing corpus"]["value"] > 0
    assert rows["corpus preparation rate"]["value"] > 0
    json.dumps(results, default=str)


@pytest.fixture
def shakespeare_or_sample(tmp_path):
    """A small corpus: the first 60 KB of the bundled sample."""
    from lstmtui.core.corpus import default_corpus_path

    path = tmp_path / "small.txt"
    path.write_text(default_corpus_path().read_text(encoding="utf-8")[:60_000], encoding="utf-8")
    return path


def test_bench_command_refuses_unknown_section(capsys):
    assert main(["bench", "--only", "ceiling,warp"]) == 2
    assert "unknown section" in capsys.readouterr().err


def test_bench_command_writes_json_and_fits_80_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "b.json"
    assert main(["bench", "--only", "ceiling", "--minutes", "0.1", "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert any(r["section"] == "ceiling" for r in data["rows"])
    assert data["meta"]["sections"] == ["ceiling"]
    printed = capsys.readouterr().out
    assert "GFLOP/s" in printed and max(len(line) for line in printed.splitlines()) <= 80
    for r in data["rows"]:  # each measurement whole on one line, with its figure
        assert any(r["name"] in line and format_value(r["value"], r["unit"]) in line for line in printed.splitlines())
    heading = printed.split("measurement")[0]
    assert "sections: ceiling" in heading and "min" not in heading  # no quality run: no training minutes


def report(sections: tuple[str, ...] = SECTIONS) -> dict:
    """Results shaped like a real run's, with its longest names and details."""
    rows = [
        row("ceiling", "matmul (8192x256)@(256x1024)", 169.2, "GFLOP/s", "L2 input"),
        row(
            "training",
            "default (2x256 embedding) share of ceiling",
            1.08,
            "ratio",
            "5.21 MFLOP/char fwd+bwd; ceiling 153.1 GFLOP/s",
            ">= 0.85",
            True,
        ),
        row(
            "quality",
            "lstmtui val loss after 5 min",
            1.408,
            "nats",
            "2.031 bits/char; --time-budget chose 2x384 embedding, batch 16, seq 64, 10 epochs max, dropout 0.17, "
            "weight decay 0.1, warm-up 100, bf16 autocast, 298 s (planning 1.5 s); 4882 steps",
            "<= 1.50",
            True,
        ),
        row("generation", "default model first char", 31.2, "ms", "1024-char prime, median of 5", "<= 30", False),
        row("startup", "peak RSS training [default] model", 820.0, "MB", "10 steps, corpus loaded"),
    ]
    meta = {
        "corpus": "/home/someone/src/shared/corpora/tinyshakespeare.txt",
        "corpus_chars": 1115394,
        "minutes": 5.0,
        "torch": "2.13.0+cpu",
        "threads": 2,
        "sections": list(sections),
    }
    return {"meta": meta, "rows": [r for r in rows if r["section"] in sections]}


def rendered(results: dict, width: int, wide: bool = False) -> list[str]:
    out = io.StringIO()
    render(results, out, width=width, wide=wide)
    return out.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 100])
def test_narrow_terminals_get_each_detail_under_its_figure(width):
    results = report()
    lines = rendered(results, width)
    assert max(len(line) for line in lines) <= width
    assert max(len(line) for line in rendered(results, 50)) <= 50  # narrower still: names wrap, nothing overflows
    for r in results["rows"]:
        [at] = [i for i, line in enumerate(lines) if r["name"] in line]  # the name whole, on one line
        assert format_value(r["value"], r["unit"]) in lines[at] and r["unit"] in lines[at]
        if r["target"]:
            assert r["target"] in lines[at] and ("yes" if r["met"] else "NO") in lines[at]
        words = " ".join(line.strip() for line in lines[at + 1 : at + 8])
        assert r["detail"] in words  # on the lines below, wrapped at spaces, nothing lost
    assert any(line.strip() == "quality" for line in lines)  # a heading per section


def test_wide_terminals_and_wide_get_the_full_table():
    results = report()
    for lines in (rendered(results, 400), rendered(results, 80, wide=True)):
        for r in results["rows"]:
            assert any(r["name"] in line and r["detail"] in line for line in lines), r["name"]
    assert "detail" in "".join(rendered(results, 400)) and "detail" not in "".join(rendered(results, 80))


def test_the_heading_names_only_what_the_run_measured():
    assert "5 min of training" in title(report()["meta"])
    generation = title(report(("generation",))["meta"])
    assert "min" not in generation and "sections: generation" in generation
    assert "sections" not in title(report()["meta"])  # all of them


def test_bench_help_says_what_the_default_corpus_is(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "../" not in text
    assert "tinyshakespeare.txt, the benchmark corpus" in text and "the sample corpus bundled with lstmtui" in text
    assert "--wide" in text


def test_generation_targets_time_the_default_architecture_whatever_the_plan_trained():
    from lstmtui.core.config import ModelConfig
    from lstmtui.core.model import CharLSTM

    default = ModelConfig(vocab_size=30, hidden=32, layers=2, dropout=0.1)
    bigger = CharLSTM(ModelConfig(vocab_size=30, hidden=48, layers=2, dropout=0.2))
    names = [(n, m.config.hidden) for n, m in generation_models(default, bigger, (64,), 5)]
    assert names == [("default model", 32), ("5-min plan's 2x48", 48), ("2x64", 64)]
    same_shape = CharLSTM(ModelConfig(vocab_size=30, hidden=32, layers=2, dropout=0.3))
    models = generation_models(default, same_shape, (64,), 5)
    assert [n for n, _ in models] == ["default model", "2x64"] and models[0][1] is same_shape
    assert [n for n, _ in generation_models(default, None, (64,), 5)] == ["default model", "2x64"]
