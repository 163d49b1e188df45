"""`sparktui completion SHELL`: shell completion for bash, zsh and fish.

The scripts are small and static: each asks `sparktui __complete -- WORD ...` (the
words typed after `sparktui`, the last one the word being completed, maybe empty)
and offers what it prints, one candidate a line. The answers come from the same
parsers that `--help` prints, so completion never drifts from the options:
subcommands, options, an option's choices, and device names where a DEVICE goes
(`local`, the config's devices, the Host aliases of ~/.ssh/config and NVIDIA Sync).

`__complete` must answer while the user waits on a Tab: it imports argparse, the
one subcommand's module (whose heavy imports are deferred to its main) and, for
device names, the config and ssh_config readers. Nothing connects anywhere.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SHELLS = ("bash", "zsh", "fish")

BASH_SCRIPT = r"""# sparktui completion for bash: `sparktui completion bash`
_sparktui() {
    local IFS=$'\n'
    COMPREPLY=($(sparktui __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _sparktui sparktui
"""

ZSH_SCRIPT = r"""#compdef sparktui
# sparktui completion for zsh: `sparktui completion zsh`
_sparktui() {
    local -a candidates
    candidates=("${(@f)$(sparktui __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    candidates=("${(@)candidates:#}")
    if (( ${#candidates} )); then
        compadd -Q -- "${candidates[@]}"
    else
        _files
    fi
}
if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then
    _sparktui "$@"
else
    compdef _sparktui sparktui
fi
"""

FISH_SCRIPT = r"""# sparktui completion for fish: `sparktui completion fish`
function __sparktui_complete
    set -l words (commandline -opc)
    sparktui __complete -- $words[2..-1] (commandline -ct) 2>/dev/null
end
complete -c sparktui -f -a '(__sparktui_complete)'
"""

SCRIPTS = {"bash": BASH_SCRIPT, "zsh": ZSH_SCRIPT, "fish": FISH_SCRIPT}

EPILOG = """\
install it:
  bash  sparktui completion bash > ~/.local/share/bash-completion/completions/sparktui
  zsh   sparktui completion zsh > ~/.zfunc/_sparktui   (with fpath+=(~/.zfunc) before
        compinit in ~/.zshrc), or: source <(sparktui completion zsh) after compinit
  fish  sparktui completion fish > ~/.config/fish/completions/sparktui.fish
Then open a new shell. It completes subcommands, options and device names (the
config's, and the Host aliases of ~/.ssh/config and NVIDIA Sync)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sparktui completion", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the shell completion script for SHELL.")
    p.add_argument("shell", choices=SHELLS, metavar="SHELL",
                   help="bash, zsh or fish")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    sys.stdout.write(SCRIPTS[args.shell])
    return 0


# -- answering a Tab ---------------------------------------------------------------------

def device_names() -> list[str]:
    """`local`, the config's devices, then ~/.ssh/config's and NVIDIA Sync's Host aliases."""
    names = ["local"]
    try:
        from sparktui.services.config import load_config, resolve_config_path

        names += [spec.name for spec in load_config(resolve_config_path(None)).devices]
    except Exception:  # a broken config must not break the shell's Tab
        pass
    try:
        from sparktui.services.sshconfig import import_hosts

        names += [host.alias for host in import_hosts().hosts]
    except Exception:  # an unreadable ssh_config must not either
        pass
    return list(dict.fromkeys(names))


def subcommand_parser(name: str) -> argparse.ArgumentParser | None:
    """The parser of a subcommand: `build_parser` next to its `main`, or `X_parser`
    next to `X_main`. None when its module keeps it elsewhere (options then go
    uncompleted, never wrong)."""
    from sparktui.cli import SUBCOMMANDS

    module_name, _, function = SUBCOMMANDS[name].partition(":")
    factory_name = "build_parser" if function == "main" else \
        function.removesuffix("_main") + "_parser"
    try:
        factory = getattr(importlib.import_module(module_name), factory_name, None)
        return factory() if callable(factory) else None
    except Exception:  # a broken extra must not break completion of the rest
        return None


def _takes_devices(action: argparse.Action) -> bool:
    text = f"{action.metavar or ''} {action.dest}".upper()
    return "DEVICE" in text


def _option_candidates(parser: argparse.ArgumentParser) -> list[str]:
    return [opt for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and action.help != argparse.SUPPRESS]


def _value_candidates(action: argparse.Action) -> list[str]:
    if action.choices:
        return [str(choice) for choice in action.choices]
    if _takes_devices(action):
        return device_names()
    return []  # a file, a number: the shell's own completion (bash/zsh fall back to files)


def candidates(words: list[str]) -> list[str]:
    """What may come at the last word of `sparktui WORDS`, filtered by its prefix."""
    from sparktui.cli import SUBCOMMANDS, _tui_parser

    *before, current = words or [""]
    if before and before[0] in SUBCOMMANDS:
        parser = subcommand_parser(before[0])
        before = before[1:]
        subcommands: list[str] = []
    else:
        parser = _tui_parser()
        subcommands = [] if before else [n for n in SUBCOMMANDS if not n.startswith("_")]
    if parser is None:
        return []
    options = {opt: action for action in parser._actions for opt in action.option_strings}
    previous = options.get(before[-1]) if before else None
    if previous is not None and previous.nargs != 0:
        found = _value_candidates(previous)
    elif current.startswith("-"):
        found = _option_candidates(parser)
    else:
        positionals = [a for a in parser._actions if not a.option_strings]
        found = list(subcommands)
        for action in positionals:
            found += _value_candidates(action)
    return [word for word in dict.fromkeys(found) if word.startswith(current)]


def complete_main(argv: list[str]) -> int:
    """`sparktui __complete -- WORD ...`: one candidate a line (hidden from --help)."""
    words = argv[1:] if argv[:1] == ["--"] else argv
    for word in candidates(words):
        print(word)
    return 0
