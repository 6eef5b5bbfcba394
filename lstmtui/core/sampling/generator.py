"""CharGenerator: prime a model with text, then stream characters one at a time.

The prime (the text the model continues) runs through the network once, in as few forward calls
as memory allows; after that each character costs one single-step forward, stepping the kept
(h, c) state, so generation is O(1) per character and can stop and resume at any character.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from lstmtui.core.corpus import UNKNOWN_CHAR
from lstmtui.core.errors import VocabularyError
from lstmtui.core.sampling.beam import BeamSearch, State, beam_ids
from lstmtui.core.sampling.config import MAX_LENGTH, SamplingConfig, check_whole
from lstmtui.core.sampling.filters import filter_logits, inverse_cdf_index, sorted_head
from lstmtui.core.sampling.stepper import CpuStepper, Stepper

# Feeding a long prime in one call needs the LSTM's gate buffer for every step (time x 4*hidden
# floats per layer); chunks this long keep that to tens of MB for big models.
PRIME_CHUNK = 4096
# Uniform random numbers are drawn from the torch.Generator in blocks: one draw per character
# would cost more than the sampling itself.
_UNIFORM_BLOCK = 256


def model_device(model) -> torch.device:
    """The device of the model's parameters (CPU for a model without any)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def chunks(n: int, largest: int) -> Iterator[tuple[int, int]]:
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


def _missing(vocab, text: str) -> list[str]:
    if hasattr(vocab, "missing"):
        return list(vocab.missing(text))
    known = set(vocab.chars)
    return sorted({ch for ch in text if ch not in known})


