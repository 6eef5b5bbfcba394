"""Standing rules of the code base: the engine never imports textual, nothing unpickles."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "lstmtui"


def test_core_never_imports_textual_in_source():
    offenders = [
        str(path)
        for path in (ROOT / "core").rglob("*.py")
        if re.search(r"^\s*(import textual|from textual)", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def test_importing_the_whole_engine_loads_no_textual():
    code = (
        "import sys, pkgutil, importlib, lstmtui.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('lstmtui.core.' + m.name)\n"
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
