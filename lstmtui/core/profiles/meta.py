"""ProfileMeta: a profile's metadata (meta.json) as typed values, read and written in one place.

``ProfileMeta.from_json(label, data)`` is the only reader of meta.json's JSON: it checks the type and
range of every field it knows and raises ProfileError with one line naming the profile and the
problem. Keys it does not know are ignored (a newer lstmtui of the same format may add some) and
are not kept. ``to_json()`` is the only writer. Format 1 is the format of release 0.1; every part
but ``model``, ``vocab`` and ``files`` may be absent from it and then reads as its default.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lstmtui.core.config import ModelConfig, TrainConfig
from lstmtui.core.errors import ConfigError, ProfileError
from lstmtui.core.profiles.jsonfields import SHA_RE, JsonObject, first_line, is_bounded, is_int, is_unit, short
from lstmtui.core.profiles.parts import (
    LN2,
    CorpusProvenance,
    FileEntry,
    History,
    Progress,
    RngState,
    SamplingDefaults,
    SavedSample,
    Versions,
    corpus_json,
    history_json,
    progress_json,
    read_corpus,
    read_history,
    read_progress,
    read_rng,
    read_samples,
    read_sampling,
    rng_json,
    samples_json,
    without_none,
)

FORMAT_VERSION = 1
MAX_GROUP_BYTES = 1 << 40
MAX_PARAMS_IN_GROUPS = 1 << 20
GROUP_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class ProfileMeta:
    """Everything a profile records besides its tensors."""

    model: ModelConfig
    vocab: tuple[str, ...]
    files: dict[str, FileEntry] = field(default_factory=dict)
    train_config: TrainConfig | None = None
    progress: Progress = Progress()
    corpus: CorpusProvenance | None = None
    sampling: SamplingDefaults = SamplingDefaults()
    history: History = History()
    samples: tuple[SavedSample, ...] = ()  # the newest training samples, oldest first (MAX_SAVED_SAMPLES)
    optim_groups: tuple[dict[str, Any], ...] = ()
    rng: RngState = RngState()
    name: str | None = None
    created: str | None = None
    updated: str | None = None
    versions: Versions = Versions()
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_json(cls, label: str, data: Any) -> ProfileMeta:
        """Check and convert parsed meta.json; ProfileError '<label>: <problem>' if anything is wrong."""
        top = JsonObject(label, "", data, what="meta.json does not hold a JSON object")
        version = _format_version(top)
        for key in ("model", "vocab", "files"):
            if key not in top.data:
                top.fail(f"meta.json lacks '{key}'")
        model = _model(top)
        return cls(
            model=model,
            vocab=_vocab(top, model.vocab_size),
            files=_files(top),
            train_config=_train_config(top),
            progress=read_progress(top.part("progress")),
            corpus=read_corpus(top.part("corpus")) if "corpus" in top.data else None,
            sampling=read_sampling(top.part("sampling")),
            history=read_history(top.part("history")),
            samples=read_samples(top),
            optim_groups=_optim_groups(top),
            rng=read_rng(top.part("rng")),
            name=top.text("name", None),
            created=top.text("created", None),
            updated=top.text("updated", None),
            versions=Versions(top.text("lstmtui_version", None), top.text("torch_version", None)),
            format_version=version,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object meta.json holds (absent optional values are left out)."""
        out: dict[str, Any] = {
            "lstmtui_version": self.versions.lstmtui,
            "torch_version": self.versions.torch,
            "model": self.model.to_dict(),
            "vocab": list(self.vocab),
        }
        if self.train_config is not None:
            out["train_config"] = self.train_config.to_dict()
        out["progress"] = progress_json(self.progress)
        out["optim_groups"] = [dict(g) for g in self.optim_groups]
        out["rng"] = rng_json(self.rng)
        out["history"] = history_json(self.history)
        if self.samples:
            out["samples"] = samples_json(self.samples)
        if self.corpus is not None:
            out["corpus"] = corpus_json(self.corpus)
        out["sampling"] = asdict(self.sampling)
        out.update(format_version=self.format_version, name=self.name, updated=self.updated, created=self.created)
        out["files"] = {g: {"sha256": e.sha256, "size": e.size} for g, e in self.files.items()}
        return without_none(out)

    @classmethod
    def from_bytes(cls, label: str, raw: bytes) -> ProfileMeta:
        """Parse and check the bytes of a meta.json file."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ProfileError(f"{label}: meta.json is not UTF-8 text") from None
        except (ValueError, RecursionError) as exc:
            raise ProfileError(f"{label}: meta.json is not valid JSON ({first_line(exc)[:120]})") from None
        return cls.from_json(label, data)

    def to_bytes(self) -> bytes:
        """The bytes of meta.json: compact UTF-8 JSON (NaN in a diverged run's history written as NaN)."""
        data = self.to_json()
        try:
            return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (an undecodable file name): \u-escaped, still JSON
            return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")

    def best_bpc(self) -> float | None:
        """The best validation bits per character recorded, or None when there is none."""
        if self.progress.best_val_bpc is not None:
            return self.progress.best_val_bpc
        if self.progress.best_val_loss is not None:
            return self.progress.best_val_loss / LN2
        if self.progress.best_estimate is not None:
            return None  # the kept weights have only an estimate yet; the history mixes estimates in
        values = [p.bpc for p in self.history.val if math.isfinite(p.bpc)]
        return min(values) if values else None


# ----- reading JSON -----


def _format_version(top: JsonObject) -> int:
    version = top.data.get("format_version")
    if version is None:
        top.fail("meta.json lacks format_version")
    if not is_int(version) or version < 1:
        top.fail(f"format_version must be a positive whole number, not {short(version)}")
    if version > FORMAT_VERSION:
        raise ProfileError(
            f"{top.label} was written by a newer lstmtui (format {short(version)} > {FORMAT_VERSION}); upgrade lstmtui"
        )
    return version


def _model(top: JsonObject) -> ModelConfig:
    model = top.data["model"]
    if not isinstance(model, dict):
        top.fail("'model' must be a JSON object")
    if "vocab_size" not in model:
        top.fail("model settings lack vocab_size")
    try:
        return ModelConfig.from_dict(model)
    except ConfigError as exc:
        top.fail(f"model settings are invalid: {first_line(exc)}")
    except (TypeError, ValueError, OverflowError) as exc:
        top.fail(f"model settings are malformed ({first_line(exc)[:120]})")


def _vocab(top: JsonObject, vocab_size: int) -> tuple[str, ...]:
    vocab = top.data["vocab"]
    if not isinstance(vocab, list) or not all(isinstance(c, str) and c for c in vocab):
        top.fail("'vocab' must be a list of non-empty strings")
    for symbol in vocab:
        if len(symbol) != 1:
            top.fail(f"'vocab' must list single characters, not {short(symbol)}")
        if 0xD800 <= ord(symbol) <= 0xDFFF:
            top.fail(f"'vocab' holds {short(symbol)}, a lone surrogate that is not a character")
    if len(set(vocab)) != len(vocab):
        top.fail("'vocab' lists a symbol twice")
    if len(vocab) != vocab_size:
        top.fail(f"vocabulary has {len(vocab)} symbols but the model expects {vocab_size}")
    return tuple(vocab)


def _files(top: JsonObject) -> dict[str, FileEntry]:
    files = top.data["files"]
    if not isinstance(files, dict):
        top.fail("'files' must be a JSON object")
    out = {}
    for group, entry in files.items():
        if not GROUP_RE.fullmatch(group):
            top.fail(f"{short(group)} is not a tensor group name")
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or not SHA_RE.fullmatch(entry["sha256"])
        ):
            top.fail(f"files.{group} lacks a valid sha256")
        size = entry.get("size")
        if not is_int(size) or not 0 <= size <= MAX_GROUP_BYTES:
            top.fail(f"files.{group}.size must be a byte count, not {short(size)}")
        out[group] = FileEntry(entry["sha256"], size)
    return out


