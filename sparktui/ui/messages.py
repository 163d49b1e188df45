"""Messages the shell and its panes exchange."""

from __future__ import annotations

from textual.message import Message

from sparktui.core.device import LinkStatus
from sparktui.services.link import DeviceLink


class LinkStatusChanged(Message):
    """A device link published a new status.

    Posted from a link's status callback. A burst for the same device (a flapping
    link) coalesces into the latest one, so the UI redraws once per device.
    """

    def __init__(self, link: DeviceLink, status: LinkStatus) -> None:
        super().__init__()
        self.link = link
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinkStatusChanged) and message.link is self.link


class FleetChanged(Message, bubble=False):
    """Sent by the app to each pane when links were added to the fleet.

    Panes get the Fleet when they are built, but the session (the demo above
    all) is opened in a worker after they are mounted: this tells them to look
    at `fleet.links` again.
    """
