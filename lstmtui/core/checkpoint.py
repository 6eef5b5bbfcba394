"""What a profile holds for a model and a training session, and how to rebuild them from it.

Tensor groups: ``best`` and ``latest`` (model weights), ``optim`` (Adam moments and step counts,
flattened as ``<param index>.<name>``), ``state`` (carried hidden state and torch RNG state).
Everything else (configs, vocabulary, progress, history, optimizer hyper-parameters, Python and
numpy RNG states) is JSON in the profile's metadata.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from lstmtui.core.config import ModelConfig
from lstmtui.core.device import available_memory
from lstmtui.core.errors import ProfileError
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileMeta, RngState
from lstmtui.core.profiles.jsonfields import first_line, short
from lstmtui.core.profiles.tensorfiles import check_weights, group_limit

# The sampling settings an exported model records (a profile's own are ProfileMeta.sampling).
SAMPLING_DEFAULTS: dict[str, Any] = {"temperature": 0.8, "top_k": 0, "top_p": 1.0, "beam": 0, "length": 500}
HIDDEN_POLICY = "carry-within-epoch-reset-at-epoch-start"
MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # per-parameter optimizer tensors shaped like it


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a model's weights, safe to keep while training goes on."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer state into flat tensors and JSON-ready parameter groups."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, per_param in sd["state"].items():
        for key, value in per_param.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{index}.{key}"] = tensor.detach().to("cpu", copy=True).contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]], name: str = "?"
) -> None:
    """Load an optimizer state saved by optimizer_to_tensors; ProfileError naming the profile if it does not fit."""
    label = f"profile {name}: optim.safetensors"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        index, _, part = key.partition(".")
        if not index.isdigit() or not part or int(index) >= len(params):
            raise ProfileError(f"{label}: {short(key)} does not name one of the model's {len(params)} parameters")
        shape = list(params[int(index)].shape)
        if part in MOMENTS and list(tensor.shape) != shape:
            raise ProfileError(f"{label}: {key} has shape {list(tensor.shape)}, but parameter {index} has {shape}")
        if part == "step" and tensor.numel() != 1:
            raise ProfileError(f"{label}: {key} is not a step count")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ProfileError(f"{label}: {key} is not finite")
        state.setdefault(int(index), {})[part] = tensor
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ProfileError(f"profile {name}: its optimizer state does not fit the model ({first_line(exc)})") from None


def rng_state() -> RngState:
    """Python's and numpy's RNG states as profile metadata holds them (torch's goes into a tensor group)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return RngState(
        python=(version, tuple(internal), gauss),
        numpy=(str(name), tuple(keys.tolist()), int(pos), int(has_gauss), float(cached)),
    )


def restore_rng(state: RngState, name: str = "?") -> None:
    """Restore RNG states saved by rng_state; ProfileError naming the profile if one cannot be restored."""
    try:
        if state.python is not None:
            version, internal, gauss = state.python
            random.setstate((version, tuple(internal), gauss))
        if state.numpy is not None:
            kind, keys, pos, has_gauss, cached = state.numpy
            np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ProfileError(f"profile {name}: its Python or numpy random state is damaged ({first_line(exc)})") from None


def restore_torch_rng(state: torch.Tensor, name: str = "?") -> None:
    """Restore torch's CPU random state saved in the ``state`` group; ProfileError if it is not one."""
    problem = f"profile {name}: state.safetensors: torch_rng is not a saved torch random state"
    if state.dtype != torch.uint8 or state.dim() != 1:
        raise ProfileError(f"{problem} (a {state.dtype} tensor of shape {list(state.shape)})")
    try:
        torch.set_rng_state(state)
    except (RuntimeError, ValueError) as exc:
        raise ProfileError(f"{problem} ({first_line(exc)})") from None


