"""The Containers pane (a placeholder until its service lands).

Plug-in point: the shell builds
`ContainersPane(fleet, id="containers")` once and mounts it in
the "Containers" tab. `fleet` is the session's Fleet; its `links` may grow after
mount (the session opens in a worker), and the pane is then sent a
`sparktui.ui.messages.FleetChanged`. Style it in containers.tcss beside this file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from sparktui.services.devices import Fleet
from sparktui.ui.panes.common import PaneIntro

PURPOSE = (
    "Docker containers on each device, driven over the same SSH connection: list, start, "
    "stop, follow logs."
)
DETAILS = (
    "Coming here: docker ps per device and container actions, reached through the "
    "device's Docker socket forwarded over SSH (no open Docker port)."
)


class ContainersPane(Widget):
    """Containers: says what it will hold and which keys work meanwhile."""

    def __init__(self, fleet: Fleet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet

    def compose(self) -> ComposeResult:
        yield PaneIntro("Containers", PURPOSE, DETAILS, classes="pane-intro")
