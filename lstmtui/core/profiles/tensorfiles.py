"""What a profile's tensor files may hold, known before any of them is read into memory.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the data. ``read_header`` checks that header in pure Python
(bounded, no torch) against the file's real size, so a file whose header lies is refused before
anything is allocated. ``weight_shapes`` is the tensors a model of given settings has, and
``group_limit`` the largest file a group of a profile with that model can need: an archive member
or a weights file claiming more is refused before it is written or read.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

from lstmtui.core.config import MAX_BATCH, ModelConfig
from lstmtui.core.errors import ProfileError
from lstmtui.core.profiles.jsonfields import first_line, is_int, short

MAX_HEADER_BYTES = 16 << 20  # thousands of tensors' names and shapes fit in far less
HEADER_ALLOWANCE = 1 << 20  # a group file's bytes besides its tensor data: header, alignment
WIDEST_DTYPE = 8  # bytes per number of the widest type a profile stores (float64 moments, int64 counts)
DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
WEIGHT_GROUPS = ("best", "latest")


@dataclass(frozen=True)
class TensorEntry:
    """One tensor a safetensors header lists: its dtype and shape."""

    dtype: str
    shape: tuple[int, ...]


def weight_shapes(model: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensors (name -> shape) of CharLSTM's weights for these settings, without building the model."""
    h, v = model.hidden, model.vocab_size
    shapes: dict[str, tuple[int, ...]] = {}
    if model.input == "embedding":
        shapes["embedding.weight"] = (v, model.embedding_dim)
    for layer in range(model.layers):
        width = model.input_size if layer == 0 else h
        shapes[f"lstm.weight_ih_l{layer}"] = (4 * h, width)
        shapes[f"lstm.weight_hh_l{layer}"] = (4 * h, h)
        shapes[f"lstm.bias_ih_l{layer}"] = (4 * h,)
        shapes[f"lstm.bias_hh_l{layer}"] = (4 * h,)
    shapes["head.weight"] = (v, h)
    shapes["head.bias"] = (v,)
    return shapes


def group_limit(model: ModelConfig, group: str, batch: int | None = None) -> int:
    """The most bytes a group file of a profile with this model can need (weights, Adam moments, carried state)."""
    params = model.parameter_count()
    if group == "optim":  # two moments per parameter and a step count per tensor
        data = 2 * params + 4 * len(weight_shapes(model))
    elif group == "state":  # the carried (h, c) of every stream, and the torch RNG
        data = 2 * model.layers * (batch or MAX_BATCH) * model.hidden
    else:
        data = params
    return data * WIDEST_DTYPE + HEADER_ALLOWANCE


def read_header(f: BinaryIO, size: int, label: str, file_name: str) -> dict[str, TensorEntry]:
    """Parse and check the header of a safetensors file of ``size`` bytes read from ``f`` (at its start).

    Every tensor's byte range must match its dtype and shape, and the ranges must fill the data
    section exactly, so the header accounts for every byte of the file.
    """

    def bad(problem: str) -> ProfileError:
        return ProfileError(f"{label}: {file_name} is not a valid safetensors file ({problem})")

    head = f.read(8)
    if len(head) < 8:
        raise bad("shorter than its header")
    (length,) = struct.unpack("<Q", head)
    if not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
        raise bad(f"a header of {length:,} bytes in a file of {size:,}")
    raw = f.read(length)
    if len(raw) != length:
        raise bad("truncated header")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad(f"its header is not JSON: {first_line(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    entries: dict[str, TensorEntry] = {}
    end = 0
    for key, value in header.items():
        if key == "__metadata__":
            continue
        entry, stop = _entry(key, value, bad)
        entries[key] = entry
        end = max(end, stop)
    if end != size - 8 - length:
        raise bad(f"its tensors hold {end:,} bytes but the file has {size - 8 - length:,} after the header")
    return entries


def _entry(key: str, value: object, bad) -> tuple[TensorEntry, int]:
    if not isinstance(value, dict):
        raise bad(f"{short(key)} is not described")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise bad(f"{short(key)} has an unknown dtype {short(dtype)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(is_int(n) and 0 <= n < 1 << 40 for n in shape):
        raise bad(f"{short(key)} has a bad shape {short(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_int(n) and n >= 0 for n in offsets)):
        raise bad(f"{short(key)} has bad data offsets {short(offsets)}")
    start, stop = offsets
    if stop - start != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise bad(f"{short(key)}'s bytes do not match its shape")
    return TensorEntry(dtype, tuple(shape)), stop


def check_weights(label: str, file_name: str, found: dict[str, tuple[int, ...]], model: ModelConfig) -> None:
    """Refuse weights (name -> shape) that are not exactly the tensors a model of these settings has."""
    expected = weight_shapes(model)
    for key, shape in expected.items():
        if key not in found:
            raise ProfileError(f"{label}: {file_name} lacks {key}, which its model settings need")
        if tuple(found[key]) != shape:
            have = list(found[key])
            raise ProfileError(
                f"{label}: {file_name} holds {key} of shape {have}, its model settings need {list(shape)}"
            )
    extra = sorted(set(found) - set(expected))
    if extra:
        raise ProfileError(f"{label}: {file_name} holds {short(extra[0])}, which its model settings do not have")