def check_state_group(state: dict[str, torch.Tensor], model: ModelConfig, name: str) -> None:
    """Refuse a ``state`` group whose torch RNG states or carried (h, c) are not what this model saves."""
    label = f"profile {name}: state.safetensors"
    rng_bytes = torch.get_rng_state().numel()
    for key, dims in (("torch_rng", 1), ("torch_rng_ranks", 2)):
        rng = state.get(key)
        if rng is not None and (rng.dtype != torch.uint8 or rng.dim() != dims or rng.shape[-1] != rng_bytes):
            raise ProfileError(f"{label}: {key} is not a saved torch random state (shape {list(rng.shape)})")
    h, c = state.get("h"), state.get("c")
    if h is None and c is None:
        return
    if h is None or c is None:
        raise ProfileError(f"{label}: it holds one of the carried h and c but not the other")
    for key, tensor in (("h", h), ("c", c)):
        if not tensor.is_floating_point() or tensor.dim() != 3 or tensor.shape[0] != model.layers:
            raise ProfileError(f"{label}: {key} has shape {list(tensor.shape)}, not (layers, streams, hidden)")
        if tensor.shape[2] != model.hidden or tensor.shape != h.shape:
            raise ProfileError(f"{label}: {key} has shape {list(tensor.shape)}, which does not fit the model")
        if not torch.isfinite(tensor).all():
            raise ProfileError(f"{label}: {key} is not finite")


def model_from_meta(meta: ProfileMeta, name: str, group: str | None = None, store=None) -> CharLSTM:
    """Build an untrained CharLSTM of the profile's architecture (its sizes were checked when read).

    With ``group``, the weights file that will fill the model must be large enough to hold its
    parameters, and the model must fit in memory: a small profile whose metadata claims a huge
    model is refused before anything is allocated. With ``store`` too, the file's real size and
    its header's tensor shapes must match the architecture.
    """
    if group is not None:
        check_model_fits(meta, name, group, store)
    return CharLSTM(meta.model)


def check_model_fits(meta: ProfileMeta, name: str, group: str, store=None) -> None:
    """Refuse, before allocating, a model its weights file cannot hold or this machine cannot.

    With ``store`` (a ProfileStore), the weights file itself is looked at: its real size must be the
    recorded one and its header must list exactly the tensors of the recorded architecture.
    """
    params = meta.model.parameter_count()
    entry = meta.files.get(group)
    if entry is not None and entry.size < params * 2:  # no float type stores a parameter in under 2 bytes
        raise ProfileError(
            f"profile {name}: {group}.safetensors is {entry.size:,} bytes, too small for the {params:,} parameters "
            f"its model settings describe; the profile is damaged"
        )
    if entry is not None and entry.size > group_limit(meta.model, group):
        raise ProfileError(
            f"profile {name}: {group}.safetensors is {entry.size:,} bytes, more than the {params:,} parameters "
            f"its model settings describe can need; the profile is damaged"
        )
    have = available_memory(torch.device("cpu"))
    need = params * 4
    if have is not None and need > 0.8 * have:
        raise ProfileError(
            f"profile {name}: its model ({params:,} parameters) needs about {need / 2**30:.1f} GiB "
            f"but this machine has {have / 2**30:.1f} GiB"
        )
    if store is not None and entry is not None:
        header = store.tensor_header(name, group)  # the real file, before anything is allocated
        found = {key: t.shape for key, t in header.items()}
        check_weights(f"profile {name}", f"{group}.safetensors", found, meta.model)


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], name: str) -> None:
    """Load weights into a model, turning shape or key mismatches into a ProfileError."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ProfileError(f"profile {name}: weights do not fit the model ({first})") from None
    for key, value in weights.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ProfileError(f"profile {name}: weights in {key} are not finite")


def load_model(store, name: str, which: str = "best", device: str | torch.device = "cpu"):
    """Load a profile's model (best or latest weights) in eval mode, with its vocabulary and metadata."""
    from lstmtui.core.corpus import Vocab

    if which not in ("best", "latest"):
        raise ProfileError(f"which weights must be best or latest, not {which!r}", "which")
    meta = store.load_meta(name)
    group = which if which in meta.files else "latest"
    check_model_fits(meta, name, group, store)  # claimed and real sizes and shapes, before anything is allocated
    # One consistent version even if a training process saves while we read; its checksum is checked first.
    loaded, tensors = store.load(name, [group])
    if loaded.model != meta.model:  # saved anew meanwhile (a grown vocabulary): check that one too
        check_model_fits(loaded, name, group)
    weights = tensors[group]
    check_weights(
        f"profile {name}", f"{group}.safetensors", {k: tuple(v.shape) for k, v in weights.items()}, loaded.model
    )
    model = CharLSTM(loaded.model)
    load_weights(model, weights, name)
    model.to(device).eval()
    return model, Vocab.from_list(list(loaded.vocab)), loaded
