"""The matmul ceiling: GFLOP/s of the matrix products one training step of the LSTM is made of."""

from __future__ import annotations

import time
from typing import Any

import torch

from lstmtui.bench.rows import Log, quiet, row
from lstmtui.core.config import ModelConfig


def matmul_gflops(m: int, k: int, n: int, seconds: float = 0.2, repeats: int = 3) -> float:
    """Best-of-``repeats`` float32 GFLOP/s of an (m, k) x (k, n) product with torch on the CPU."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    c = torch.empty(m, n)
    torch.mm(a, b, out=c)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=c)
            count += 1
            dt = time.perf_counter() - start
            if dt >= seconds / repeats:
                break
        best = max(best, 2.0 * m * k * n * count / dt / 1e9)
    return best


def step_gemms(config: ModelConfig, batch: int, seq_len: int) -> list[tuple[str, int, int, int, int]]:
    """The matrix products of one training step: (label, m, k, n, times), forward and backward.

    These are the products flops_per_char counts: per layer the input projection over all
    positions, the recurrent product once per time step, and the output head; each forward
    product Y = X W (m, k, n) has two backward products, dX = dY W^T (m, n, k) and dW = X^T dY (k, m, n).
    """
    h, v, rows = config.hidden, config.vocab_size, batch * seq_len
    forward = []
    for layer in range(config.layers):
        inp = (v if config.input == "onehot" else config.embedding_dim) if layer == 0 else h
        forward.append((f"L{layer + 1} input", rows, inp, 4 * h, 1))
        forward.append((f"L{layer + 1} recurrent", batch, h, 4 * h, seq_len))
    forward.append(("head", rows, h, v, 1))
    out = []
    for label, m, k, n, times in forward:
        out += [(f"{label} fwd", m, k, n, times), (f"{label} dX", m, n, k, times), (f"{label} dW", k, m, n, times)]
    return out


def gemm_ceiling(
    config: ModelConfig, batch: int, seq_len: int, seconds: float = 0.1, cache: dict | None = None
) -> dict[str, Any]:
    """GFLOP/s of one step's products if each ran at its measured matmul rate (the step's ceiling)."""
    cache = {} if cache is None else cache
    total_flops, total_s = 0.0, 0.0
    for _label, m, k, n, times in step_gemms(config, batch, seq_len):
        key = (m, k, n)
        if key not in cache:
            cache[key] = matmul_gflops(m, k, n, seconds)
        flops = 2.0 * m * k * n * times
        total_flops += flops
        total_s += flops / (cache[key] * 1e9)
    return {"gflops": total_flops / total_s / 1e9, "step_flops": total_flops, "gemm_s": total_s}


def ceiling_section(config: ModelConfig, batch: int, seq_len: int, seconds: float, log: Log = quiet) -> list[dict]:
    """Matmul GFLOP/s at the default model's shapes, and a large square product for scale."""
    rows = []
    seen = set()
    for label, m, k, n, _times in step_gemms(config, batch, seq_len):
        if "fwd" not in label or (m, k, n) in seen:
            continue
        seen.add((m, k, n))
        log(f"ceiling: {m}x{k} @ {k}x{n}")
        rows.append(
            row(
                "ceiling",
                f"matmul ({m}x{k})@({k}x{n})",
                matmul_gflops(m, k, n, seconds),
                "GFLOP/s",
                label.replace(" fwd", ""),
            )
        )
    rows.append(
        row(
            "ceiling",
            "matmul (1024x1024)@(1024x1024)",
            matmul_gflops(1024, 1024, 1024, seconds),
            "GFLOP/s",
            "large square product",
        )
    )
    ceil = gemm_ceiling(config, batch, seq_len, seconds)
    rows.append(
        row(
            "ceiling",
            f"step ceiling {config.layers}x{config.hidden}",
            ceil["gflops"],
            "GFLOP/s",
            f"all fwd+bwd products of a {batch}x{seq_len} step at their measured rates",
        )
    )
    return rows
