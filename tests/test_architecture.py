"""Standing rules of the code base: layers import only downwards, the engine never loads textual, nothing unpickles."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "lstmtui"


# package -> what it never imports, not even inside a function (pyproject.toml's import-linter contracts)
FORBIDDEN = {
    "core": ("textual", "lstmtui.tui", "lstmtui.commands", "lstmtui.cli", "lstmtui.bench", "lstmtui.service"),
    "tui": ("lstmtui.commands", "lstmtui.cli", "lstmtui.bench"),
    "service": ("textual", "lstmtui.tui", "lstmtui.commands", "lstmtui.cli", "lstmtui.bench"),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards_in_source(package):
    names = "|".join(re.escape(name) for name in FORBIDDEN[package])
    pattern = re.compile(rf"^\s*(import|from)\s+({names})\b", re.MULTILINE)
    offenders = [str(path) for path in (ROOT / package).rglob("*.py") if pattern.search(path.read_text())]
    assert offenders == []


def test_importing_the_whole_engine_loads_no_textual():
    code = (
        "import sys, pkgutil, importlib, lstmtui.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'lstmtui.core.'): importlib.import_module(m.name)\n"
        "print(sorted(k for k in sys.modules if k.startswith('textual')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_pickle_loading_anywhere():
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bpickle\.loads?\(", text), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (path, call)


def test_no_call_from_thread_in_the_tui():
    for path in (ROOT / "tui").rglob("*.py"):
        assert "call_from_thread" not in path.read_text(), path
