"""Generation off the UI thread: the settings the keys change, where the weights come from, the worker body.

The worker streams characters from a CharGenerator and posts them batched, at most
``TEXT_UPDATES_PER_S`` messages a second. Stopping keeps the generator in a GenerationState, so the
next run continues the same text; new settings rebuild it primed with the text so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import get_current_worker

from lstmtui.tui.messages import TEXT_UPDATES_PER_S, GeneratedText, GenerationEnded

if TYPE_CHECKING:
    from lstmtui.core.corpus import Vocab
    from lstmtui.core.memorisation import MemorisationIndex
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.core.runhost import RunHost
    from lstmtui.core.sampling import CharGenerator, SamplingConfig

Post = Callable[[Message], object]

METHODS = ("temperature", "top-k", "top-p", "greedy", "beam")
TOP_K_STEPS = (1, 2, 3, 5, 10, 20, 40, 80)
TEXT_INTERVAL_S = 1 / TEXT_UPDATES_PER_S


@dataclass(frozen=True)
class GenSettings:
    """What the keys change: method, temperature, top-k, top-p, beam width and length."""

    method: str = "temperature"
    temperature: float = 0.8
    top_k: int = 10
    top_p: float = 0.9
    beam: int = 4
    length: int = 500

    def sampling_config(self) -> SamplingConfig:
        """The SamplingConfig these settings select (imported here: it loads torch)."""
        from lstmtui.core.sampling import SamplingConfig

        t = round(self.temperature, 2)
        if self.method == "greedy":
            return SamplingConfig(temperature=0.0, length=self.length)
        if self.method == "beam":
            return SamplingConfig(beam=self.beam, length=self.length)
        return SamplingConfig(
            temperature=t,
            top_k=self.top_k if self.method == "top-k" else 0,
            top_p=self.top_p if self.method == "top-p" else 1.0,
            length=self.length,
        )

    def describe(self) -> str:
        """One short line naming the method and its numbers."""
        if self.method == "greedy":
            head = "greedy"
        elif self.method == "beam":
            head = f"beam {self.beam}"
        else:
            head = f"T {self.temperature:.1f}"
            if self.method == "top-k":
                head += f" · top-k {self.top_k}"
            elif self.method == "top-p":
                head += f" · top-p {self.top_p:.2f}"
        return f"{head} · len {self.length}"

    def same_sampling(self, other: GenSettings) -> bool:
        """Whether ``other`` samples the same way (the length alone needs no new generator)."""
        return replace(self, length=0) == replace(other, length=0)


@dataclass(frozen=True)
class WeightsSource:
    """Where generation takes its weights: the run host's latest, else the profile's saved ones."""

    host: RunHost | None = None
    store: ProfileStore | None = None
    profile: str | None = None

    def load(self) -> tuple[CharLSTM, Vocab] | None:
        """The model and vocabulary to generate from, or None when there is none yet (generation thread)."""
        if self.host is not None:
            weights = self.host.weights()
            if weights is not None:
                return weights
        if self.store is not None and self.profile and self.store.exists(self.profile):
            from lstmtui.core.checkpoint import load_model

            model, vocab, _ = load_model(self.store, self.profile, "latest")
            return model, vocab
        return None

    def memorisation_index(self) -> MemorisationIndex | None:
        """The corpus index behind the copied share, while a run has it."""
        return self.host.memorisation_index() if self.host is not None else None


class GenerationState:
    """What the generation worker keeps between runs so a stopped stream can continue where it stopped."""

    def __init__(self) -> None:
        self.generator: CharGenerator | None = None
        self.settings: GenSettings | None = None
        self.context = ""  # seed + everything generated, to rebuild the state under new settings
        self.seed = ""


@dataclass(frozen=True)
class GenerationJob:
    """One run of the generation worker. ``seed`` None continues the last text."""

    run: int
    seed: str | None
    settings: GenSettings
    source: WeightsSource
    state: GenerationState
    stop: threading.Event


def generate(post: Post, job: GenerationJob) -> None:
    """Body of the generation thread worker: stream characters, batched, until done, stopped or cancelled."""
    worker = get_current_worker()
    try:
        gen = _generator(post, job)
        if gen is None:
            return
        reason = _stream(post, job, gen, lambda: worker.is_cancelled or job.stop.is_set())
        post(GenerationEnded(job.run, reason, memorised=_copied_share(job), can_continue=True))
    except Exception as exc:  # a generation failure is shown, the app goes on
        post(
            GenerationEnded(
                job.run, "failed", str(exc) or type(exc).__name__, can_continue=job.state.generator is not None
            )
        )
    finally:
        from lstmtui.core.heap import release_free_heap

        release_free_heap()


def _generator(post: Post, job: GenerationJob) -> CharGenerator | None:
    """The generator for this job: fresh from the seed, kept, or rebuilt for new settings."""
    from lstmtui.core.sampling import CharGenerator

    state, config = job.state, job.settings.sampling_config()
    if job.seed is not None:
        loaded = job.source.load()
        if loaded is None:
            post(GenerationEnded(job.run, "failed", "no model yet: wait for training to start"))
            return None
        gen = CharGenerator(loaded[0], loaded[1], config)
        gen.prime(job.seed, drop_unknown=True)
        state.generator, state.settings, state.context, state.seed = gen, job.settings, job.seed, job.seed
    elif state.generator is None:
        post(GenerationEnded(job.run, "failed", "nothing to continue: type a seed and press Enter"))
        return None
    elif state.settings is None or not state.settings.same_sampling(job.settings):
        # new settings: a fresh generator primed with everything so far continues the same text
        old = state.generator
        gen = CharGenerator(old.model, old.vocab, config)
        gen.prime(state.context, drop_unknown=True)
        state.generator, state.settings = gen, job.settings
    return state.generator


def _stream(post: Post, job: GenerationJob, gen: CharGenerator, stopped: Callable[[], bool]) -> str:
    """Post the characters in batches; 'stopped' or 'done'."""
    buf: list[str] = []
    last = time.monotonic()
    reason = "done"
    for ch in gen.stream(job.settings.length):
        buf.append(ch)
        if stopped():
            reason = "stopped"
            break
        now = time.monotonic()
        if now - last >= TEXT_INTERVAL_S:
            _post_text(post, job, buf)
            last = now
    if buf:
        _post_text(post, job, buf)
    return reason


def _post_text(post: Post, job: GenerationJob, buf: list[str]) -> None:
    text = "".join(buf)
    job.state.context += text
    post(GeneratedText(job.run, text))
    buf.clear()


def _copied_share(job: GenerationJob) -> float | None:
    """Share of everything generated since the seed that is copied verbatim from the corpus."""
    index = job.source.memorisation_index()
    generated = job.state.context[len(job.state.seed) :]
    return index.share(generated, job.state.seed) if index is not None and generated else None
