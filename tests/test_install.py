"""The install is reproducible: constraints.txt pins exactly what the test venv holds."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
REFRESH = "refresh it with `make constraints` (DEVELOPERS.md) or rebuild the venv with `make clean venv`"


def _canonical(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, Version]:
    """Package name -> pinned version, from constraints.txt."""
    pins: dict[str, Version] = {}
    for raw in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not an exact pin: {raw!r}"
        assert not requirement.extras and requirement.marker is None, f"a pin is name==version only: {raw!r}"
        name = _canonical(requirement.name)
        assert name not in pins, f"{name} is pinned twice"
        pins[name] = Version(specifiers[0].version)
    return pins


def _installed() -> dict[str, Version]:
    """Package name -> version of every distribution in this environment but lstmtui itself."""
    found: dict[str, Version] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) != "lstmtui":
            found[_canonical(name)] = Version(dist.version)
    return found


def _declared() -> list[Requirement]:
    """The runtime requirements and every extra's, from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return [Requirement(line) for line in lines]


def test_constraints_pin_every_installed_package_at_its_installed_version():
    pins, installed = _pins(), _installed()
    unpinned = sorted(f"{name}=={version}" for name, version in installed.items() if name not in pins)
    assert not unpinned, f"installed but not in constraints.txt: {unpinned}; {REFRESH}"
    # A local build label (torch 2.13.0+cpu or +cu128) matches the pin 2.13.0, as it does for pip.
    differ = sorted(
        f"{name}: installed {installed[name]}, pinned {pin}"
        for name, pin in pins.items()
        if name in installed and Version(installed[name].public) != pin
    )
    assert not differ, f"versions differ from constraints.txt: {differ}; {REFRESH}"


def test_constraints_pin_nothing_that_is_not_installed():
    missing = sorted(set(_pins()) - set(_installed()))
    assert not missing, f"pinned but not installed: {missing}; {REFRESH}"


def test_every_declared_requirement_is_pinned_inside_its_range():
    pins = _pins()
    for requirement in _declared():
        name = _canonical(requirement.name)
        assert name in pins, f"{requirement} (pyproject.toml) has no pin in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"
        )


def test_torch_is_pinned_without_a_build_label_and_the_readme_names_that_version():
    torch_pin = _pins()["torch"]
    # Without a label the one pin matches the CPU and the CUDA builds alike.
    assert torch_pin.local is None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"torch=={torch_pin}" in readme, f"README.md's set-up names another torch than the pin {torch_pin}"
