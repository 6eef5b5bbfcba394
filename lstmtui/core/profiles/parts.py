"""The parts of a profile's metadata (progress, corpus, sampling, history, RNG states) and their JSON."""

from __future__ import annotations

import codecs
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

from lstmtui.core.profiles.jsonfields import (
    MAX_COUNT,
    SHA_RE,
    JsonObject,
    as_float,
    is_bounded,
    is_int,
    is_words,
    short,
)

LN2 = math.log(2)


# ----- the parts -----


@dataclass(frozen=True)
class FileEntry:
    """One tensor group file of a version: its sha256 and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Progress:
    """Where training stands: counters, the best validation loss so far, the schedule's state."""

    epoch: int = 0
    epoch_step: int = 0
    steps_per_epoch: int | None = None
    step: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float | None = None  # nats per character, full split, of the best weights; None: not measured
    best_val_bpc: float | None = None
    best_step: int = -1
    # the estimate the best weights were kept by, with its standard error (None: chosen on full-split figures)
    best_estimate: float | None = None
    best_estimate_stderr: float | None = None
    bad_epochs: int = 0
    base_lr: float | None = None
    lr_scale: float = 1.0
    hidden_policy: str | None = None
    finished: bool = False
    parameters: int | None = None
    device: str | None = None


@dataclass(frozen=True)
class CleaningRecord:
    """The cleaning options a corpus was read with, and the steps they applied."""

    encoding: str = "utf-8"
    nfc: bool = True
    lowercase: bool = False
    min_char_count: int = 0
    steps: tuple[str, ...] = ()

    def options(self) -> dict[str, Any]:
        """The options alone, as CleaningOptions.from_dict takes them."""
        return {
            "encoding": self.encoding,
            "nfc": self.nfc,
            "lowercase": self.lowercase,
            "min_char_count": self.min_char_count,
        }


@dataclass(frozen=True)
class CorpusProvenance:
    """Which text a profile was trained on: files, sizes, hashes and how it was cleaned."""

    paths: tuple[str, ...] = ()
    size_bytes: int | None = None
    n_chars: int | None = None
    sha256: str | None = None
    file_sha256: tuple[str, ...] = ()
    cleaning: CleaningRecord | None = None
    vocab_size: int | None = None
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamplingDefaults:
    """The sampling settings `generate` starts from for this profile."""

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    beam: int = 0
    length: int = 500
    repetition_penalty: float = 1.0
    repetition_window: int = 32
    no_repeat_ngram: int = 0


class TrainPoint(NamedTuple):
    """One training-loss point: step, loss in nats per character, seconds of training so far."""

    step: int
    loss: float
    elapsed_s: float | None = None


class ValPoint(NamedTuple):
    """One validation point: step, loss in nats per character, bits per character, seconds so far."""

    step: int
    loss: float
    bpc: float
    elapsed_s: float | None = None


@dataclass(frozen=True)
class HistoryEvent:
    """Something that happened to the run at a step (e.g. fine-tuning on another corpus)."""

    step: int
    event: str
    corpus: tuple[str, ...] | None = None


@dataclass(frozen=True)
class History:
    """The learning curve: training and validation points, oldest first, and run events."""

    train: tuple[TrainPoint, ...] = ()
    val: tuple[ValPoint, ...] = ()
    events: tuple[HistoryEvent, ...] = ()


MAX_SAVED_SAMPLES = 10  # the newest training samples a profile keeps, shown when it is reopened
MAX_SAMPLE_TEXT = 20_000  # characters of a kept sample's text


@dataclass(frozen=True)
class SavedSample:
    """One of the newest training samples: its step, epoch and temperature, its prime and text, the share copied."""

    step: int
    epoch: int
    temperature: float
    text: str
    prime: str = ""
    memorised: float | None = None  # share (0..1) copied from the corpus; None: not measured


@dataclass(frozen=True)
class RngState:
    """Python's and numpy's global RNG states (torch's is a tensor in the ``state`` group)."""

    python: tuple[int, tuple[int, ...], float | None] | None = None
    numpy: tuple[str, tuple[int, ...], int, int, float] | None = None


@dataclass(frozen=True)
class Versions:
    """The lstmtui and torch versions that wrote the profile."""

    lstmtui: str | None = None
    torch: str | None = None


# ----- reading JSON -----