def _show_chars(chars: Sequence[str], limit: int = 12) -> str:
    shown = [repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" for ch in chars[:limit]]
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return ", ".join(shown) + more


class StopWatch:
    """Watches emitted characters for stop strings and stop characters."""

    def __init__(self, config: SamplingConfig) -> None:
        self.stops = tuple(config.stop)
        self.stop_chars = set(config.stop_chars)
        self.tail = ""
        self.keep = max((len(s) for s in self.stops), default=0)
        self.active = bool(self.stops or self.stop_chars)

    def hit(self, ch: str) -> bool:
        """Whether emitting ``ch`` completes a stop."""
        if ch in self.stop_chars:
            return True
        if not self.stops:
            return False
        self.tail = (self.tail + ch)[-self.keep :]
        return any(self.tail.endswith(s) for s in self.stops)


def _make_stepper(model) -> Stepper | None:
    """The fastest stepper the model allows: NumPy on the CPU, torch elsewhere, else none."""
    if CpuStepper.supports(model):
        return CpuStepper(model)
    return Stepper(model) if Stepper.supports(model) else None


class CharGenerator:
    """Generates characters one at a time from a model snapshot, keeping the LSTM state.

    The model is used as given when it is in eval mode on ``device`` (the caller's snapshot);
    otherwise it is copied first, so generation never changes the caller's model. Per-character
    steps use folded copies of the weights taken at construction, so training the model on in
    another thread does not disturb a stream once it has started (the prime and beam search do
    use the model itself: pass a snapshot). Not thread-safe: one generator per thread.
    """

    def __init__(
        self,
        model,
        vocab,
        config: SamplingConfig | None = None,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
    ) -> None:
        self.config = cfg = (config or SamplingConfig()).validate()
        self.device = torch.device(device)
        if model.training or model_device(model) != self.device:
            # never switch the caller's model to eval mode or move it: work on a copy
            model = copy.deepcopy(model).eval().to(self.device)
        self.model = model
        self.vocab = vocab
        self.chars = list(vocab.chars)
        self._index = {ch: i for i, ch in enumerate(self.chars)}
        self.vocab_size = len(self.chars)
        self.generator = generator if generator is not None else _seeded(cfg.seed)
        self._uniforms = np.empty(0)
        self._u_pos = 0
        self._gumbels = np.empty((0, 0), dtype=np.float32)
        self._g_pos = 0
        self.state: State | None = None
        self._logits: torch.Tensor | None = None  # logits for the next character
        self._pending: int | None = None  # chosen but not yet fed to the network
        self._x = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        self._stepper = _make_stepper(self.model)
        self._last_only = callable(getattr(self.model, "last_logits", None))
        self._guarded = cfg.repetition_penalty != 1.0 or cfg.no_repeat_ngram > 0
        self._plain = not self._guarded and cfg.top_k == 0 and cfg.top_p >= 1.0
        self.history: list[int] = []  # every id fed or emitted, prime included
        self.emitted = 0
        self._ngrams: dict[tuple[int, ...], set[int]] = {}
        self._last_beam_logprob = 0.0

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
                    f"{_show_chars(missing)} (dropping unknown characters leaves them out)"
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
        for start, stop in chunks(len(ids), PRIME_CHUNK):
            chunk = torch.tensor([ids[start:stop]], dtype=torch.long, device=self.device)
            if self._last_only:
                last, state = model.last_logits(chunk, self.state)
            else:
                last, state = model(chunk, self.state)
            self._set_state(state)
        self._logits = last[0, -1].float().cpu()
        if record:
            self.history.extend(ids)

    def _set_state(self, state: State | None) -> None:
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
            return {
                "state": (self.state[0].clone(), self.state[1].clone()),
                "logits": self._logits.clone(),
                "history": list(self.history),
            }

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
        z = logits.astype(np.float64, copy=True)
        return filter_logits(z, self.config, self.history, self.emitted, self._ngrams)

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
            order, p = sorted_head(x, cfg.temperature, cfg.top_k, cfg.top_p)
            return int(order[self._draw(p)])
        z = self.filtered_logits(x)
        if cfg.temperature == 0:
            return int(np.argmax(z))
        return self._draw(np.exp(z - z.max()))

    def _draw(self, p: np.ndarray) -> int:
        """Index drawn in proportion to the non-negative weights ``p`` (inverse CDF)."""
        return inverse_cdf_index(p, self._uniform())

    def _emit(self, cid: int) -> None:
        history = self.history
        history.append(cid)
        self.emitted += 1
        n = self.config.no_repeat_ngram
        if n and len(history) >= n:
            self._ngrams.setdefault(tuple(history[-n:-1]), set()).add(cid)

    # -- streaming -------------------------------------------------------------------------
    def stream(self, length: int | None = None) -> Iterator[str]:
        """Yield up to ``length`` characters (default: the configured length), one at a time.

        Stops early after a stop string or stop character. Closing the iterator at any point
        leaves the state right after the last character yielded, so a later call continues.
        Beam search (beam > 0) is not streaming by nature: characters are yielded as soon as
        every beam agrees on them, and the rest once the best beam is known.
        """
        length = self.config.length if length is None else length
        # each branch is its own generator (nothing runs before the first character is asked
        # for), returned rather than delegated to so that no frame sits between the caller and it
        if self.config.beam > 0:
            return self._beam_stream(length)
        fast = isinstance(self._stepper, CpuStepper) and not self.config.stop and not self.config.stop_chars
        if fast and not self.config.no_repeat_ngram:
            return self._plain_stream(length)
        return self._watched_stream(length)

    def generate(self, length: int | None = None) -> str:
        """Generate and return a whole sample (see stream())."""
        return "".join(self.stream(length))

    def _start(self, length: int) -> None:
        check_whole("length", length, 0, MAX_LENGTH)
        if length and self._logits is None:
            self.prime("")

    def _plain_stream(self, length: int) -> Iterator[str]:
        """The common case with the per-character work inlined: one NumPy step and one choice."""
        self._start(length)
        stepper = self._stepper
        chars, choose, step, history = self.chars, self.choose, stepper.step_numpy, self.history
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

    def _watched_stream(self, length: int) -> Iterator[str]:
        """One character at a time with stops and repetition guards watched."""
        stop = StopWatch(self.config)
        self._start(length)
        chars = self.chars
        stepper = self._stepper if isinstance(self._stepper, CpuStepper) else None
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

    # -- beam search -----------------------------------------------------------------------
    def _beam_stream(self, length: int) -> Iterator[str]:
        check_whole("length", length, 0, MAX_LENGTH)
        stop = StopWatch(self.config)
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
                self._rewind(start[0], start[1], emitted)

    def _rewind(self, state: State, logits: torch.Tensor, emitted: list[int]) -> None:
        """Go back to ``state`` and feed ``emitted`` again (without recording it twice)."""
        with torch.inference_mode():
            self._set_state(state)
        self._logits = logits
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
        self._last_beam_logprob = 0.0
        if length == 0:
            return
        with torch.inference_mode():
            self._flush_pending()
            search = BeamSearch(
                self.model, self._stepper, self.device, self.state, self._logits, length, width or self.config.beam or 1
            )
        yield from beam_ids(search, length, self._beam_done)

    def _beam_done(self, state: State, logits: torch.Tensor, logprob: float) -> None:
        self._last_beam_logprob = logprob
        self._set_state(state)
        self._logits = logits
        self._pending = None


def _seeded(seed: int | None) -> torch.Generator:
    """A torch.Generator seeded with ``seed``, or from the OS's randomness when it is None."""
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
    return generator
