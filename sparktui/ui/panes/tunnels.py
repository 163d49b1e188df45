"""The Tunnels pane (a placeholder until its service lands).

Plug-in point: the shell builds
`TunnelsPane(fleet, id="tunnels")` once and mounts it in
the "Tunnels" tab. `fleet` is the session's Fleet; its `links` may grow after
mount (the session opens in a worker), and the pane is then sent a
`sparktui.ui.messages.FleetChanged`. Style it in tunnels.tcss beside this file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from sparktui.services.devices import Fleet
from sparktui.ui.panes.common import PaneIntro

PURPOSE = (
    "Port forwards from this machine to services on the devices (Jupyter, model servers, "
    "dashboards)."
)
DETAILS = (
    "Coming here: forwards you add once and keep: each one is re-opened after every "
    "reconnect."
)


class TunnelsPane(Widget):
    """Tunnels: says what it will hold and which keys work meanwhile."""

    def __init__(self, fleet: Fleet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet

    def compose(self) -> ComposeResult:
        yield PaneIntro("Tunnels", PURPOSE, DETAILS, classes="pane-intro")
