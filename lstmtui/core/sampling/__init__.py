"""Streaming character generation from a CharLSTM: temperature, top-k, top-p, beam search.

Temperature 0 means greedy decoding (always the most likely character).

- ``config``: SamplingConfig, the settings and their bounds.
- ``filters``: repetition guards, temperature, top-k and top-p applied to one step's logits.
- ``stepper``: the O(1)-per-character LSTM step on preallocated buffers.
- ``generator``: CharGenerator (prime, stream, stop strings, checkpoints).
- ``beam``: beam search.
- ``oneshot``: sample_text, compare and generation_speed.
"""

from lstmtui.core.sampling.config import MAX_BEAM, MAX_LENGTH, SETTING_NAMES, SamplingConfig
from lstmtui.core.sampling.generator import CharGenerator
from lstmtui.core.sampling.oneshot import DIVERSITY, compare, generation_speed, sample_text
from lstmtui.core.sampling.stepper import CpuStepper, Stepper

__all__ = [
    "DIVERSITY",
    "MAX_BEAM",
    "MAX_LENGTH",
    "SETTING_NAMES",
    "CharGenerator",
    "CpuStepper",
    "SamplingConfig",
    "Stepper",
    "compare",
    "generation_speed",
    "sample_text",
]