def read_progress(p: JsonObject) -> Progress:
    """Progress from meta.json's "progress" object (absent counters read as 0)."""
    return Progress(
        epoch=p.whole("epoch", 0),
        epoch_step=p.whole("epoch_step", 0),
        steps_per_epoch=p.whole("steps_per_epoch", None),
        step=p.whole("step", 0),
        elapsed_s=p.number("elapsed_s", 0.0, high=1e12),
        best_val_loss=p.loss("best_val_loss"),
        best_val_bpc=p.loss("best_val_bpc"),
        best_step=p.whole("best_step", -1, low=-1),
        best_estimate=p.loss("best_estimate"),
        best_estimate_stderr=p.loss("best_estimate_stderr"),
        bad_epochs=p.whole("bad_epochs", 0),
        base_lr=p.number("base_lr", None, high=1e6),
        lr_scale=p.number("lr_scale", 1.0, high=1e6),
        hidden_policy=p.text("hidden_policy", None, limit=200),
        finished=p.flag("finished", False),
        parameters=p.whole("parameters", None),
        device=p.text("device", None, limit=200),
    )


def read_corpus(c: JsonObject) -> CorpusProvenance:
    """CorpusProvenance from meta.json's "corpus" object."""
    cleaning = None
    if c.data.get("cleaning") is not None:
        cleaning = _cleaning(c.part("cleaning"))
    sha = c.text("sha256", None)
    if sha is not None and not SHA_RE.fullmatch(sha):
        c.fail(f"corpus.sha256 must be a sha256 hex digest, not {short(sha)}")
    return CorpusProvenance(
        paths=c.texts("paths"),
        size_bytes=c.whole("size_bytes", None),
        n_chars=c.whole("n_chars", None),
        sha256=sha,
        file_sha256=c.texts("file_sha256", SHA_RE),
        cleaning=cleaning,
        vocab_size=c.whole("vocab_size", None, high=1 << 20),
        skipped=c.texts("skipped"),
    )


def _cleaning(c: JsonObject) -> CleaningRecord:
    encoding = c.text("encoding", "utf-8", limit=64)
    try:
        text_codec = getattr(codecs.lookup(encoding), "_is_text_encoding", True)
    except LookupError:
        text_codec = False
    if not text_codec:
        c.fail(f"corpus.cleaning.encoding {short(encoding)} is not a text encoding")
    return CleaningRecord(
        encoding=encoding,
        nfc=c.flag("nfc", True),
        lowercase=c.flag("lowercase", False),
        min_char_count=c.whole("min_char_count", 0),
        steps=c.texts("steps"),
    )


def read_sampling(s: JsonObject) -> SamplingDefaults:
    """SamplingDefaults from meta.json's "sampling" object, each within what `generate` accepts."""
    return SamplingDefaults(
        temperature=s.number("temperature", 0.8, high=100.0),
        top_k=s.whole("top_k", 0, high=1 << 20),
        top_p=s.number("top_p", 1.0, low=1e-9, high=1.0),
        beam=s.whole("beam", 0, high=256),
        length=s.whole("length", 500, high=10**8),
        repetition_penalty=s.number("repetition_penalty", 1.0, low=1.0, high=100.0),
        repetition_window=s.whole("repetition_window", 32, low=1, high=1 << 20),
        no_repeat_ngram=s.whole("no_repeat_ngram", 0, high=1 << 16),
    )


def read_history(h: JsonObject) -> History:
    """History from meta.json's "history" object (a val point without bits per character gets them from its loss)."""
    train = tuple(TrainPoint(*p) for p in _points(h, "train", 2, 3))
    val = []
    for p in _points(h, "val", 2, 4):
        step, loss = p[0], p[1]
        bpc = p[2] if len(p) > 2 else loss / LN2
        val.append(ValPoint(step, loss, bpc, p[3] if len(p) > 3 else None))
    return History(train=train, val=tuple(val), events=_events(h))


def _points(h: JsonObject, key: str, least: int, most: int) -> list[list[Any]]:
    """[step, value, ...] lists: a whole step, then numbers (NaN and infinity kept: a diverged run)."""
    series = h.data.get(key, [])
    problem = f"history.{key} must be a list of [step, value, ...] number lists"
    if not isinstance(series, list):
        h.fail(problem)
    out = []
    for point in series:
        if not isinstance(point, list) or len(point) < least or not is_int(point[0]) or not 0 <= point[0] <= MAX_COUNT:
            h.fail(problem)
        values = [as_float(v) for v in point[1:most]]
        if any(v is None for v in values):
            h.fail(problem)
        out.append([point[0], *values])
    return out


def _events(h: JsonObject) -> tuple[HistoryEvent, ...]:
    events = h.data.get("events", [])
    if not isinstance(events, list):
        h.fail("history.events must be a list")
    out = []
    for i, item in enumerate(events):
        e = JsonObject(h.label, f"history.events[{i}]", item)
        paths = e.texts("corpus") if e.data.get("corpus") is not None else None
        out.append(HistoryEvent(step=e.whole("step", 0), event=e.text("event", "", limit=200), corpus=paths))
    return tuple(out)


