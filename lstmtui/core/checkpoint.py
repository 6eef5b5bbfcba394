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

from lstmtui.core.device import available_memory
from lstmtui.core.errors import ProfileError
from lstmtui.core.model import CharLSTM
from lstmtui.core.profiles import ProfileMeta, RngState

# The sampling settings an exported model records (a profile's own are ProfileMeta.sampling).
SAMPLING_DEFAULTS: dict[str, Any] = {"temperature": 0.8, "top_k": 0, "top_p": 1.0, "beam": 0, "length": 500}
HIDDEN_POLICY = "carry-within-epoch-reset-at-epoch-start"


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
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    """Load an optimizer state saved by optimizer_to_tensors."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        index, _, key = name.partition(".")
        state.setdefault(int(index), {})[key] = tensor
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in groups]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> RngState:
    """Python's and numpy's RNG states as profile metadata holds them (torch's goes into a tensor group)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return RngState(
        python=(version, tuple(internal), gauss),
        numpy=(str(name), tuple(keys.tolist()), int(pos), int(has_gauss), float(cached)),
    )


def restore_rng(state: RngState) -> None:
    """Restore RNG states saved by rng_state."""
    if state.python is not None:
        version, internal, gauss = state.python
        random.setstate((version, tuple(internal), gauss))
    if state.numpy is not None:
        name, keys, pos, has_gauss, cached = state.numpy
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def model_from_meta(meta: ProfileMeta, name: str, group: str | None = None) -> CharLSTM:
    """Build an untrained CharLSTM of the profile's architecture (its sizes were checked when read).

    With ``group``, the weights file that will fill the model must be large enough to hold its
    parameters, and the model must fit in memory: a small profile whose metadata claims a huge
    model is refused before anything is allocated.
    """
    if group is not None:
        check_model_fits(meta, name, group)
    return CharLSTM(meta.model)


def check_model_fits(meta: ProfileMeta, name: str, group: str) -> None:
    """Refuse, before allocating, a model its weights file cannot hold or this machine cannot."""
    params = meta.model.parameter_count()
    entry = meta.files.get(group)
    if entry is not None and entry.size < params * 2:  # no float type stores a parameter in under 2 bytes
        raise ProfileError(
            f"profile {name}: {group}.safetensors is {entry.size:,} bytes, too small for the {params:,} parameters "
            f"its model settings describe; the profile is damaged"
        )
    have = available_memory(torch.device("cpu"))
    need = params * 4
    if have is not None and need > 0.8 * have:
        raise ProfileError(
            f"profile {name}: its model ({params:,} parameters) needs about {need / 2**30:.1f} GiB "
            f"but this machine has {have / 2**30:.1f} GiB"
        )


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
    # One consistent version even if a training process saves while we read.
    meta = store.load_meta(name)
    group = which if which in meta.files else "latest"
    model = model_from_meta(meta, name, group)  # sizes checked before anything is allocated or read
    meta, tensors = store.load(name, [group])
    load_weights(model, tensors[group], name)
    model.to(device).eval()
    return model, Vocab.from_list(list(meta.vocab)), meta
