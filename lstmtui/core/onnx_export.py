"""ONNX export of a CharLSTM: a sequence graph and a one-step graph with explicit (h, c) state.

``export_profile(store, "shakespeare", "out/shakespeare.onnx")`` writes three files:

- ``shakespeare.onnx``: the sequence graph, ``ids`` (batch, time) int64 and the state ``h_in``,
  ``c_in`` (layers, batch, hidden) float32 in; ``logits`` (batch, time, vocab) and the final
  ``h_out``, ``c_out`` out. It primes a generator with a whole text in one call.
- ``shakespeare.step.onnx``: the step graph, ``ids`` (batch,) in and ``logits`` (batch, vocab) out,
  with the same state inputs and outputs: one call per generated character.
- ``shakespeare.json``: the vocabulary (``vocab[id]`` is the character), the model's facts, the
  names and shapes of both graphs' inputs and outputs, and the profile's sampling defaults.

The exporter (torch's default, ``torch.onnx.export`` with ``dynamo=True``) needs the optional
``onnx`` and ``onnxscript`` packages (``pip install 'lstmtui[onnx]'``); they are imported only here,
only when an export runs.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import logging
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lstmtui import __version__
from lstmtui.core.checkpoint import SAMPLING_DEFAULTS
from lstmtui.core.corpus import UNKNOWN_CHAR
from lstmtui.core.errors import LstmtuiError

FORMAT = "lstmtui-onnx"
FORMAT_VERSION = 1
INSTALL_HINT = "pip install 'lstmtui[onnx]'"
INPUT_NAMES = ("ids", "h_in", "c_in")
OUTPUT_NAMES = ("logits", "h_out", "c_out")
# ONNX files are protobufs, which stop at 2 GiB: bigger weights go to a ``.data`` file beside each graph.
SINGLE_FILE_LIMIT = 3 << 29
# Example sizes for tracing; neither may be 1, which torch.export would fix as a constant.
TRACE_BATCH = 2
TRACE_TIME = 3


class OnnxUnavailableError(LstmtuiError):
    """The optional ONNX packages (onnx, onnxscript) are not installed."""


class OnnxExportError(LstmtuiError):
    """An ONNX export cannot be written (bad file name, unwritable place, exporter failure)."""


@dataclass(frozen=True)
class OnnxExport:
    """The files one export wrote."""

    sequence: Path
    step: Path
    metadata: Path
    files: tuple[Path, ...]

    def summary(self) -> str:
        """One line naming what was written and its total size."""
        total = sum(p.stat().st_size for p in self.files if p.exists())
        return (
            f"wrote {self.sequence} (sequence graph), {self.step.name} (step graph) and "
            f"{self.metadata.name} (vocabulary and settings), {_size(total)} in all"
        )


def require_onnx() -> None:
    """Raise OnnxUnavailableError unless the packages torch's ONNX exporter needs can be imported."""
    missing = []
    for module in ("onnx", "onnxscript"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OnnxUnavailableError(f"ONNX export needs {' and '.join(missing)}: {INSTALL_HINT}")


def export_paths(file: Path | str) -> tuple[Path, Path, Path]:
    """The sequence graph, step graph and JSON an export to ``file`` (NAME.onnx) writes."""
    file = Path(file)
    if file.suffix.lower() != ".onnx" or not file.stem:
        raise OnnxExportError(
            f"the ONNX file name must end in .onnx, not {file.name!r} "
            "(NAME.step.onnx and NAME.json are written beside it)"
        )
    return file, file.with_name(f"{file.stem}.step{file.suffix}"), file.with_suffix(".json")


def export_profile(store, name: str, file: Path | str, which: str = "best") -> OnnxExport:
    """Export a saved profile's model (best or latest weights) as ONNX graphs plus JSON."""
    from lstmtui.core.checkpoint import load_model

    export_paths(file)
    require_onnx()
    model, vocab, meta = load_model(store, name, which=which)
    source = {
        "profile": name,
        "weights": which,
        "step": meta.progress.step,
        "best_val_loss": meta.progress.best_val_loss,
    }
    return export_model(model, vocab, file, sampling=asdict(meta.sampling), source=source)


def export_model(
    model: nn.Module,
    vocab: Sequence[str] | Any,
    file: Path | str,
    *,
    sampling: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> OnnxExport:
    """Export a CharLSTM (left untouched) and its vocabulary (a Vocab or id-ordered characters)."""
    sequence_path, step_path, json_path = export_paths(file)
    require_onnx()
    chars = list(vocab.to_list() if hasattr(vocab, "to_list") else vocab)
    config = model.config
    if len(chars) != config.vocab_size:
        raise OnnxExportError(f"the vocabulary has {len(chars)} characters but the model expects {config.vocab_size}")
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    external = config.parameter_count() * 4 > SINGLE_FILE_LIMIT
    parent = sequence_path.parent
    if not parent.is_dir():
        raise OnnxExportError(f"cannot write {sequence_path}: {parent} is not a directory")
    staging = parent / f".{sequence_path.name}.export-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        opset = _export_graph(_SequenceGraph(net), staging / sequence_path.name, external, time=True)
        _export_graph(_StepGraph(net), staging / step_path.name, external, time=False)
        meta = build_metadata(config, chars, sequence_path, step_path, opset, sampling, source)
        (staging / json_path.name).write_text(metadata_json(meta), encoding="ascii")
        written = _publish(staging, parent, json_path.name)
    except OSError as exc:
        raise OnnxExportError(f"could not write {sequence_path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OnnxExport(sequence_path, step_path, json_path, written)


def _publish(staging: Path, parent: Path, last: str) -> tuple[Path, ...]:
    """Move the staged files into place, the JSON last, so a reader never sees it before its graphs."""
    names = sorted((p.name for p in staging.iterdir()), key=lambda n: n == last)
    for name in names:
        os.replace(staging / name, parent / name)
    return tuple(parent / name for name in names)


class _SequenceGraph(nn.Module):
    """ids (batch, time), h, c -> logits (batch, time, vocab), h, c."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h_out, c_out) = self.model(ids, (h, c))
        return logits, h_out, c_out


class _StepGraph(nn.Module):
    """ids (batch,), h, c -> logits (batch, vocab), h, c."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        logits, (h_out, c_out) = self.model(ids.unsqueeze(1), (h, c))
        return logits.squeeze(1), h_out, c_out


def _export_graph(graph: nn.Module, path: Path, external: bool, time: bool) -> int:
    """Trace one graph with a dynamic batch (and time) size, save it, and return its opset."""
    config = graph.model.config
    state_shape = (config.layers, TRACE_BATCH, config.hidden)
    ids_shape = (TRACE_BATCH, TRACE_TIME) if time else (TRACE_BATCH,)
    args = (torch.zeros(ids_shape, dtype=torch.long), torch.zeros(state_shape), torch.zeros(state_shape))
    batch = torch.export.Dim("batch")
    ids_dims = {0: batch, 1: torch.export.Dim("time")} if time else {0: batch}
    dynamic = {"ids": ids_dims, "h": {1: batch}, "c": {1: batch}}
    with _quiet_exporter(), _fresh_lstm_dispatch():
        try:
            program = torch.onnx.export(
                graph.eval(),
                args,
                dynamo=True,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=dynamic,
                external_data=external,
                verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; the CLI shows one line, not a traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OnnxExportError(f"torch.onnx.export failed: {first[:300]}") from None
    _check_free_dims(program.model, time)
    _name_output_dims(program.model, config, time)
    program.save(str(path), external_data=external)
    return int(program.model.opset_imports.get("", 0))


def _check_free_dims(model, time: bool) -> None:
    """Refuse a graph whose batch or time size the exporter fixed to the traced example's."""
    dims = model.graph.inputs[0].shape.dims
    if any(isinstance(dim, int) for dim in dims):
        free = "batch and time sizes" if time else "batch size"
        raise OnnxExportError(f"torch.onnx.export fixed the model's {free} (ids shape {list(dims)}); cannot export it")


def _name_output_dims(model, config, time: bool) -> None:
    """Declare the outputs' symbolic dims and drop the inner shape notes taken from the traced sizes.

    The exporter notes some inner values (and the logits) with the example's time size; onnxruntime
    would trust those notes over the free "time" dim and report a fixed size.
    """
    from onnxscript import ir

    shapes = graph_io(config)["sequence" if time else "step"]["outputs"]
    for node in model.graph:
        for value in node.outputs:
            value.shape = ir.Shape(shapes[value.name]["shape"]) if value.name in shapes else None


def graph_io(config) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Names, shapes and types of both graphs' inputs and outputs ("batch" and "time" are free)."""
    state = {"shape": [config.layers, "batch", config.hidden], "dtype": "float32"}

    def io(ids: list, logits: list) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            "inputs": {"ids": {"shape": ids, "dtype": "int64"}, "h_in": state, "c_in": state},
            "outputs": {"logits": {"shape": logits, "dtype": "float32"}, "h_out": state, "c_out": state},
        }

    return {
        "sequence": io(["batch", "time"], ["batch", "time", config.vocab_size]),
        "step": io(["batch"], ["batch", config.vocab_size]),
    }


def build_metadata(
    config,
    chars: list[str],
    sequence_path: Path,
    step_path: Path,
    opset: int,
    sampling: dict[str, Any] | None,
    source: dict[str, Any] | None,
) -> dict[str, Any]:
    """The JSON written beside the graphs: everything a generator needs besides the graphs."""
    defaults = dict(SAMPLING_DEFAULTS)
    defaults.update({k: v for k, v in (sampling or {}).items() if _json_scalar(v)})
    start = next((ch for ch in ("\n", " ") if ch in chars), chars[0])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": {k: v for k, v in (source or {}).items() if _json_scalar(v)},
        "lstmtui_version": __version__,
        "torch_version": torch.__version__,
        "onnx_opset": opset,
        "files": {"sequence": sequence_path.name, "step": step_path.name},
        "vocab": chars,
        "unknown_char": UNKNOWN_CHAR if UNKNOWN_CHAR in chars else None,
        "default_start": start,
        "model": {**config.to_dict(), "parameters": config.parameter_count()},
        "state": {
            "inputs": ["h_in", "c_in"],
            "outputs": ["h_out", "c_out"],
            "shape": [config.layers, "batch", config.hidden],
            "initial": "zeros",
        },
        "graphs": graph_io(config),
        "sampling": defaults,
    }


def metadata_json(meta: dict[str, Any]) -> str:
    """The metadata as ASCII JSON, one top-level key a line (a long vocabulary stays on one)."""
    rows = [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=True)}" for key, value in meta.items()]
    return "{\n" + ",\n".join(rows) + "\n}\n"


def _json_scalar(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_json_scalar(v) for v in value)
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    return value is None or isinstance(value, (str, int, bool))


@contextlib.contextmanager
def _fresh_lstm_dispatch() -> Iterator[None]:
    """Forget the Python kernel aten.lstm cached in an earlier export, before and after this one.

    The exporter registers a while_loop LSTM decomposition (it keeps the time size free) only while
    it captures the graph, by writing the operator's kernel table directly; its later decomposition
    step caches the default Python-loop kernel, which would then shadow that registration in every
    later export in this process and fix their time size (see pytorch/pytorch#193192).
    """
    cache = getattr(torch.ops.aten.lstm.input, "_dispatch_cache", None)
    if cache is not None:
        cache.clear()
    try:
        yield
    finally:
        if cache is not None:
            cache.clear()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's progress lines and internal warnings off the user's terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
