"""Small modal questions for the container actions (remove, remove images)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Static

from sparktui.ui.widgets.tickbox import TickBox


@dataclass(frozen=True)
class Answer:
    confirmed: bool
    checked: bool = False  # the optional checkbox ("also remove volumes")


class ConfirmDialog(ModalScreen[Answer]):
    """A yes/no question, with an optional checkbox; No has the focus."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="container_confirm.yes"),
        Binding("n,escape,q", "answer(False)", "No", id="container_confirm.no"),
    ]

    def __init__(self, title: str, question: Text, *, checkbox: str | None = None,
                 yes_label: str = "Yes (y)") -> None:
        super().__init__()
        self.title_text = title
        self.question = question  # a Text: device text in it stays literal
        self.checkbox = checkbox
        self.yes_label = yes_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), id="dialog-title")
            with VerticalScroll(id="dialog-question-scroll"):
                yield Static(self.question, id="dialog-question")
            if self.checkbox is not None:
                yield TickBox(self.checkbox, value=False, id="dialog-check")
            with Horizontal(id="dialog-buttons"):
                yield Button(self.yes_label, id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # a stray enter must not confirm

    def _checked(self) -> bool:
        return self.checkbox is not None and self.query_one("#dialog-check", Checkbox).value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(Answer(yes, self._checked() if yes else False))
