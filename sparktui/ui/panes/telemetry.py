"""The Telemetry pane (a placeholder until its service lands).

Plug-in point: the shell builds
`TelemetryPane(fleet, id="telemetry")` once and mounts it in
the "Telemetry" tab. `fleet` is the session's Fleet; its `links` may grow after
mount (the session opens in a worker), and the pane is then sent a
`sparktui.ui.messages.FleetChanged`. Style it in telemetry.tcss beside this file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from sparktui.services.devices import Fleet
from sparktui.ui.panes.common import PaneIntro

PURPOSE = (
    "Live GPU telemetry for every device: utilisation, memory, temperature and power as "
    "charts, streamed from nvidia-smi over the device's connection."
)
DETAILS = (
    "Coming here: one chart per GPU, fed by a single long-running nvidia-smi stream per "
    "device that resumes by itself after a reconnect."
)


class TelemetryPane(Widget):
    """Telemetry: says what it will hold and which keys work meanwhile."""

    def __init__(self, fleet: Fleet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet

    def compose(self) -> ComposeResult:
        yield PaneIntro("Telemetry", PURPOSE, DETAILS, classes="pane-intro")