def _train_config(top: JsonObject) -> TrainConfig | None:
    if "train_config" not in top.data:
        return None
    part = top.part("train_config")
    part.text("device", "auto", limit=64)
    try:
        return TrainConfig.from_dict(part.data)
    except ConfigError as exc:
        part.fail(f"train_config is invalid: {first_line(exc)}")
    except (TypeError, ValueError, OverflowError) as exc:
        part.fail(f"train_config is malformed ({first_line(exc)[:120]})")


def _optim_groups(top: JsonObject) -> tuple[dict[str, Any], ...]:
    groups = top.data.get("optim_groups", [])
    if not isinstance(groups, list) or len(groups) > 64:
        top.fail(f"'optim_groups' must be a list of optimizer parameter groups, not {short(groups)}")
    return tuple(_optim_group(JsonObject(top.label, f"optim_groups[{i}]", g)) for i, g in enumerate(groups))


def _optim_group(g: JsonObject) -> dict[str, Any]:
    """One group: 'params' indices, 'betas' a pair, and otherwise plain settings (flags, finite numbers)."""
    params = g.data.get("params", [])
    if (
        not isinstance(params, list)
        or len(params) > MAX_PARAMS_IN_GROUPS
        or not all(is_int(i) and 0 <= i < MAX_PARAMS_IN_GROUPS for i in params)
    ):
        g.fail(f"{g.where}.params must be a list of parameter indices")
    betas = g.data.get("betas")
    if betas is not None and not (isinstance(betas, list) and len(betas) == 2 and all(is_unit(b) for b in betas)):
        g.fail(f"{g.where}.betas must be two numbers in [0, 1), not {short(betas)}")
    for key, value in g.data.items():
        if key in ("params", "betas"):
            continue
        if not (value is None or isinstance(value, (bool, str)) or is_bounded(value)):
            g.fail(f"{g.where}.{_key(key)} must be a flag, a string or a finite number, not {short(value)}")
        if isinstance(value, str) and len(value) > 200:
            g.fail(f"{g.where}.{_key(key)} is too long")
    return dict(g.data)


def _key(key: str) -> str:
    return key if key.isidentifier() else short(key)
