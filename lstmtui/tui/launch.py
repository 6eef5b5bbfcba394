"""Start the app from parsed command-line options: frame rate, profile checks, signal handlers."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.corpus import CleaningOptions

DEFAULT_FPS = 30  # plenty for the update rates in tui/messages.py; lower it for slow links


def set_fps(fps: float | None) -> None:
    """Set TEXTUAL_FPS before textual is imported: --fps, else $LSTMTUI_FPS, else a default of 30."""
    if fps is None:
        env = os.environ.get("LSTMTUI_FPS")
        if env:
            fps = float(env)
        elif "TEXTUAL_FPS" in os.environ:
            return
        else:
            fps = DEFAULT_FPS
    os.environ["TEXTUAL_FPS"] = str(max(1, int(fps)))


def launch(args: argparse.Namespace, config: TrainConfig, cleaning: CleaningOptions, overrides: dict) -> int:
    """Run the app on the parsed options and the settings built from them; return the exit status."""
    set_fps(getattr(args, "fps", None))
    from lstmtui.core.corpus import default_corpus_path
    from lstmtui.core.errors import ConfigError, ProfileError
    from lstmtui.core.profiles import ProfileStore, validate_name

    home = args.home
    corpus = [str(p) for p in (args.corpus or [])]
    for path in corpus:
        if not os.path.exists(path):
            raise ConfigError(f"corpus {path} does not exist")
    profile = args.profile
    start = True
    if profile:
        validate_name(profile)
        if not ProfileStore(home).exists(profile):
            raise ProfileError(f"no profile named {profile} (see `lstmtui profiles list`)")
        # an opened profile waits for a key to train further, unless a corpus to train on was given
        start = bool(corpus)
    if not profile and not corpus:
        corpus = [str(default_corpus_path())]
    cleaning = cleaning if (corpus and not profile) else None

    from lstmtui.tui.app import AppOptions, LstmtuiApp

    app = LstmtuiApp(
        AppOptions(
            corpus_paths=corpus,
            config=config,
            cleaning=cleaning,
            profile=profile,
            home=home,
            overrides=overrides,
            start_training=start,
        )
    )
    from lstmtui.tui import signals

    signals.install(app)
    app.run()
    return int(app.return_code or 0)
