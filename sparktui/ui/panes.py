"""The tabs of the shell: one feature folder per tab, each with its pane.py and pane.tcss.

To plug a pane in, edit its entry here: the shell derives the tab, its key
binding (`app.tab.<id>`), its palette command and its stylesheet from it. A
pane is a SessionPane built as `widget(session, id=pane_id)` with the app's
typed `sparktui.services.session.Session`; the shell binds its `compact` and
`focused_device` to the app's, and posts it a `sparktui.ui.messages.FleetChanged`
when devices come or go. Panes that implement `ShowsTelemetry` get every
device's newest telemetry through `show_telemetry(state)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sparktui.services.session import Session
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.containers.pane import ContainersPane
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.serving.pane import ServingPane
from sparktui.ui.telemetry.pane import TelemetryPane
from sparktui.ui.tunnels.pane import TunnelsPane
from sparktui.ui.widgets.pane_common import SessionPane, ShowsTelemetry

_UI = Path(__file__).parent


@dataclass(frozen=True)
class PaneSpec:
    id: str  # the TabPane id, and the suffix of its binding id
    title: str
    short_title: str  # for compact mode (a 50-column tmux side pane)
    key: str
    widget: Callable[..., SessionPane]  # called as widget(session, id=...)
    css_path: Path
    #: what has the focus on entering the tab (a selector); None: the first focusable
    focus: str | None = None

    def build(self, session: Session) -> SessionPane:
        return self.widget(session, id=f"{self.id}-pane")


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("devices", "Devices", "Dev", "1", DevicesPane, _UI / "devices/pane.tcss"),
    PaneSpec("telemetry", "Telemetry", "Tel", "2", TelemetryPane, _UI / "telemetry/pane.tcss"),
    PaneSpec("containers", "Containers", "Ctr", "3", ContainersPane, _UI / "containers/pane.tcss"),
    PaneSpec("tunnels", "Tunnels", "Tun", "4", TunnelsPane, _UI / "tunnels/pane.tcss"),
    # the prompt: a sentence typed on entering the tab is text, not keys
    PaneSpec("chat", "Chat", "Chat", "5", ChatPane, _UI / "chat/pane.tcss", focus="#chat-input"),
    # a tab, not a Chat sub-view: it is where a k9s/nvitop user looks for what a server does
    PaneSpec("serving", "Serving", "Srv", "6", ServingPane, _UI / "serving/pane.tcss"),
)

__all__ = ["PANES", "ChatPane", "ContainersPane", "DevicesPane", "PaneSpec", "ServingPane",
           "ShowsTelemetry", "TelemetryPane", "TunnelsPane"]
