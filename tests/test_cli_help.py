"""`sparktui --help`, every subcommand's help, and README's command list never drift apart.

Adding a subcommand? Three places, in the same commit:
  1. sparktui/cli.py: SUBCOMMANDS (the lazy table) and a line in SUBCOMMANDS_HELP;
  2. README.md: a line `sparktui NAME ...  # what it does` in the ```sh block under
     "The same services serve the command line:";
  3. its parser in the one style: prog "sparktui NAME", a description that is a sentence
     (capital first, full stop last), and a help text for every argument and option that
     starts lowercase (an ACRONYM may lead) and ends without a full stop.
Each failure below says exactly which line to add or change.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

import pytest

from sparktui import cli

README = Path(__file__).resolve().parent.parent / "README.md"
LIST_HEADING = "The same services serve the command line:"


def public_subcommands() -> list[str]:
    return [name for name in cli.SUBCOMMANDS if not name.startswith("_")]


def readme_command_lines() -> dict[str, str]:
    """`sparktui NAME ...` lines of README's command list, by NAME."""
    text = README.read_text(encoding="utf-8")
    assert LIST_HEADING in text, (
        f"README.md has lost its command list: the line {LIST_HEADING!r} followed by a "
        "```sh block with one `sparktui NAME ...  # what it does` line per subcommand")
    block = text.split(LIST_HEADING, 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines: dict[str, str] = {}
    for line in block.strip().splitlines():
        match = re.match(r"sparktui ([a-z][a-z0-9-]*)\b", line)
        assert match, f"README.md's command list has a line that is not `sparktui NAME`: {line!r}"
        lines[match[1]] = line
    return lines


def top_help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    return out.getvalue()


def subcommand_parser(name: str, monkeypatch) -> tuple[argparse.ArgumentParser, str]:
    """The parser `sparktui NAME --help` used, and the help it printed."""
    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def recording(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = cli.main([name, "--help"])
        except SystemExit as exited:  # argparse's own exit after printing help
            code = exited.code
    assert code in (0, None), f"`sparktui {name} --help` exited {code}"
    assert seen, f"`sparktui {name} --help` printed help without argparse"
    return seen[0], out.getvalue()


def test_readme_lists_every_subcommand_and_nothing_else() -> None:
    listed = readme_command_lines()
    known = public_subcommands()
    missing = [name for name in known if name not in listed]
    assert not missing, "\n".join(
        f"README.md's command list lacks `sparktui {name}`: add the line\n"
        f"    sparktui {name} [OPTIONS]   # what it does, in a few words\n"
        f"to the ```sh block under {LIST_HEADING!r} (one line per subcommand, "
        "options as in its --help)" for name in missing)
    unknown = [name for name in listed if name not in known]
    assert not unknown, "\n".join(
        f"README.md lists `sparktui {name}`, which `sparktui --help` does not know: remove "
        f"the line, or add {name!r} to SUBCOMMANDS in sparktui/cli.py" for name in unknown)


def test_top_help_lists_every_subcommand() -> None:
    text = top_help()
    assert text.startswith("usage: sparktui ")
    missing = [name for name in public_subcommands()
               if not re.search(rf"^  {re.escape(name)}\s{{2,}}\S", text, re.M)]
    assert not missing, "\n".join(
        f"`sparktui --help` does not list `{name}`: add the line\n"
        f"  {name:<10}  what it does, in a few words\n"
        "to SUBCOMMANDS_HELP in sparktui/cli.py" for name in missing)


def _help_style_problems(name: str, parser: argparse.ArgumentParser) -> list[str]:
    where = f"`sparktui {name} --help`"
    problems = []
    if parser.prog != f"sparktui {name}":
        problems.append(f"{where}: its parser's prog is {parser.prog!r}; "
                        f"use prog='sparktui {name}'")
    # the first paragraph is the sentence; what follows (lists, presets) is free
    description = (parser.description or "").strip().split("\n\n")[0]
    if not description or not description[0].isupper() or not description.endswith("."):
        problems.append(f"{where}: the description must be a sentence (capital first, full "
                        f"stop last), saying what the command does; it is {description!r}")
    for action in parser._actions:  # argparse has no public list of its arguments
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        label = "/".join(action.option_strings) or action.metavar or action.dest
        text = (action.help or "").strip()
        if not text:
            problems.append(f"{where}: {label} has no help text: add help='...' "
                            "(lowercase first, no full stop)")
            continue
        first_word = text.split()[0].strip("`'\"([")
        if text[0].isupper() and not first_word.isupper():
            problems.append(f"{where}: {label}'s help starts with a capital "
                            f"({text!r}): start it lowercase")
        if text.endswith(".") and not text.endswith("..."):
            problems.append(f"{where}: {label}'s help ends with a full stop ({text!r}): drop it")
    return problems


@pytest.mark.parametrize("name", public_subcommands())
def test_subcommand_help_follows_the_one_style(name: str, monkeypatch) -> None:
    parser, text = subcommand_parser(name, monkeypatch)
    assert text.startswith(f"usage: sparktui {name}"), text[:200]
    problems = _help_style_problems(name, parser)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", public_subcommands())
def test_readme_options_exist_in_the_subcommands_help(name: str, monkeypatch) -> None:
    line = readme_command_lines().get(name)
    if line is None:
        pytest.fail(f"README.md's command list lacks `sparktui {name}` "
                    "(test_readme_lists_every_subcommand_and_nothing_else says what to add)")
    usage = line.split("#", 1)[0]
    parser, _text = subcommand_parser(name, monkeypatch)
    known = {opt for action in parser._actions for opt in action.option_strings}
    unknown = [opt for opt in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", usage)
               if opt not in known]
    assert not unknown, (f"README.md's line for `sparktui {name}` names {unknown}, which "
                         f"`sparktui {name} --help` does not have: fix the README line")


def test_top_level_options_follow_the_one_style() -> None:
    problems = _help_style_problems("", cli._tui_parser())
    # the TUI's parser is `sparktui` itself, not `sparktui ` + a name
    problems = [p for p in problems if "prog is 'sparktui'" not in p]
    assert not problems, "\n".join(problems)
