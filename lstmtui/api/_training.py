"""train() and Run: train a profile from Python, with a callback per event or an event iterator.

A Run's session trains in the RunHost's own thread; the caller reads its events from a subscription,
so callbacks and loops run on the caller's thread. Leaving ``with Run(...)`` while the run goes on
stops it at the next step boundary and waits for its final save.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from lstmtui.api._summary import Home, TrainResult, result_of
from lstmtui.core.errors import ConfigError, LstmtuiError
from lstmtui.core.events import Event, FailedEvent, FinishedEvent

if TYPE_CHECKING:
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.core.runhost import RunHost, Subscription
    from lstmtui.core.training import TrainingSession

Corpus = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None

# Settings that say how the corpus is read rather than how the model trains.
CLEANING_SETTINGS = ("encoding", "nfc", "lowercase", "min_char_count")
POLL_S = 0.2  # how often a waiting event loop wakes, so Ctrl+C reaches the caller promptly


class TrainingError(LstmtuiError):
    """A training run failed or diverged; ``field`` names the setting to change, when one is to blame."""


class Run:
    """One training run in a background thread: iterate its events, steer it, wait for its result."""

    def __init__(
        self,
        corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        profile: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> None:
        self._session, self._profile = _session(corpus, profile, home, settings)
        self._host: RunHost | None = None
        self._subscription: Subscription | None = None
        self._final_seen = False

    def __repr__(self) -> str:
        return f"<lstmtui.Run {self._profile!r}>"

    @property
    def profile(self) -> str:
        """The name of the profile this run trains and saves."""
        return self._profile

    def start(self) -> Run:
        """Start training in the background (once; later calls do nothing) and return the run."""
        from lstmtui.core.runhost import RunHost

        if self._host is None:
            host = RunHost(self._session)
            self._subscription = host.subscribe()  # before start: no event is missed
            self._host = host
            host.start()
        return self

    def __enter__(self) -> Run:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the run at the next step boundary if it is still going, and wait until it has saved."""
        host = self._host
        if host is not None and host.alive:
            host.stop()
            host.join()

    def events(self) -> Iterator[Event]:
        """Every event of the run in order, the last one its FinishedEvent or FailedEvent (starts the run)."""
        self.start()
        host, subscription = self._host, self._subscription
        assert host is not None and subscription is not None
        while True:
            event = subscription.get(timeout=POLL_S)
            if event is not None:
                self._final_seen = isinstance(event, (FinishedEvent, FailedEvent))
                yield event
            elif subscription.closed:
                if not subscription.dropped:
                    break
                # A reader that fell more than a queue behind misses some events and goes on from now.
                subscription = self._subscription = host.subscribe()
        result = host.result
        if result is not None and not self._final_seen:
            self._final_seen = True
            yield result

    def stop(self) -> None:
        """Stop at the next step boundary, saving what was trained."""
        self._running().stop()

    def pause(self) -> None:
        """Pause after the current step."""
        self._running().pause()

    def resume(self) -> None:
        """Resume a paused run."""
        self._running().resume()

    def save(self) -> None:
        """Save the profile after the current step."""
        self._running().save()

    def sample(self) -> None:
        """Emit a SampleEvent from the current weights after the current step."""
        self._running().sample()

    def wait(self) -> TrainResult:
        """Wait for the run to end (starting it if need be); its result, or TrainingError if it failed."""
        host = self.start()._running()
        while not host.join(timeout=POLL_S):
            pass
        return _result(self._profile, host.result, self._unsaved_work(), self._session.progress.epoch)

    def _running(self) -> RunHost:
        if self._host is None:
            raise TrainingError("the run has not started; call start() or use it in a with statement")
        return self._host

    def _unsaved_work(self) -> str:
        """Why the profile does not hold the last trained step (its final save failed), or ''."""
        session = self._session
        if not session.ready or session.store is None:
            return ""
        try:
            saved = session.store.load_meta(self._profile).progress.step
        except LstmtuiError:
            saved = None
        if saved == session.step:
            return ""
        held = f"it holds step {saved}" if saved is not None else "nothing was saved"
        return f"the final save of profile {self._profile} failed: {held}, training reached step {session.step}"


