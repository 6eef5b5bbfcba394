"""Start the app from parsed command-line options: frame rate, profile checks, signal handlers, detaching.

``launch`` trains (or opens a profile) in this process; once the app closes with the run detached
(``d`` or a hang-up) it trains on until the run ends (lstmtui.tui.background). ``attach`` opens the
same app on a run of another process. ``running_run`` finds the run that trains a profile, for
``lstmtui --profile NAME`` to attach to it instead of refusing.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lstmtui.core.config import TrainConfig
    from lstmtui.core.corpus import CleaningOptions
    from lstmtui.service import RunRecord
    from lstmtui.tui.app import LstmtuiApp

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


def running_run(args: argparse.Namespace) -> RunRecord | None:
    """The live run training ``--profile`` (with no corpus given), if there is one."""
    if not getattr(args, "profile", None) or getattr(args, "corpus", None):
        return None
    from lstmtui.core.profiles import ProfileStore
    from lstmtui.service import ServiceError, find_run

    try:
        return find_run(profile=args.profile, home=ProfileStore(args.home).home)
    except ServiceError:
        return None


def launch(args: argparse.Namespace, config: TrainConfig, cleaning: CleaningOptions, overrides: dict) -> int:
    """Run the app on the parsed options and the settings built from them; return the exit status."""
    set_fps(getattr(args, "fps", None))
    options = app_options(args, config, cleaning, overrides)
    from lstmtui.tui.app import LstmtuiApp

    return _run(LstmtuiApp(options), getattr(args, "on_hangup", "detach"))


def app_options(args: argparse.Namespace, config: TrainConfig, cleaning: CleaningOptions, overrides: dict):
    """What the app starts with: a new run (named by ``--profile`` if given), or a saved profile to open."""
    from lstmtui.core.corpus import default_corpus_path
    from lstmtui.core.errors import ConfigError, ProfileError
    from lstmtui.core.profiles import ProfileStore, validate_name
    from lstmtui.tui.run_control import AppOptions

    corpus = [str(p) for p in (args.corpus or [])]
    for path in corpus:
        if not os.path.exists(path):
            raise ConfigError(f"corpus {path} does not exist")
    profile, new_profile = args.profile, None
    start = True
    if profile:
        validate_name(profile)
        if not ProfileStore(args.home).exists(profile):
            if not corpus:
                raise ProfileError(
                    f"no profile named {profile} (see `lstmtui profiles list`; give a corpus to create it)"
                )
            profile, new_profile = None, profile  # as `lstmtui train CORPUS --profile NEW`: a new profile
        # an opened profile waits for a key to train further, unless a corpus to train on was given
        start = bool(corpus)
    if not profile and not corpus:
        corpus = [str(default_corpus_path())]
    return AppOptions(
        corpus_paths=corpus,
        config=config,
        cleaning=cleaning if (corpus and not profile) else None,
        profile=profile,
        home=args.home,
        overrides=overrides,
        start_training=start,
        new_profile=new_profile,
    )


def attach(record: RunRecord, args: argparse.Namespace) -> int:
    """Open the app on a run of another process (`lstmtui attach`, `lstmtui --profile NAME` while it trains)."""
    set_fps(getattr(args, "fps", None))
    from pathlib import Path

    from lstmtui.tui.app import AppOptions, LstmtuiApp

    home = Path(record.home) if record.home else getattr(args, "home", None)
    app = LstmtuiApp(AppOptions(home=home, start_training=False, attach=record))
    return _run(app, "stop")


def _run(app: LstmtuiApp, on_hangup: str) -> int:
    from lstmtui.tui import background, signals

    state = signals.install(app, on_hangup)
    app.run()
    if app.detached and not app.attached:
        return background.train_on(app.run_link, app.profile_name, signals.run_log(app), app.hung_up)
    if app.attached:
        _say_left(app)
    return state.status if state.status is not None else int(app.return_code or 0)


def _say_left(app: LstmtuiApp) -> None:
    """After an attached app closed on a run that goes on: say how to come back."""
    host = app.run_link.host
    if host is None or host.result is not None or getattr(host, "state", "") not in ("preparing", "training", "paused"):
        return
    name = getattr(host, "name", "") or app.profile_name or "the run"
    try:
        print(f"lstmtui: left run {name}; it trains on (lstmtui attach {name} to come back)")
    except OSError:
        pass  # the terminal may be gone