def read_samples(top: JsonObject) -> tuple[SavedSample, ...]:
    """The newest training samples from meta.json's "samples" list (absent in older profiles: none)."""
    samples = top.data.get("samples", [])
    if not isinstance(samples, list) or len(samples) > MAX_SAVED_SAMPLES:
        top.fail(f"'samples' must be a list of at most {MAX_SAVED_SAMPLES} training samples")
    out = []
    for i, item in enumerate(samples):
        s = JsonObject(top.label, f"samples[{i}]", item)
        out.append(
            SavedSample(
                step=s.whole("step", 0),
                epoch=s.whole("epoch", 0),
                temperature=s.number("temperature", 0.0, high=100.0),
                text=s.text("text", "", limit=MAX_SAMPLE_TEXT),
                prime=s.text("prime", ""),
                memorised=s.number("memorised", None, high=1.0),
            )
        )
    return tuple(out)


def read_rng(r: JsonObject) -> RngState:
    """RngState from meta.json's "rng" object: only states of the shapes Python and numpy save."""
    python = r.data.get("python")
    if python is not None and not (
        isinstance(python, list)
        and len(python) == 3
        and is_int(python[0])
        and is_words(python[1], 625)
        and python[1][-1] <= 624
        and (python[2] is None or is_bounded(python[2]))
    ):
        r.fail("rng.python is not a saved Python random state")
    numpy = r.data.get("numpy")
    if numpy is not None and not (
        isinstance(numpy, list)
        and len(numpy) == 5
        and numpy[0] == "MT19937"
        and is_words(numpy[1], 624)
        and is_int(numpy[2])
        and 0 <= numpy[2] <= 624
        and numpy[3] in (0, 1)
        and is_int(numpy[3])
        and is_bounded(numpy[4])
    ):
        r.fail("rng.numpy is not a saved numpy random state")
    return RngState(
        python=(python[0], tuple(python[1]), python[2]) if python is not None else None,
        numpy=(numpy[0], tuple(numpy[1]), numpy[2], numpy[3], float(numpy[4])) if numpy is not None else None,
    )


# ----- writing JSON -----


def progress_json(p: Progress) -> dict[str, Any]:
    """Progress as meta.json holds it (an unknown best as null, other unknowns left out)."""
    out = asdict(p)
    best_known = p.best_val_loss is not None
    out = {k: v for k, v in out.items() if v is not None or k.startswith("best_val")}
    if not best_known:
        out["best_val_loss"] = out["best_val_bpc"] = None
    return out


def rng_json(r: RngState) -> dict[str, Any]:
    """RngState as meta.json holds it."""
    out: dict[str, Any] = {}
    if r.python is not None:
        out["python"] = [r.python[0], list(r.python[1]), r.python[2]]
    if r.numpy is not None:
        out["numpy"] = [r.numpy[0], list(r.numpy[1]), r.numpy[2], r.numpy[3], r.numpy[4]]
    return out


def history_json(h: History) -> dict[str, Any]:
    """History as meta.json holds it: points as lists, events only when there are some."""
    out: dict[str, Any] = {
        "train": [[p.step, p.loss] + ([] if p.elapsed_s is None else [p.elapsed_s]) for p in h.train],
        "val": [[p.step, p.loss, p.bpc] + ([] if p.elapsed_s is None else [p.elapsed_s]) for p in h.val],
    }
    if h.events:
        out["events"] = [
            without_none({"step": e.step, "event": e.event, "corpus": None if e.corpus is None else list(e.corpus)})
            for e in h.events
        ]
    return out


def samples_json(samples: tuple[SavedSample, ...]) -> list[dict[str, Any]]:
    """The kept samples as meta.json holds them (an unmeasured copied share left out)."""
    return [without_none(asdict(s)) for s in samples]


def corpus_json(c: CorpusProvenance) -> dict[str, Any]:
    """CorpusProvenance as meta.json holds it."""
    out = {f.name: getattr(c, f.name) for f in fields(c)}
    for key in ("paths", "file_sha256", "skipped"):
        out[key] = list(out[key])
    if not c.skipped:
        del out["skipped"]
    if c.cleaning is not None:
        out["cleaning"] = {**c.cleaning.options(), "steps": list(c.cleaning.steps)}
    return without_none(out)


def without_none(data: dict[str, Any]) -> dict[str, Any]:
    """The dict without its None values (absent values are left out of meta.json)."""
    return {k: v for k, v in data.items() if v is not None}