def train(
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    profile: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    on_event: Callable[[Event], object] | None = None,
    **settings: Any,
) -> TrainResult:
    """Train (or continue) a profile until it finishes; ``on_event`` gets every event on this thread."""
    with Run(corpus, profile, home=home, **settings) as run:
        for event in run.events():
            if on_event is not None:
                on_event(event)
    return run.wait()


def _result(profile: str, result: FinishedEvent | FailedEvent | None, unsaved: str, epochs_done: int) -> TrainResult:
    """The TrainResult of an ended run; TrainingError when it failed, diverged or lost its last save."""
    if isinstance(result, FailedEvent):
        raise TrainingError(result.message, result.setting)
    if result is None:
        raise TrainingError(f"training profile {profile} ended without a result")
    if result.reason == "diverged":
        raise TrainingError(result.message or f"training profile {profile} diverged")
    if unsaved:
        raise TrainingError(unsaved)
    return result_of(profile, result, epochs_done)


def _session(corpus: Corpus, profile: str | None, home: Home, settings: dict[str, Any]) -> tuple[TrainingSession, str]:
    """A TrainingSession (not started) for the corpus, profile and settings; the profile's name."""
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.corpus import default_corpus_path
    from lstmtui.core.profiles import ProfileStore, validate_name
    from lstmtui.core.training import TrainingSession

    typed, cleaning, extend_vocab = _split_settings(settings)
    config = TrainConfig(**typed).validate()
    store = ProfileStore(home)
    paths = _corpus_paths(corpus)
    if profile is not None:
        if not isinstance(profile, str):
            raise ConfigError(f"profile name must be text, not {profile!r}", "profile")
        name = validate_name(profile)
    else:
        if not paths:
            paths = [str(default_corpus_path())]
        stem = "stdin" if paths[0] == "-" else Path(paths[0]).stem or Path(paths[0]).name
        name = store.unique_name(stem)
    session = TrainingSession(
        paths, config, profile=name, store=store, cleaning=cleaning, extend_vocab=extend_vocab, overrides=typed
    )
    return session, name


def _corpus_paths(corpus: Corpus) -> list[str]:
    """The corpus argument as a list of path strings."""
    if corpus is None:
        return []
    items = [corpus] if isinstance(corpus, (str, os.PathLike)) else corpus
    try:
        paths = list(items)
    except TypeError:
        raise ConfigError(f"the corpus must be a path or a list of paths, not {corpus!r}", "corpus") from None
    if not all(isinstance(p, (str, os.PathLike)) for p in paths):
        raise ConfigError(f"the corpus must be a path or a list of paths, not {corpus!r}", "corpus")
    return [os.fspath(p) for p in paths]


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], CleaningOptions | None, bool]:
    """The TrainConfig fields, the cleaning options (None: the profile's own or the defaults), extend_vocab."""
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.corpus import CleaningOptions

    known = [f.name for f in fields(TrainConfig)]
    every = (*known, *CLEANING_SETTINGS, "extend_vocab")
    for key in settings:
        if key not in every:
            near = difflib.get_close_matches(key, every, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(f"{key} is not a training setting{hint}", key)
    for key in ("nfc", "lowercase", "extend_vocab"):
        if key in settings and not isinstance(settings[key], bool):
            raise ConfigError(f"{key} must be True or False, not {settings[key]!r}", key)
    cleaning_values = {k: settings[k] for k in CLEANING_SETTINGS if k in settings}
    if "encoding" in cleaning_values and not isinstance(cleaning_values["encoding"], str):
        raise ConfigError(f"encoding must be text, not {cleaning_values['encoding']!r}", "encoding")
    cleaning = CleaningOptions(**cleaning_values) if cleaning_values else None
    typed = {k: v for k, v in settings.items() if k in known}
    return typed, cleaning, bool(settings.get("extend_vocab", False))
