"""Shared fixtures: every test gets its own LSTMTUI_HOME and cache, so nothing touches the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHAKESPEARE = REPO.parent / "shared" / "corpora" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def lstmtui_home(tmp_path_factory, monkeypatch) -> Path:
    """A private profile home and cache directory for each test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LSTMTUI_HOME", str(home))
    monkeypatch.setenv("LSTMTUI_CACHE", str(home / "cache"))
    monkeypatch.setenv("LSTMTUI_RUNS", str(tmp_path_factory.mktemp("runs")))  # run sockets and records
    monkeypatch.delenv("LSTMTUI_UNITS", raising=False)  # losses in the default unit (bits) unless a test says
    return home


@pytest.fixture
def shakespeare() -> Path:
    """The shared benchmark corpus; the test is skipped when it is absent."""
    if not SHAKESPEARE.is_file():
        pytest.skip("../shared/corpora/tinyshakespeare.txt is absent")
    return SHAKESPEARE
