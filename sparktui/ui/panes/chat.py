"""The Chat pane (a placeholder until its service lands).

Plug-in point: the shell builds
`ChatPane(fleet, id="chat")` once and mounts it in
the "Chat" tab. `fleet` is the session's Fleet; its `links` may grow after
mount (the session opens in a worker), and the pane is then sent a
`sparktui.ui.messages.FleetChanged`. Style it in chat.tcss beside this file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from sparktui.services.devices import Fleet
from sparktui.ui.panes.common import PaneIntro

PURPOSE = (
    "Talk to the models served on your devices (OpenAI-compatible endpoints such as vLLM,"
    " NIM or Ollama)."
)
DETAILS = (
    "Coming here: pick a device and a served model, then chat, over a tunnel the app "
    "opens for you."
)


class ChatPane(Widget):
    """Chat: says what it will hold and which keys work meanwhile."""

    def __init__(self, fleet: Fleet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet

    def compose(self) -> ComposeResult:
        yield PaneIntro("Chat", PURPOSE, DETAILS, classes="pane-intro")
