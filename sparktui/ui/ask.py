"""Ask before anything destructive, naming what it acts on (docs/keys.md, rule 3).

`ask_first` is what a destructive key runs: it puts the question up (No has the
focus, so a stray Enter does nothing) and runs `then` only on a yes. The
question names the target, built from `target_question`, whose device text
stays literal (never markup).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.dom import DOMNode

from sparktui.core.sanitize import safe_text
from sparktui.ui.screens.confirm import ConfirmScreen


def target_question(verb: str, kind: str, name: str, device: str | None = None,
                    note: str = "") -> Text:
    """ "Stop the container vllm on spark-01?" with the name in bold, taken literally."""
    question = Text(f"{verb} the {kind} " if kind else f"{verb} ")
    question.append_text(safe_text(name, style="bold", max_line=120))
    if device:
        question.append(" on ")
        question.append_text(safe_text(device, style="bold", max_line=64))
    question.append("?")
    if note:
        question.append(f"\n\n{note}")
    return question


def ask_first(node: DOMNode, title: str, question: Text, then: Callable[[], object]) -> None:
    """Ask `question`; run `then` if the answer is yes, do nothing otherwise."""

    def answered(yes: bool | None) -> None:
        if yes:
            then()

    node.app.push_screen(ConfirmScreen(title, question), callback=answered)


def quit_question(cut: list[str]) -> Text:
    """What quitting now would end (tunnels, an answer), and how to stop being asked."""
    question = Text("Quit sparktui? This ends:\n")
    for item in cut:
        question.append(f"  • {item}\n")
    question.append("\n(confirm_quit = false in [settings] quits without asking)", style="dim")
    return question
