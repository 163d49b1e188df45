"""The help screen: every key binding in force where `?` was pressed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Select, Static, TextArea

from sparktui.ui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class KeyHelp:
    key: str  # as the footer shows it ("?", "^p")
    description: str
    where: str  # "everywhere", or the pane / widget that owns the binding
    binding_id: str | None


def _where(owner: object) -> str:
    """Where a key works, in the user's words: a pane may name itself with HELP_SCOPE."""
    if isinstance(owner, App):
        return "everywhere"
    if isinstance(owner, Screen):
        return "this screen"
    label = getattr(owner, "HELP_SCOPE", None)
    if label:
        return label
    if isinstance(owner, DataTable):
        return "the table"
    if isinstance(owner, Select):
        return "a menu"
    if isinstance(owner, Input | TextArea):
        return "a text field"
    return type(owner).__name__


def collect_key_help(app: App, active: dict[str, ActiveBinding]) -> list[KeyHelp]:
    """Turn `Screen.active_bindings` into rows, the focused widget's first."""
    rows: list[KeyHelp] = []
    for key, (owner, binding, _enabled, _tooltip) in active.items():
        if binding.system:
            continue
        shown = app.get_key_display(Binding(key, binding.action, key_display=binding.key_display))
        description = binding.description or binding.tooltip or binding.action
        rows.append(KeyHelp(shown, description, _where(owner), binding.id))
    # app-wide keys last: the keys of what has focus are what the user is after
    rows.sort(key=lambda row: row.where == "everywhere")
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists keys; closes with escape, ? or q."""

    CSS_PATH = Path(__file__).with_suffix(".tcss")
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close help", id="help.close"),
    ]

    def __init__(self, rows: list[KeyHelp]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("Keys in force", id="help-title")
            table = NavTable(id="help-table")  # j/k, g/G, PgUp/PgDn: it scrolls
            yield table
            yield Static("j/k g/G PgUp/PgDn scroll · escape, ? or q closes · "
                         "ctrl+p finds any action by name",
                         id="help-hint")
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        table = self.query_one("#help-table", NavTable)
        table.add_columns("Key", "Action", "Where")
        for row in self.rows:
            table.add_row(Text(row.key, style="bold"), Text(row.description), Text(row.where))

    def action_close(self) -> None:
        self.dismiss(None)
