"""The tabs of the shell: one feature folder per tab, each with its pane.py and pane.tcss.

To plug a pane in, edit its entry here: the shell derives the tab, its key
binding (`app.tab.<id>`), its palette command and its stylesheet from it. A
pane is a Widget built as `widget(fleet, id=pane_id)`, where `fleet` is the
session's `sparktui.services.devices.Fleet`; when links are added after mount
the pane is posted a `sparktui.ui.messages.FleetChanged`.

Panes that show telemetry (`telemetry=True`) are built as
`widget(fleet, hub, id=pane_id)` with the session's
`sparktui.services.telemetry.TelemetryHub`, and implement `ShowsTelemetry`:
the app calls `show_telemetry(state)` for every `TelemetryUpdated`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual.widget import Widget

from sparktui.services.devices import Fleet
from sparktui.services.telemetry import TelemetryHub
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.containers.pane import ContainersPane
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.serving.pane import ServingPane
from sparktui.ui.telemetry.pane import TelemetryPane
from sparktui.ui.tunnels.pane import TunnelsPane
from sparktui.ui.widgets.pane_common import ShowsTelemetry

_UI = Path(__file__).parent


@dataclass(frozen=True)
class PaneSpec:
    id: str  # the TabPane id, and the suffix of its binding id
    title: str
    short_title: str  # for compact mode (a 50-column tmux side pane)
    key: str
    widget: Callable[..., Widget]  # called as widget(fleet, id=...)
    css_path: Path
    telemetry: bool = False  # built as widget(fleet, hub, id=...)
    #: what has the focus on entering the tab (a selector); None: the first focusable
    focus: str | None = None

    def build(self, fleet: Fleet, hub: TelemetryHub | None = None) -> Widget:
        if self.telemetry:
            return self.widget(fleet, hub, id=f"{self.id}-pane")
        return self.widget(fleet, id=f"{self.id}-pane")


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("devices", "Devices", "Dev", "1", DevicesPane, _UI / "devices/pane.tcss",
             telemetry=True),
    PaneSpec("telemetry", "Telemetry", "Tel", "2", TelemetryPane, _UI / "telemetry/pane.tcss",
             telemetry=True),
    PaneSpec("containers", "Containers", "Ctr", "3", ContainersPane, _UI / "containers/pane.tcss"),
    PaneSpec("tunnels", "Tunnels", "Tun", "4", TunnelsPane, _UI / "tunnels/pane.tcss"),
    # the prompt: a sentence typed on entering the tab is text, not keys
    PaneSpec("chat", "Chat", "Chat", "5", ChatPane, _UI / "chat/pane.tcss", focus="#chat-input"),
    # a tab, not a Chat sub-view: it is where a k9s/nvitop user looks for what a server does
    PaneSpec("serving", "Serving", "Srv", "6", ServingPane, _UI / "serving/pane.tcss",
             telemetry=True),
)

__all__ = ["PANES", "ChatPane", "ContainersPane", "DevicesPane", "PaneSpec", "ServingPane",
           "ShowsTelemetry", "TelemetryPane", "TunnelsPane"]
