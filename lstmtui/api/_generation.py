"""load() and Model: generate text from a saved profile, as a whole string or one character at a time."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lstmtui.api._summary import ProfileSummary, summary_of
from lstmtui.core.errors import ConfigError, VocabularyError

if TYPE_CHECKING:
    import torch

    from lstmtui.core.corpus import CleaningOptions, Vocab
    from lstmtui.core.model import CharLSTM
    from lstmtui.core.profiles import ProfileMeta
    from lstmtui.core.sampling import CharGenerator, SamplingConfig

WHICH = ("best", "latest")


def load(
    name: str, *, home: str | os.PathLike[str] | None = None, which: str = "best", device: str = "cpu", threads: int = 0
) -> Model:
    """Load a saved profile's model (its ``best`` or ``latest`` weights) for generation."""
    from lstmtui.core.checkpoint import load_model
    from lstmtui.core.device import pick_device, set_threads
    from lstmtui.core.profiles import ProfileStore, validate_name

    if not isinstance(name, str):
        raise ConfigError(f"profile name must be text, not {name!r}", "profile")
    name = validate_name(name)
    if which not in WHICH:
        raise ConfigError(f"which must be best or latest, not {which!r}", "which")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be a whole number, 0 or more, not {threads!r}", "threads")
    torch_device = pick_device(device)
    set_threads(threads)
    model, vocab, meta = load_model(ProfileStore(home), name, which=which, device=torch_device)
    return Model(_Loaded(name, model, vocab, meta, torch_device))


class _Loaded:
    """What load() read: the model in eval mode, its vocabulary, the profile's metadata, the device."""

    def __init__(self, name: str, model: CharLSTM, vocab: Vocab, meta: ProfileMeta, device: torch.device) -> None:
        self.name, self.model, self.vocab, self.meta, self.device = name, model, vocab, meta, device


class Model:
    """A trained profile's model, made by ``lstmtui.load()``; unset sampling options take the profile's defaults."""

    def __init__(self, loaded: _Loaded) -> None:
        if not isinstance(loaded, _Loaded):
            raise TypeError("a Model is made by lstmtui.load(name)")
        self._loaded = loaded

    def __repr__(self) -> str:
        return f"<lstmtui.Model {self.name!r}>"

    @property
    def name(self) -> str:
        """The profile's name."""
        return self._loaded.name

    @property
    def vocab(self) -> tuple[str, ...]:
        """The characters the model knows, in id order."""
        return tuple(self._loaded.vocab.chars)

    @property
    def info(self) -> ProfileSummary:
        """The profile's facts: size, steps trained, best validation loss and bits per character."""
        return summary_of(self.name, self._loaded.meta)

    def generate(
        self,
        prime: str = "",
        *,
        length: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        beam: int | None = None,
        repetition_penalty: float | None = None,
        repetition_window: int | None = None,
        no_repeat_ngram: int | None = None,
        stop: str | Sequence[str] = (),
        stop_chars: str = "",
        seed: int | None = None,
        drop_unknown: bool = False,
    ) -> str:
        """Continue ``prime`` and return the generated text (the prime not included)."""
        return "".join(
            self.stream(
                prime,
                length=length,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                beam=beam,
                repetition_penalty=repetition_penalty,
                repetition_window=repetition_window,
                no_repeat_ngram=no_repeat_ngram,
                stop=stop,
                stop_chars=stop_chars,
                seed=seed,
                drop_unknown=drop_unknown,
            )
        )

    def stream(
        self,
        prime: str = "",
        *,
        length: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        beam: int | None = None,
        repetition_penalty: float | None = None,
        repetition_window: int | None = None,
        no_repeat_ngram: int | None = None,
        stop: str | Sequence[str] = (),
        stop_chars: str = "",
        seed: int | None = None,
        drop_unknown: bool = False,
    ) -> Iterator[str]:
        """Continue ``prime``, yielding one character at a time as it is generated."""
        options = {
            "length": length,
            "temperature": temperature,
            "top_k": top_k,
            "top_p": top_p,
            "beam": beam,
            "repetition_penalty": repetition_penalty,
            "repetition_window": repetition_window,
            "no_repeat_ngram": no_repeat_ngram,
        }
        config = _sampling_config(self._loaded.meta, options, stop, stop_chars, seed)
        generator = self._primed(prime, config, drop_unknown)
        # The settings and the prime are checked here, at the call; the characters come as they are read.
        return _characters(generator, config.length)

    def _primed(self, prime: str, config: SamplingConfig, drop_unknown: bool) -> CharGenerator:
        """A generator for ``config`` that has run the prime (cleaned as the profile's corpus was)."""
        from lstmtui.core.corpus import clean_text
        from lstmtui.core.sampling import CharGenerator

        if not isinstance(prime, str):
            raise ConfigError(f"the prime must be text, not {prime!r}", "prime")
        if not isinstance(drop_unknown, bool):
            raise ConfigError(f"drop_unknown must be True or False, not {drop_unknown!r}", "drop_unknown")
        loaded = self._loaded
        text = clean_text(prime, _prime_cleaning(loaded.meta)) if prime else ""
        generator = CharGenerator(loaded.model, loaded.vocab, config, device=loaded.device)
        try:
            generator.prime(text, drop_unknown=drop_unknown)
        except VocabularyError as exc:
            raise VocabularyError(str(exc), "drop_unknown") from None
        return generator


def _characters(generator: CharGenerator, length: int) -> Iterator[str]:
    yield from generator.stream(length)


def _sampling_config(
    meta: ProfileMeta, options: dict[str, Any], stop: str | Sequence[str], stop_chars: str, seed: int | None
) -> SamplingConfig:
    """The profile's sampling defaults overridden by the options given; validated."""
    from lstmtui.core.sampling import SamplingConfig

    values = asdict(meta.sampling)
    values.update({key: value for key, value in options.items() if value is not None})
    length = values["length"]
    if isinstance(length, int) and not isinstance(length, bool) and length < 1:
        raise ConfigError(f"length must be at least 1, not {length}", "length")
    values.update(stop=stop, stop_chars=stop_chars, seed=seed)
    return SamplingConfig(**values).validate()


def _prime_cleaning(meta: ProfileMeta) -> CleaningOptions:
    """The cleaning the profile's corpus had, which the prime gets too (defaults when unrecorded)."""
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.errors import LstmtuiError

    record = meta.corpus.cleaning if meta.corpus is not None else None
    try:
        return CleaningOptions.from_dict(record.options() if record is not None else {})
    except (LstmtuiError, TypeError):
        return CleaningOptions()
