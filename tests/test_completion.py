"""`lstmtui completion`: scripts generated from the real parsers that complete profile names in real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstmtui.cli import main
from lstmtui.commands.completion import completion_parser, completion_script

PROFILES = ("alpha", "beta-2")


@pytest.fixture
def home(tmp_path) -> Path:
    """A profile home with two profiles, plus the hidden lock and save-in-progress entries a store leaves."""
    home = tmp_path / "home"
    for name in PROFILES:
        (home / "profiles" / name / "v000001").mkdir(parents=True)
    (home / "profiles" / ".alpha.lock").write_text("")
    (home / "profiles" / ".beta-2.tmp-123-abc").mkdir()
    return home


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    """Each shell's script, as `lstmtui completion SHELL` prints it in a fresh process."""
    out = tmp_path_factory.mktemp("completion")
    paths = {}
    for shell in ("bash", "zsh", "fish"):
        proc = subprocess.run(
            [sys.executable, "-m", "lstmtui", "completion", shell], capture_output=True, text=True, check=True
        )
        assert proc.stderr == ""
        paths[shell] = out / f"lstmtui.{shell}"
        paths[shell].write_text(proc.stdout)
    return paths


def bash_complete(script: Path, words: list[str], env: dict[str, str]) -> list[str]:
    """COMPREPLY of the function the script registers for `lstmtui`, with the cursor after the last word."""
    driver = (
        'source "$1"; shift\n'
        "fn=$(complete -p lstmtui | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        '"$fn" lstmtui "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", driver, "driver", str(script), *words],
        capture_output=True,
        text=True,
        env=env,
        cwd=env.get("HOME"),
        check=True,
        timeout=60,
    )
    return [line for line in proc.stdout.splitlines() if line]


def shell_env(home: Path | None, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **extra}
    if home is not None:
        env["LSTMTUI_HOME"] = str(home)
    return env


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    "words",
    [
        ["lstmtui", "generate", "--profile", ""],
        ["lstmtui", "--profile", ""],
        ["lstmtui", "train", "corpus.txt", "--profile", ""],
        ["lstmtui", "profiles", "show", ""],
        ["lstmtui", "profiles", "rm", ""],
        ["lstmtui", "profiles", "rename", ""],
        ["lstmtui", "profiles", "export", ""],
    ],
)
def test_bash_completes_profile_names(scripts, home, tmp_path, words):
    assert sorted(bash_complete(scripts["bash"], words, shell_env(home, tmp_path))) == list(PROFILES)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_profile_names_follow_the_prefix_home_option_and_default_home(scripts, home, tmp_path):
    env = shell_env(home, tmp_path)
    assert bash_complete(scripts["bash"], ["lstmtui", "generate", "--profile", "b"], env) == ["beta-2"]
    other = tmp_path / "other"
    (other / "profiles" / "gamma").mkdir(parents=True)
    typed = ["lstmtui", "generate", "--home", str(other), "--profile", ""]
    assert bash_complete(scripts["bash"], typed, env) == ["gamma"]
    split = ["lstmtui", "generate", "--home", "=", str(other), "--profile", ""]  # how bash splits --home=DIR
    assert bash_complete(scripts["bash"], split, env) == ["gamma"]
    if sys.platform.startswith("linux"):  # no $LSTMTUI_HOME: the XDG data directory, as platformdirs has it
        xdg = tmp_path / "xdg"
        (xdg / "lstmtui" / "profiles" / "delta").mkdir(parents=True)
        env = shell_env(None, tmp_path, XDG_DATA_HOME=str(xdg))
        assert bash_complete(scripts["bash"], ["lstmtui", "generate", "--profile", ""], env) == ["delta"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_options_and_choices(scripts, home, tmp_path):
    env = shell_env(home, tmp_path)
    assert bash_complete(scripts["bash"], ["lstmtui", "c"], env) == ["cache", "completion"]
    assert bash_complete(scripts["bash"], ["lstmtui", "completion", ""], env) == ["bash", "zsh", "fish"]
    assert "--top-k" in bash_complete(scripts["bash"], ["lstmtui", "generate", "--to"], env)
    assert bash_complete(scripts["bash"], ["lstmtui", "profiles", "export", "alpha", "x", "--format", ""], env) == [
        "archive",
        "onnx",
    ]
    assert bash_complete(scripts["bash"], ["lstmtui", "cache", ""], env) == ["list", "clear", "limit"]


def test_script_comes_from_the_real_parsers():
    """Every option of every subcommand, and the TUI's top-level options, are in the bash script."""
    script = completion_script("bash")
    parser = completion_parser()
    subcommands = next(a for a in parser._actions if a.choices and "generate" in a.choices).choices
    for name, sub in subcommands.items():
        listed = next(line for line in script.splitlines() if line.startswith(f"_shtab_lstmtui_{name}_option_strings="))
        for action in sub._actions:
            for option in action.option_strings:
                assert f" {option}" in listed or f"({option}" in listed, (name, option)
    root = next(line for line in script.splitlines() if line.startswith("_shtab_lstmtui_option_strings="))
    for option in ("--profile", "--fps", "--hidden", "--version", "--encoding"):
        assert f" {option}" in root


def test_completion_starts_without_torch_or_textual():
    code = (
        "import io, sys, contextlib\n"
        "from lstmtui.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['completion', 'bash']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'textual'))\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_unknown_shell_is_a_one_line_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["completion", "powershell"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmtui: error: argument shell: invalid choice") and err.count("\n") == 1


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses_and_lists_profile_names(scripts, home, tmp_path):
    subprocess.run(["zsh", "-n", str(scripts["zsh"])], check=True, timeout=60)
    # The profile-name function, called as _arguments calls it, with compadd recording what it adds.
    driver = (
        '_arguments() { :; }; compdef() { :; }; source "$1" 2>/dev/null\n'
        "compadd() { [[ $1 == -a ]] && print -l -- ${(P)2}; }\n"
        "words=(lstmtui generate --profile ''); CURRENT=4\n"
        "_lstmtui_profile_names\n"
    )
    proc = subprocess.run(
        ["zsh", "-f", "-c", driver, "driver", str(scripts["zsh"])],
        capture_output=True,
        text=True,
        env=shell_env(home, tmp_path),
        timeout=60,
    )
    assert sorted(proc.stdout.split()) == list(PROFILES)


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_script_parses_and_completes_profile_names(scripts, home, tmp_path):
    subprocess.run(["fish", "--no-config", "-n", str(scripts["fish"])], check=True, timeout=60)
    proc = subprocess.run(
        ["fish", "--no-config", "-c", f"source {scripts['fish']}; complete -C 'lstmtui generate --profile '"],
        capture_output=True,
        text=True,
        env=shell_env(home, tmp_path),
        timeout=60,
    )
    assert sorted(line.split("\t")[0] for line in proc.stdout.splitlines()) == list(PROFILES)
