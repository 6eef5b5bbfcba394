"""Streaming character generation from a CharLSTM: temperature, top-k, top-p, beam search.

The prime (the text the model continues) runs through the network once, in as few forward calls
as memory allows; after that each character costs one single-step forward, stepping the kept
(h, c) state, so generation is O(1) per character and can stop and resume at any character.

Temperature 0 means greedy decoding (always the most likely character).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from lstmtui.core.corpus import UNKNOWN_CHAR
from lstmtui.core.errors import ConfigError, VocabularyError

# Feeding a long prime in one call needs the LSTM's gate buffer for every step (time x 4*hidden
# floats per layer); chunks this long keep that to tens of MB for big models.
PRIME_CHUNK = 4096
# Uniform random numbers are drawn from the torch.Generator in blocks: one draw per character
# would cost more than the sampling itself.
_UNIFORM_BLOCK = 256
MAX_LENGTH = 10**8
MAX_BEAM = 256


@dataclass
class SamplingConfig:
    """How to pick each next character.

    temperature: 0 is greedy (argmax); below 1 sharper, above 1 flatter.
    top_k: keep only the k most likely characters (0 = off).
    top_p: nucleus sampling, keep the smallest set of most likely characters whose mass reaches p
        (1.0 = off).
    beam: beam search width (0 = off); returns the most likely continuation of the given length
        it finds under the model. The greedy continuation is always a candidate, so the result is
        at least as likely as greedy. Temperature, top-k, top-p and the repetition guards do not
        apply; stops do.
    length: characters to generate per sample.
    stop: stop after emitting any of these strings (the stop string is included).
    stop_chars: stop after emitting any of these characters (included).
    repetition_penalty: > 1 divides the logits of characters seen in the last
        ``repetition_window`` emitted characters (CTRL-style); 1.0 = off.
    no_repeat_ngram: forbid a character that would repeat an n-gram already emitted, which
        breaks greedy / low-temperature loops (0 = off; 8-16 suits characters).
    seed: random seed for reproducible samples (None = fresh randomness).
    """

    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    beam: int = 0
    length: int = 500
    stop: tuple[str, ...] = ()
    stop_chars: str = ""
    repetition_penalty: float = 1.0
    repetition_window: int = 32
    no_repeat_ngram: int = 0
    seed: int | None = None

    def validate(self) -> "SamplingConfig":
        """Raise ConfigError for an impossible setting; return self."""
        _number("--temperature", self.temperature, 0.0, 100.0)
        _whole("--top-k", self.top_k, 0, 1 << 20)
        _number("--top-p", self.top_p, 0.0, 1.0, low_open=True)
        _whole("--beam", self.beam, 0, MAX_BEAM)
        _whole("--length", self.length, 0, MAX_LENGTH)
        _number("--repetition-penalty", self.repetition_penalty, 1.0, 100.0)
        _whole("--repetition-window", self.repetition_window, 1, 1 << 20)
        _whole("--no-repeat-ngram", self.no_repeat_ngram, 0, 1 << 16)
        if self.seed is not None:
            _whole("--seed", self.seed, 0, 2**63 - 1)
        if isinstance(self.stop, str):
            self.stop = (self.stop,)
        try:
            self.stop = tuple(self.stop)
        except TypeError:
            raise ConfigError(f"--stop must be text, not {self.stop!r}") from None
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ConfigError("--stop strings must be non-empty text")
        if not isinstance(self.stop_chars, str):
            raise ConfigError("--stop-chars must be text")
        return self

    @property
    def method(self) -> str:
        """A short name of the decoding method these settings select."""
        if self.beam > 0:
            return f"beam {self.beam}"
        if self.temperature == 0:
            return "greedy"
        parts = [f"T={self.temperature:g}"]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1.0:
            parts.append(f"top-p {self.top_p:g}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplingConfig":
        """Build from a dict (e.g. a profile's "sampling" defaults), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("stop"), list):
            values["stop"] = tuple(values["stop"])
        return cls(**values).validate()


def _whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")


def _number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    if (value <= low if low_open else value < low) or value > high:
        raise ConfigError(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}], not {value:g}")


def _vocab_chars(vocab) -> list[str]:
    return list(vocab.chars)


def _missing(vocab, text: str) -> list[str]:
    if hasattr(vocab, "missing"):
        return list(vocab.missing(text))
    known = set(vocab.chars)
    return sorted({ch for ch in text if ch not in known})


def _show_chars(chars: Sequence[str], limit: int = 12) -> str:
    shown = []
    for ch in chars[:limit]:
        shown.append(repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}")
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return ", ".join(shown) + more


