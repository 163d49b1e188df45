"""Pieces shared by the panes."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rich.text import Text
from textual.widgets import Static

from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui.keys import key_hint


@runtime_checkable
class ShowsTelemetry(Protocol):
    """A pane the app hands every device's newest telemetry to (see TelemetryUpdated)."""

    def show_telemetry(self, telemetry: DeviceTelemetry) -> None: ...


class PaneIntro(Static):
    """What a pane is for, what it will show, and the keys that work meanwhile.

    Keeps a not-yet-built pane from being a dead end: it names real keys (as
    rebound by the user's keymap), never ones that do nothing.
    """

    def __init__(self, title: str, purpose: str, details: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self._title = title
        self._purpose = purpose
        self._details = details

    def on_mount(self) -> None:
        # keys are looked up once mounted: only then is the app (and its keymap) known
        hints = [
            (key_hint(self, "app.tab.devices", "1"), "Devices: the connection to each device"),
            (key_hint(self, "app.help", "?"), "every key in force"),
            (key_hint(self, "app.palette", "^p"), "command palette: every action by name"),
            (key_hint(self, "app.quit", "q"), "quit"),
        ]
        text = Text()
        text.append(self._title, style="bold")
        text.append("\n\n")
        text.append(self._purpose)
        text.append("\n\n")
        text.append(self._details, style="italic")
        text.append("\n\nMeanwhile:\n")
        for key, what in hints:
            text.append(f"  {key:<6}", style="bold")
            text.append(f"{what}\n")
        self.update(text)
