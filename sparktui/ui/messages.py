"""Messages the shell and its panes exchange."""

from __future__ import annotations

from textual.message import Message

from sparktui.core.device import LinkStatus
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import DeviceTelemetry


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


class TelemetryUpdated(Message):
    """A device's telemetry service published a new DeviceTelemetry.

    Posted to the app from the service's listener (on the event loop). Ticks
    queued behind a slow frame coalesce: only the newest per device is handled.
    """

    def __init__(self, telemetry: DeviceTelemetry) -> None:
        super().__init__()
        self.telemetry = telemetry

    @property
    def device(self) -> str:
        return self.telemetry.device

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TelemetryUpdated) and message.device == self.device


class DeployReady(Message):
    """A server deployed from the Containers tab answers, and the user wants it reachable.

    Posted to the app when the user accepts the offer after a deploy. The tunnels
    feature opens a tunnel to `port` on `device`; the chat feature adds `base_url`
    (as seen from the device, e.g. http://127.0.0.1:8000/v1) as an endpoint.
    `info` is the service's sparktui.services.deploy.DeployReady.
    """

    def __init__(self, device: str, port: int, base_url: str, info: object = None) -> None:
        super().__init__()
        self.device = device
        self.port = port
        self.base_url = base_url
        self.info = info