class CharGenerator:
    """Generates characters one at a time from a model snapshot, keeping the LSTM state.

    The model is used as given when it is in eval mode on ``device`` (the caller's snapshot);
    otherwise it is copied first, so generation never changes the caller's model. Per-character
    steps use folded copies of the weights taken at construction, so training the model on in
    another thread does not disturb a stream once it has started (the prime and beam search do
    use the model itself: pass a snapshot). Not thread-safe: one generator per thread.
    """

    def __init__(self, model, vocab, config: SamplingConfig | None = None, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None) -> None:
        self.config = (config or SamplingConfig()).validate()
        self.device = torch.device(device)
        if model.training or _model_device(model) != self.device:
            # never switch the caller's model to eval mode or move it: work on a copy
            model = copy.deepcopy(model).eval().to(self.device)
        self.model = model
        self.vocab = vocab
        self.chars = _vocab_chars(vocab)
        self._index = {ch: i for i, ch in enumerate(self.chars)}
        self.vocab_size = len(self.chars)
        if generator is None:
            generator = torch.Generator()
            seed = self.config.seed if self.config.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
            generator.manual_seed(seed)
        self.generator = generator
        self._uniforms = np.empty(0)
        self._u_pos = 0
        self._gumbels = np.empty((0, 0), dtype=np.float32)
        self._g_pos = 0
        self.state = None
        self._logits: torch.Tensor | None = None  # logits for the next character
        self._pending: int | None = None           # chosen but not yet fed to the network
        self._x = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        if _CpuStepper.supports(self.model):
            self._stepper: _Stepper | None = _CpuStepper(self.model)
        else:
            self._stepper = _Stepper(self.model) if _Stepper.supports(self.model) else None
        cfg = self.config
        self._guarded = cfg.repetition_penalty != 1.0 or cfg.no_repeat_ngram > 0
        self._plain = not self._guarded and cfg.top_k == 0 and cfg.top_p >= 1.0
        self.history: list[int] = []               # every id fed or emitted, prime included
        self.emitted = 0
        self._ngrams: dict[tuple[int, ...], set[int]] = {}

    # -- state -----------------------------------------------------------------------------
    def default_start(self) -> str:
        """The character an empty prime starts from: newline, else space, else the first one."""
        for ch in ("\n", " "):
            if ch in self._index:
                return ch
        return self.chars[0]

    def encode_prime(self, text: str, drop_unknown: bool = False) -> list[int]:
        """Character ids of a prime; VocabularyError listing unknown characters unless dropped."""
        missing = _missing(self.vocab, text)
        if missing and UNKNOWN_CHAR in self._index and not drop_unknown:
            # the corpus mapped its rare characters to this symbol; the prime's get the same
            unknown = set(missing)
            text = "".join(UNKNOWN_CHAR if ch in unknown else ch for ch in text)
            missing = []
        if missing:
            if not drop_unknown:
                raise VocabularyError(
                    f"the prime has {len(missing)} character(s) the model's vocabulary lacks: "
                    f"{_show_chars(missing)} (drop them with --drop-unknown)"
                )
            drop = set(missing)
            text = "".join(ch for ch in text if ch not in drop)
        index = self._index
        try:
            return [index[ch] for ch in text]
        except KeyError:
            # The vocabulary maps some characters itself (e.g. rare ones to its unknown symbol).
            return [int(i) for i in self.vocab.encode(text)]

    def prime(self, text: str, drop_unknown: bool = False) -> None:
        """Reset the state and run the prime through the network (empty: a default start char)."""
        ids = self.encode_prime(text, drop_unknown)
        if not ids:
            ids = [self._index[self.default_start()]]
        with torch.inference_mode():
            self._set_state(None)
        self._logits = None
        self._pending = None
        self.history = []
        self.emitted = 0
        self._ngrams = {}
        self._feed_ids(ids)

    def feed(self, text: str, drop_unknown: bool = False) -> None:
        """Append text to the context without resetting (e.g. the user typed more seed)."""
        ids = self.encode_prime(text, drop_unknown)
        if ids:
            self._flush_pending()
            self._feed_ids(ids)

    @torch.inference_mode()
    def _feed_ids(self, ids: list[int], record: bool = True) -> None:
        model = self.model
        for start, stop in _chunks(len(ids), PRIME_CHUNK):
            chunk = torch.tensor([ids[start:stop]], dtype=torch.long, device=self.device)
            if self._stepper is not None:
                # only the last position's logits are needed: skip the head for the rest
                out, state = model.lstm(model.encode_input(chunk), self.state)
                last = out[:, -1:]
            else:
                last, state = model(chunk, self.state)
            self._set_state(state)
        if self._stepper is not None:
            last = model.head(last)
        self._logits = last[0, -1].float().cpu()
        if record:
            self.history.extend(ids)

    def _set_state(self, state) -> None:
        if self._stepper is None:
            self.state = state
            return
        views = self._stepper.state_views()
        if state is None:
            views[0].zero_()
            views[1].zero_()
        else:
            views[0].copy_(state[0])
            views[1].copy_(state[1])
        self.state = views

    @torch.inference_mode()
    def _flush_pending(self) -> None:
        if self._logits is None:
            self.prime("")
        if self._pending is not None:
            if self._stepper is not None:
                self._logits = self._stepper.step(self._pending).cpu()  # a buffer: valid until the next step
            else:
                self._x[0, 0] = self._pending
                logits, self.state = self.model(self._x, self.state)
                self._logits = logits[0, -1].float().cpu()
            self._pending = None

    def checkpoint(self) -> dict[str, Any]:
        """A copy of the generator's position (state, next logits, history) for restore()."""
        with torch.inference_mode():
            self._flush_pending()
            return {"state": (self.state[0].clone(), self.state[1].clone()), "logits": self._logits.clone(),
                    "history": list(self.history)}

    def restore(self, checkpoint: dict[str, Any]) -> None:
        """Go back to a checkpoint (e.g. one prime, several samples, without re-running the prime)."""
        with torch.inference_mode():
            self._set_state(tuple(t.clone() for t in checkpoint["state"]))
        self._logits = checkpoint["logits"].clone()
        self._pending = None
        self.history = list(checkpoint["history"])
        self.emitted = 0
        self._ngrams = {}

    def next_probs(self) -> torch.Tensor:
        """The model's probabilities for the next character (before any sampling filter)."""
        self._flush_pending()
        return torch.softmax(self._logits, dim=-1)

    # -- choosing --------------------------------------------------------------------------
    def _uniform(self) -> float:
        if self._u_pos >= len(self._uniforms):
            self._uniforms = torch.rand(_UNIFORM_BLOCK, generator=self.generator, dtype=torch.float64).numpy()
            self._u_pos = 0
        u = self._uniforms[self._u_pos]
        self._u_pos += 1
        return float(u)

    def _gumbel(self) -> np.ndarray:
        """One row of standard Gumbel noise per character, drawn from the generator in blocks."""
        if self._g_pos >= len(self._gumbels):
            u = torch.rand((_UNIFORM_BLOCK, self.vocab_size), generator=self.generator, dtype=torch.float64).numpy()
            # u = 0 would be log(0): the smallest positive double gives the same -inf-like draw
            np.maximum(u, np.finfo(np.float64).tiny, out=u)
            self._gumbels = (-np.log(-np.log(u))).astype(np.float32)
            self._g_pos = 0
        row = self._gumbels[self._g_pos]
        self._g_pos += 1
        return row

    def filtered_logits(self, logits: np.ndarray) -> np.ndarray:
        """Apply the repetition guard, temperature, top-k and top-p to one step's logits."""
        cfg = self.config
        z = logits.astype(np.float64, copy=True)
        if cfg.repetition_penalty != 1.0 and self.emitted:
            recent = np.unique(np.asarray(self.history[-min(cfg.repetition_window, self.emitted):]))
            vals = z[recent]
            z[recent] = np.where(vals > 0, vals / cfg.repetition_penalty, vals * cfg.repetition_penalty)
        if cfg.no_repeat_ngram:
            n = cfg.no_repeat_ngram
            if len(self.history) >= n - 1:
                banned = self._ngrams.get(tuple(self.history[len(self.history) - n + 1:]))
                if banned and len(banned) < len(z):
                    z[list(banned)] = -np.inf
        if cfg.temperature == 0:
            return z
        if not (0 < cfg.top_k < len(z) or cfg.top_p < 1.0):
            return z / cfg.temperature
        # the very selection choose() draws from, so ties and rounding at the edge agree
        kept, _ = _sorted_head(z, cfg.temperature, cfg.top_k, cfg.top_p)
        masked = np.full_like(z, -np.inf)
        masked[kept] = z[kept] / cfg.temperature
        return masked

    def choose(self, logits: torch.Tensor | np.ndarray) -> int:
        """Pick the next character id from one step's logits under the configured method."""
        cfg = self.config
        x = logits.numpy() if isinstance(logits, torch.Tensor) else logits
        if self._plain:
            # the common case, kept to three numpy calls: this runs once per character. The
            # Gumbel-max trick draws from softmax(x / T) exactly: argmax(x / T + Gumbel noise).
            if cfg.temperature == 0:
                return int(x.argmax())
            z = np.multiply(x, 1.0 / cfg.temperature, dtype=np.float32)
            z += self._gumbel()
            return int(z.argmax())
        if not self._guarded and cfg.temperature > 0:
            # top-k / top-p without repetition guards: work on the sorted head only
            order, p = _sorted_head(x, cfg.temperature, cfg.top_k, cfg.top_p)
            return int(order[self._draw(p)])
        z = self.filtered_logits(x)
        if cfg.temperature == 0:
            return int(np.argmax(z))
        return self._draw(np.exp(z - z.max()))

    def _draw(self, p: np.ndarray) -> int:
        """Index drawn in proportion to the non-negative weights ``p`` (inverse CDF)."""
        cdf = np.cumsum(p)
        i = int(np.searchsorted(cdf, self._uniform() * cdf[-1], side="right"))
        if i >= len(p):
            # only rounding at the very top gets here; never pick a zero-weight tail
            i = int(np.flatnonzero(p)[-1])
        return i

    def _emit(self, cid: int) -> None:
        self.history.append(cid)
        self.emitted += 1
        n = self.config.no_repeat_ngram
        if n and len(self.history) >= n:
            key = tuple(self.history[-n:-1])
            self._ngrams.setdefault(key, set()).add(cid)

    # -- streaming -------------------------------------------------------------------------
    def stream(self, length: int | None = None) -> Iterator[str]:
        """Yield up to ``length`` characters (default: the configured length), one at a time.

        Stops early after a stop string or stop character. Closing the iterator at any point
        leaves the state right after the last character yielded, so a later call continues.
        Beam search (beam > 0) is not streaming by nature: characters are yielded as soon as
        every beam agrees on them, and the rest once the best beam is known.
        """
        length = self.config.length if length is None else length
        _whole("--length", length, 0, MAX_LENGTH)
        if self.config.beam > 0:
            yield from self._beam_stream(length)
            return
        stop = _StopWatch(self.config)
        chars = self.chars
        if length and self._logits is None:
            self.prime("")
        stepper = self._stepper if isinstance(self._stepper, _CpuStepper) else None
        if stepper is not None and not stop.active and not self.config.no_repeat_ngram:
            # the common case with the per-character work inlined: one NumPy step and one choice
            choose, step, history = self.choose, stepper.step_numpy, self.history
            logits = self._logits
            for _ in range(length):
                pending = self._pending
                if pending is not None:
                    self._pending = None  # cleared first: a closed stream must not step twice
                    logits = step(pending)
                    self._logits = stepper.logits
                cid = choose(logits)
                self._pending = cid
                history.append(cid)
                self.emitted += 1
                yield chars[cid]
            return
        for _ in range(length):
            if self._pending is not None:
                if stepper is not None:
                    # the stepper's buffers need no autograd context: nothing in it requires grad
                    self._logits = stepper.step(self._pending)
                    self._pending = None
                else:
                    self._flush_pending()
            cid = self.choose(self._logits)
            self._pending = cid
            self._emit(cid)
            ch = chars[cid]
            yield ch
            if stop.hit(ch):
                return

    def generate(self, length: int | None = None) -> str:
        """Generate and return a whole sample (see stream())."""
        return "".join(self.stream(length))

    def _beam_stream(self, length: int) -> Iterator[str]:
        stop = _StopWatch(self.config)
        chars = self.chars
        with torch.inference_mode():
            self._flush_pending()
        start = ((self.state[0].clone(), self.state[1].clone()), self._logits.clone())
        emitted: list[int] = []
        beams = self._beam_ids(length)
        finished = False
        try:
            for cid in beams:
                self._emit(cid)
                emitted.append(cid)
                yield chars[cid]
                if stop.hit(chars[cid]):
                    break
            else:
                finished = True
        finally:
            if not finished:
                # stopped before the search set its final state: the state must follow the output
                beams.close()
                with torch.inference_mode():
                    self._set_state(start[0])
                self._logits = start[1]
                self._pending = None
                if emitted:
                    self._feed_ids(emitted, record=False)

    def beam_search(self, length: int, width: int | None = None) -> tuple[list[int], float]:
        """The most likely continuation of ``length`` characters found with a beam, and its log-prob.

        Leaves the generator's state after the returned continuation.
        """
        ids = list(self._beam_ids(length, width))
        for cid in ids:
            self._emit(cid)
        return ids, self._last_beam_logprob

    def _beam_ids(self, length: int, width: int | None = None) -> Iterator[int]:
        # Plain beam search can prune the greedy path and end below it, so the greedy
        # continuation rides along as one extra row of the batch and wins if it scores higher.
        width = width or self.config.beam or 1
        self._last_beam_logprob = 0.0
        if length == 0:
            return
        with torch.inference_mode():
            self._flush_pending()
            v = self.vocab_size
            h, c = self.state
            logp0 = torch.log_softmax(self._logits.double(), -1)
            k = min(width, v)
            scores, first = torch.topk(logp0, k)
            tokens = torch.zeros((k + 1, length), dtype=torch.long)  # last row: greedy
            tokens[:k, 0] = first
            tokens[k, 0] = first[0]
            greedy_score = scores[0].clone()
            on_cpu = self._stepper is not None and self.device.type == "cpu"
            batch = _BatchStep(self._stepper, k + 1, h, c) if on_cpu else None
            if batch is None:
                hb, cb = h.repeat(1, k + 1, 1), c.repeat(1, k + 1, 1)
        yielded = 0
        for t in range(1, length + 1):
            # every row agrees on this position, and rows only ever descend from rows, so it is final
            while yielded < t and bool((tokens[:, yielded] == tokens[0, yielded]).all()):
                yield int(tokens[0, yielded])
                yielded += 1
            with torch.inference_mode():
                if batch is not None:
                    last = batch.step(tokens[:, t - 1])
                else:
                    out, (hb, cb) = self.model(tokens[:, t - 1:t].to(self.device), (hb, cb))
                    last = out[:, -1]
                if t == length:
                    break
                logp = torch.log_softmax(last.double().cpu(), -1)
                total = (scores[:, None] + logp[:k]).reshape(-1)
                kk = min(k, total.numel())
                scores, flat = torch.topk(total, kk)
                g_best, g_tok = torch.max(logp[k], -1)
                greedy_score = greedy_score + g_best
                rows = torch.cat([flat // v, torch.tensor([k])])
                tokens = tokens[rows]
                tokens[:k, t] = flat % v
                tokens[k, t] = g_tok
                if batch is not None:
                    batch.reorder(rows)
                else:
                    rows = rows.to(self.device)
                    hb, cb = hb[:, rows], cb[:, rows]
        with torch.inference_mode():
            best = int(torch.argmax(scores))
            best_score = float(scores[best])
            if float(greedy_score) > best_score:
                best, best_score = k, float(greedy_score)
            self._last_beam_logprob = best_score
            self._set_state(batch.row_state(best) if batch is not None else (hb[:, best:best + 1], cb[:, best:best + 1]))
            self._logits = last[best].float().cpu().clone()
            self._pending = None
        for i in range(yielded, length):
            yield int(tokens[best, i])


def _chunks(n: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, stop) pieces of n items: ``largest`` at a time, then the rest in powers of two.

    oneDNN keeps a compiled LSTM primitive per sequence length (about 0.45 MB each, up to its
    cache's capacity); a prime of any length then uses a dozen lengths in all instead of a new one
    each time the text grows, which is what re-priming after a settings change does.
    """
    start, size = 0, largest
    while start < n:
        while size > n - start:
            size //= 2
        yield start, start + size
        start += size


def _sorted_head(z: np.ndarray, temperature: float, top_k: int, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Ids that top-k and top-p keep, most likely first (ties by lowest id), with their weights
    ``exp((z - max) / temperature)``."""
    order = np.argsort(-z, kind="stable")
    if 0 < top_k < len(order):
        order = order[:top_k]
    zs = z[order].astype(np.float64)
    p = np.exp((zs - zs[0]) / temperature)
    if top_p < 1.0:
        n = _nucleus_count(p, top_p)
        order, p = order[:n], p[:n]
    return order, p


def _nucleus_count(p_sorted: np.ndarray, top_p: float) -> int:
    """How many of the descending weights ``p_sorted`` the nucleus keeps: the fewest whose share
    of the total reaches ``top_p`` (each character is kept while the mass before it is < top_p)."""
    cdf = np.cumsum(p_sorted)
    return min(len(cdf), int(np.searchsorted(cdf, top_p * cdf[-1], side="left")) + 1)


class _StopWatch:
    """Watches emitted characters for stop strings and stop characters."""

    def __init__(self, config: SamplingConfig) -> None:
        self.stops = tuple(config.stop)
        self.stop_chars = set(config.stop_chars)
        self.tail = ""
        self.keep = max((len(s) for s in self.stops), default=0)
        self.active = bool(self.stops or self.stop_chars)

    def hit(self, ch: str) -> bool:
        if ch in self.stop_chars:
            return True
        if not self.stops:
            return False
        self.tail = (self.tail + ch)[-self.keep:]
        return any(self.tail.endswith(s) for s in self.stops)


class _Stepper:
    """One-character steps of a CharLSTM with preallocated buffers and folded weights.

    nn.LSTM called on a (1, 1) input spends a millisecond or more in per-call set-up on CPU; these
    are the same equations as a few in-place ops per layer on views made once: the first layer's
    input projection (embedding or one-hot times W_ih, plus both biases) is precomputed per
    character, deeper layers multiply one concatenated [W_ih | W_hh] by the adjacent
    [h_below | h_own] slice of one hidden buffer, and gate rows are reordered to i, f, o, g with
    the i, f, o rows halved, so that one tanh covers every gate (sigmoid(x) = tanh(x/2)/2 + 1/2).
    """

    def __init__(self, model) -> None:
        lstm, head = model.lstm, model.head
        hh, layers = lstm.hidden_size, lstm.num_layers
        self.hidden, self.layers = hh, layers
        dev, dtype = head.weight.device, torch.float32
        # PyTorch's gate order is i, f, g, o
        order = torch.cat([torch.arange(0, 2 * hh), torch.arange(3 * hh, 4 * hh), torch.arange(2 * hh, 3 * hh)]).to(dev)
        half = torch.ones(4 * hh, device=dev, dtype=dtype)
        half[: 3 * hh] = 0.5

        def w(name):
            return getattr(lstm, name).detach().to(dtype)

        # no_grad, not inference_mode: plain tensors can then be updated in place with no context
        with torch.no_grad():
            if model.embedding is not None:
                inputs = model.embedding.weight.detach().to(dtype) @ w("weight_ih_l0").T
            else:
                inputs = w("weight_ih_l0").T  # a one-hot input selects a column of W_ih
            self.table = ((inputs + w("bias_ih_l0") + w("bias_hh_l0"))[:, order] * half).contiguous()
            self.rows = list(self.table.unbind(0))
            self.weights = [(w("weight_hh_l0")[order] * half[:, None]).contiguous()]
            self.biases = [None]
            for layer in range(1, layers):
                cat = torch.cat([w(f"weight_ih_l{layer}"), w(f"weight_hh_l{layer}")], dim=1)
                self.weights.append((cat[order] * half[:, None]).contiguous())
                self.biases.append(((w(f"bias_ih_l{layer}") + w(f"bias_hh_l{layer}"))[order] * half).contiguous())
            self.head_w = head.weight.detach().to(dtype).contiguous()
            self.head_b = head.bias.detach().to(dtype).contiguous()
            self.hs = torch.zeros(layers * hh, device=dev, dtype=dtype)
            self.cs = torch.zeros(layers * hh, device=dev, dtype=dtype)
            self.gates = gates = torch.empty(4 * hh, device=dev, dtype=dtype)
            self.tmp = torch.empty(hh, device=dev, dtype=dtype)
            self.logits = torch.empty(head.out_features, device=dev, dtype=dtype)
            self.sig, self.i, self.f, self.o, self.g = (
                gates[: 3 * hh], gates[:hh], gates[hh:2 * hh], gates[2 * hh:3 * hh], gates[3 * hh:]
            )
            self.h = [self.hs[k * hh:(k + 1) * hh] for k in range(layers)]
            self.c = [self.cs[k * hh:(k + 1) * hh] for k in range(layers)]
            self.inputs = [self.h[0]] + [self.hs[(k - 1) * hh:(k + 1) * hh] for k in range(1, layers)]
            self.top = self.h[-1]

    @staticmethod
    def supports(model) -> bool:
        """Whether the model is a plain CharLSTM this stepper reproduces exactly."""
        lstm = getattr(model, "lstm", None)
        return (
            isinstance(lstm, torch.nn.LSTM) and lstm.bias and not lstm.bidirectional
            and getattr(lstm, "proj_size", 0) == 0 and lstm.batch_first
            and isinstance(getattr(model, "head", None), torch.nn.Linear) and model.head.bias is not None
            and hasattr(model, "embedding") and callable(getattr(model, "encode_input", None))
        )

    def state_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (h, c) state as (layers, 1, hidden) views of the stepper's buffers."""
        shape = (self.layers, 1, self.hidden)
        return self.hs.view(shape), self.cs.view(shape)

    def step(self, cid: int) -> torch.Tensor:
        """Advance one character; return the logits buffer for the next one (overwritten each step)."""
        gates, sig, i, f, o, g, tmp = self.gates, self.sig, self.i, self.f, self.o, self.g, self.tmp
        for layer in range(self.layers):
            bias = self.rows[cid] if layer == 0 else self.biases[layer]
            torch.addmv(bias, self.weights[layer], self.inputs[layer], out=gates)
            gates.tanh_()
            sig.mul_(0.5).add_(0.5)
            c = self.c[layer]
            c.mul_(f).addcmul_(i, g)
            torch.tanh(c, out=tmp)
            torch.mul(o, tmp, out=self.h[layer])
        return torch.addmv(self.head_b, self.head_w, self.top, out=self.logits)


_blas_limited = False


def _single_threaded_blas() -> None:
    """Keep NumPy's BLAS to one thread in this process (once).

    A character step's products are a few hundred microseconds of memory-bound work: a second
    BLAS thread saves little on an idle machine and, when training already keeps every core busy
    (generating while the TUI trains), makes each step many times slower (measured with
    scripts/measure_generation.py --compare under load: 1.65 ms a step with two BLAS threads
    against 0.45 ms with one). Only NumPy's BLAS is limited; torch's threads are untouched.
    """
    global _blas_limited
    if not _blas_limited:
        _blas_limited = True
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")


class _CpuStepper(_Stepper):
    """The stepper's equations in NumPy on the same (shared) buffers, for models on the CPU.

    A torch op on a vector of a few hundred floats costs several microseconds of dispatch, NumPy's
    about one, and a character step is a dozen of them per layer: measured side by side
    (scripts/measure_generation.py --compare) the NumPy step takes about two thirds of the time.
    """

    def __init__(self, model) -> None:
        super().__init__(model)
        _single_threaded_blas()
        n = lambda t: t.numpy()  # noqa: E731 - views: the torch buffers and these share memory
        self.np_rows = [n(r) for r in self.rows]
        self.np_weights = [n(t) for t in self.weights]
        self.np_biases = [None] + [n(t) for t in self.biases[1:]]
        self.np_head_w, self.np_head_b = n(self.head_w), n(self.head_b)
        self.np_gates, self.np_tmp, self.np_logits = n(self.gates), n(self.tmp), n(self.logits)
        self.np_h = [n(t) for t in self.h]
        self.np_c = [n(t) for t in self.c]
        self.np_inputs = [n(t) for t in self.inputs]
        self.np_top = n(self.top)
        hh = self.hidden
        g = self.np_gates
        self.np_sig, self.np_i, self.np_f, self.np_o, self.np_g = g[: 3 * hh], g[:hh], g[hh:2 * hh], g[2 * hh:3 * hh], g[3 * hh:]

    @staticmethod
    def supports(model) -> bool:
        """Whether the model is a plain CharLSTM on the CPU."""
        return _Stepper.supports(model) and model.head.weight.device.type == "cpu"

    def step(self, cid: int) -> torch.Tensor:
        """Advance one character; return the logits buffer (a tensor over the NumPy buffer)."""
        self.step_numpy(cid)
        return self.logits

    def step_numpy(self, cid: int) -> np.ndarray:
        """Advance one character; return the logits as the NumPy buffer (overwritten each step)."""
        gates, sig, i, f, o, g, tmp = self.np_gates, self.np_sig, self.np_i, self.np_f, self.np_o, self.np_g, self.np_tmp
        dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
        for layer in range(self.layers):
            dot(self.np_weights[layer], self.np_inputs[layer], out=gates)
            add(gates, self.np_rows[cid] if layer == 0 else self.np_biases[layer], out=gates)
            tanh(gates, out=gates)
            mul(sig, 0.5, out=sig)
            add(sig, 0.5, out=sig)
            c = self.np_c[layer]
            mul(c, f, out=c)
            mul(i, g, out=tmp)
            add(c, tmp, out=c)
            tanh(c, out=tmp)
            mul(o, tmp, out=self.np_h[layer])
        logits = self.np_logits
        dot(self.np_head_w, self.np_top, out=logits)
        add(logits, self.np_head_b, out=logits)
        return logits


class _BatchStep:
    """The stepper's equations for a batch of rows (the beams), with rows reorderable in place."""

    def __init__(self, stepper: _Stepper, batch: int, h: torch.Tensor, c: torch.Tensor) -> None:
        self.s = stepper
        hh, layers = stepper.hidden, stepper.layers
        with torch.no_grad():
            # one row per beam: [h_0 | h_1 | ...], so [h_below | h_own] is a slice as in _Stepper
            self.hs = h[:, 0, :].reshape(1, layers * hh).repeat(batch, 1).contiguous()
            self.cs = c[:, 0, :].reshape(1, layers * hh).repeat(batch, 1).contiguous()
            self.gates = gates = torch.empty(batch, 4 * hh, dtype=self.hs.dtype, device=self.hs.device)
            self.tmp = torch.empty(batch, hh, dtype=self.hs.dtype, device=self.hs.device)
        self.sig, self.i, self.f, self.o, self.g = (
            gates[:, : 3 * hh], gates[:, :hh], gates[:, hh:2 * hh], gates[:, 2 * hh:3 * hh], gates[:, 3 * hh:]
        )
        self.wt = [w.t() for w in stepper.weights]
        self.table = stepper.table

    def step(self, cids: torch.Tensor) -> torch.Tensor:
        """Advance every row by its character; return fresh logits (batch, vocab)."""
        s, hh = self.s, self.s.hidden
        gates, tmp = self.gates, self.tmp
        for layer in range(s.layers):
            h = self.hs[:, layer * hh:(layer + 1) * hh]
            c = self.cs[:, layer * hh:(layer + 1) * hh]
            if layer == 0:
                torch.index_select(self.table, 0, cids, out=gates)
                gates.addmm_(h, self.wt[0])
            else:
                torch.addmm(s.biases[layer], self.hs[:, (layer - 1) * hh:(layer + 1) * hh], self.wt[layer], out=gates)
            gates.tanh_()
            self.sig.mul_(0.5).add_(0.5)
            c.mul_(self.f).addcmul_(self.i, self.g)
            torch.tanh(c, out=tmp)
            h.copy_(self.o * tmp)
        top = self.hs[:, (s.layers - 1) * hh:]
        return torch.addmm(s.head_b, top, s.head_w.t())

    def reorder(self, rows: torch.Tensor) -> None:
        """Make row i a copy of row rows[i] (beam survivors and their children)."""
        self.hs.copy_(self.hs.index_select(0, rows))
        self.cs.copy_(self.cs.index_select(0, rows))

    def row_state(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One row's (h, c) as (layers, 1, hidden)."""
        shape = (self.s.layers, 1, self.s.hidden)
        return self.hs[row].reshape(shape).clone(), self.cs[row].reshape(shape).clone()


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def sample_text(model, vocab, prime: str, length: int, temperature: float,
                generator: torch.Generator | None = None) -> str:
    """Continue ``prime`` by ``length`` characters at ``temperature`` (unknown prime chars dropped)."""
    gen = CharGenerator(model, vocab, SamplingConfig(temperature=temperature, length=length),
                        device=_model_device(model), generator=generator)
    gen.prime(prime, drop_unknown=True)
    return gen.generate(length)


def generation_speed(model, vocab, prime: str, chars: int = 2000,
                     config: SamplingConfig | None = None) -> dict[str, float]:
    """Time to the first character (prime included) and characters per second after the prime."""
    import time

    gen = CharGenerator(model, vocab, config or SamplingConfig(temperature=0.8, seed=0),
                        device=_model_device(model))
    started = time.perf_counter()
    gen.prime(prime, drop_unknown=True)
    primed = time.perf_counter()
    stream = gen.stream(chars)
    n = 1 if next(stream, None) is not None else 0
    first = time.perf_counter()
    n += sum(1 for _ in stream)
    done = time.perf_counter()
    return {"prime_s": primed - started, "first_char_s": first - started,
            "chars_per_s": n / (done - primed) if done > primed else float("inf"), "chars": n}


# The Keras example's "diversity" display: one prime continued at several temperatures.
DIVERSITY = (0.2, 0.5, 1.0, 1.2)


def compare(model, vocab, prime: str, settings_list: Iterable[SamplingConfig | dict | float] = DIVERSITY,
            *, drop_unknown: bool = False, length: int | None = None) -> list[str]:
    """Continue the same prime under several settings (configs, dicts, or bare temperatures)."""
    out = []
    for settings in settings_list:
        if isinstance(settings, SamplingConfig):
            cfg = replace(settings)
        elif isinstance(settings, dict):
            cfg = SamplingConfig.from_dict(settings)
        else:
            cfg = SamplingConfig(temperature=float(settings))
        if length is not None:
            cfg.length = length
        gen = CharGenerator(model, vocab, cfg, device=_model_device(model))
        gen.prime(prime, drop_unknown=drop_unknown)
        out.append(gen.generate())
    return out
