"""`lstmtui bench`: every figure of one table measured in one process run, and the seed-style baseline it compares with.

This package sits above the engine (core) and the TUI, which it drives to measure; neither imports it.
Sections, one module each: ceiling (matmul GFLOP/s at the LSTM's shapes), training (throughput),
quality (time to quality against the baseline), generation, tui, startup (help time, peak memory).
"""
