"""`lstmtui completion bash|zsh|fish`: print a static shell completion script generated with shtab.

The script is generated from the real parsers (the TUI's options at the top level, every
subcommand below), so it completes exactly what `lstmtui` accepts. Profile names come from a small
shell function that lists the directories in ``$LSTMTUI_HOME/profiles`` (or in the ``--home`` typed
on the line, or the platform's default home): a Tab starts no Python.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")
PROFILE_FUNCTION = "_lstmtui_profile_names"
# profile name arguments of `lstmtui profiles ACTION`, by action
PROFILE_POSITIONALS = {"show": "name", "rm": "name", "rename": "old", "export": "name"}

_BASH = r"""
# lstmtui profile names: the directories in the profiles folder of --home, $LSTMTUI_HOME or the default
# $1: the word being completed
PROFILE_FUNCTION() {
  local home="${LSTMTUI_HOME:-DEFAULT_HOME}" i dir name
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      --home)  # bash splits --home=DIR into --home, =, DIR
        if [[ "${COMP_WORDS[i+1]}" == "=" ]]; then home="${COMP_WORDS[i+2]}"; else home="${COMP_WORDS[i+1]}"; fi ;;
      --home=*) home="${COMP_WORDS[i]#--home=}" ;;
    esac
  done
  home="${home/#\~/$HOME}"
  for dir in "$home"/profiles/*/; do
    [[ -d "$dir" ]] || continue
    name="${dir%/}"
    name="${name##*/}"
    [[ "$name" == .* ]] && continue
    [[ "$name" == "$1"* ]] && printf '%s\n' "$name"
  done
}
"""

_ZSH = r"""
# lstmtui profile names: the directories in the profiles folder of --home, $LSTMTUI_HOME or the default
PROFILE_FUNCTION() {
  local home="${LSTMTUI_HOME:-DEFAULT_HOME}" i
  local -a names
  for ((i = 2; i < CURRENT; i++)); do
    case "${words[i]}" in
      --home) home="${words[i+1]}" ;;
      --home=*) home="${words[i]#--home=}" ;;
    esac
  done
  home="${home/#\~/$HOME}"
  names=("$home"/profiles/*(N/:t))
  compadd -a names
}
"""

_FISH = r"""
# lstmtui profile names: the directories in the profiles folder of --home, $LSTMTUI_HOME or the default
function PROFILE_FUNCTION
  set -l home "$LSTMTUI_HOME"
  if test -z "$home"
    DEFAULT_HOME
  end
  set -l tokens (commandline -opc)
  set -l n (count $tokens)
  for i in (seq $n)
    switch $tokens[$i]
      case --home
        if test $i -lt $n
          set home $tokens[(math $i + 1)]
        end
      case '--home=*'
        set home (string replace -- --home= '' $tokens[$i])
      end
  end
  set home (string replace -r -- '^~' "$HOME" "$home")
  for dir in $home/profiles/*/
    string replace -r -- '^.*/([^/]+)/$' '$1' $dir
  end
end
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `completion`."""
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script for SHELL, generated from lstmtui's own options.",
        epilog=(
            "It completes subcommands, options, files and saved profile names. README.md, 'Shell completion', "
            "says where each shell wants it; for bash, e.g. "
            "`lstmtui completion bash > ~/.local/share/bash-completion/completions/lstmtui`."
        ),
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the script."""
    sys.stdout.write(completion_script(args.shell))
    return 0


def completion_script(shell: str) -> str:
    """The completion script for ``shell``, generated from the parsers `lstmtui` builds."""
    import shtab  # only this command needs it

    parser = completion_parser()
    preamble = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}[shell]
    preamble = preamble.replace("PROFILE_FUNCTION", PROFILE_FUNCTION).replace("DEFAULT_HOME", _default_home(shell))
    complete = {
        "bash": PROFILE_FUNCTION,
        "zsh": PROFILE_FUNCTION,
        "fish": f"({PROFILE_FUNCTION})",
        "preamble": {shell: preamble},
    }
    _mark(parser, complete)
    return shtab.complete(parser, shell=shell)


def completion_parser() -> argparse.ArgumentParser:
    """One parser holding the TUI's options (``lstmtui [OPTIONS] [CORPUS...]``) and every subcommand."""
    from lstmtui import cli

    parser = cli.build_subcommand_parser()
    tui = cli.build_parser()
    parser.description = tui.description
    for action in tui._actions:  # argparse has no public way to copy an option
        if action.option_strings and not {"-h", "--help"} & set(action.option_strings):
            parser._add_action(action)
    return parser


def _mark(parser: argparse.ArgumentParser, profiles: dict) -> None:
    """Tell shtab what each argument completes to: profile names, directories or files."""
    import shtab

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # argparse exposes subparsers no other way
            for name, sub in action.choices.items():
                _mark(sub, profiles)
                if parser.prog.endswith(" profiles") and name in PROFILE_POSITIONALS:
                    for positional in sub._get_positional_actions():
                        if positional.dest == PROFILE_POSITIONALS[name]:
                            positional.complete = profiles
        elif "--profile" in action.option_strings:
            action.complete = profiles
        elif action.dest in ("home", "action_home"):
            action.complete = shtab.DIRECTORY
        elif action.type is Path or action.dest == "corpus":
            action.complete = shtab.FILE


def _default_home(shell: str) -> str:
    """The platform's default profile home as a shell expression (where $LSTMTUI_HOME is unset)."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if shell == "fish":  # a statement: fish has no ${VAR:-default}
            return (
                'if test -n "$XDG_DATA_HOME"; set home "$XDG_DATA_HOME/lstmtui"; '
                'else; set home "$HOME/.local/share/lstmtui"; end'
            )
        return "${XDG_DATA_HOME:-$HOME/.local/share}/lstmtui"
    if sys.platform == "darwin":
        path = "$HOME/Library/Application Support/lstmtui"
        return f'set home "{path}"' if shell == "fish" else path
    import platformdirs  # elsewhere the path is fixed when the script is made

    path = platformdirs.user_data_dir("lstmtui", appauthor=False)
    if shell == "fish":
        return "set home '" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
    for special in ("\\", '"', "$", "`"):  # it stands inside double quotes
        path = path.replace(special, "\\" + special)
    return path
