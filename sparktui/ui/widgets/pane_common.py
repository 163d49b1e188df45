"""Pieces shared by the panes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.widget import Widget
from textual.widgets import Static

from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui.keys import key_hint


@runtime_checkable
class ShowsTelemetry(Protocol):
    """A pane the app hands every device's newest telemetry to (see TelemetryUpdated)."""

    @property
    def is_attached(self) -> bool: ...

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


StateT = TypeVar("StateT", bound=Hashable)


def state_styles(widget: Widget, colours: Mapping[StateT, str | None]) -> dict[StateT, Style]:
    """Rich styles for state cells from the theme's CSS variables (None: dimmed).

    Resolved once per theme change, not per cell, since a table repaints often.
    """
    variables = widget.app.get_css_variables()
    styles: dict[StateT, Style] = {}
    for state, variable in colours.items():
        if variable is None:
            styles[state] = Style(dim=True)
            continue
        try:
            styles[state] = Style(color=Color.parse(variables[variable]).rich_color)
        except (KeyError, ColorParseError):
            # a theme without this shade still shows the state, just uncoloured
            widget.log.warning(f"theme has no usable ${variable}")
            styles[state] = Style()
    return styles
