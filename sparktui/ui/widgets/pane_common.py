"""Pieces shared by the panes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from sparktui.core.device import LinkState, LinkStatus
from sparktui.services.session import Session
from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui.keys import key_hint
from sparktui.ui.messages import FleetChanged
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


@runtime_checkable
class ShowsTelemetry(Protocol):
    """A pane the app hands every device's newest telemetry to (see TelemetryUpdated)."""

    @property
    def is_attached(self) -> bool: ...

    def show_telemetry(self, telemetry: DeviceTelemetry) -> None: ...


class SessionPane(LogsWorkerFailures, Widget):
    """A tab's pane: built with the app's Session, bound to the app's reactives.

    The shell binds `compact` and `focused_device` to its own (`data_bind`); a
    pane that moves the focus to another device posts `FocusDevice`, and the
    app's reactive (and so every pane's) follows.
    """

    #: the shell lays out for a narrow terminal (a tmux side pane)
    compact: reactive[bool] = reactive(False)
    #: the device every pane shows first
    focused_device: reactive[str | None] = reactive(None)

    class FocusDevice(Message):
        """Show `device` first in every pane (the Devices cursor, `d` on Telemetry)."""

        def __init__(self, device: str) -> None:
            super().__init__()
            self.device = device

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.fleet = session.fleet

    def focus_device(self, device: str) -> None:
        self.post_message(self.FocusDevice(device))


class RediscoveringPane(SessionPane):
    """A pane that looks for something on the devices (Chat's and Serving's model
    endpoints): first when it is shown, then whenever links join the fleet and each
    time a device connects or comes back. Nothing is probed before the tab is seen.

    A subclass implements `discover()` (a `@work` method).
    """

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        #: the tab has been shown: from now on, devices are searched as they connect
        self.activated = False
        self._watched: set[str] = set()
        self._link_unsubscribes: list[Callable[[], None]] = []

    def discover(self) -> object:
        raise NotImplementedError

    def on_mount(self) -> None:
        self._watch_links()

    def on_unmount(self) -> None:
        for unsubscribe in self._link_unsubscribes:
            unsubscribe()
        self._link_unsubscribes.clear()

    def on_show(self) -> None:
        if not self.activated:
            self.activated = True
            self.discover()

    def on_fleet_changed(self, _message: FleetChanged) -> None:
        self._watch_links()
        if self.activated:
            self.discover()

    def _watch_links(self) -> None:
        for link in self.fleet.links:
            if link.name in self._watched:
                continue
            self._watched.add(link.name)
            self._link_unsubscribes.append(link.subscribe(self._link_changed))

    def device_dropped(self) -> None:
        """A device's connection went: mark what was found on it stale (subclasses)."""

    def _link_changed(self, status: LinkStatus) -> None:
        # called by the link on the event loop; discover() is exclusive: a flapping
        # link leaves one search running, the newest
        if not (self.activated and self.is_attached):
            return
        if status.state is LinkState.CONNECTED:
            self.discover()
        else:
            self.device_dropped()


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


#: a table cell from a device that dropped (its state may have changed since): the last
#: figure seen, dimmed and struck, as Devices shows it
STALE_CELL = Style(dim=True, strike=True)

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
