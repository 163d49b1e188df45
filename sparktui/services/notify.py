"""Alerts outside the terminal: edge-triggered webhook notifications and a heartbeat.

AlertWatcher looks at every device of a Fleet each `check_s` and keeps the
set of active alerts: the TUI banner's own conditions (DeviceTelemetry's
alert_items, same thresholds from the same settings) plus "device down"
(no connection for `down_after_s`). A condition is announced once when it
has held for `hold_s`, and once more when it has been gone for `hold_s`:
one message at the start, one at the clear, nothing in between however its
figures move. A heartbeat every `heartbeat_s` says the watcher is alive (so
silence means trouble) and lists what is active.

Webhook formats: a generic JSON POST, ntfy (text body, Title/Priority/Tags
headers), Slack and Discord incoming webhooks. Messages go out in order from
one sender task with a few retries; a failed delivery is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from sparktui import __version__
from sparktui.core.aio import within
from sparktui.core.sanitize import strip_control
from sparktui.services.fleet import Fleet

log = logging.getLogger(__name__)

SEND_TRIES = 3
SEND_RETRY_S = 2.0


class WebhookFormat(enum.Enum):
    JSON = "json"
    NTFY = "ntfy"
    SLACK = "slack"
    DISCORD = "discord"

    @classmethod
    def guess(cls, url: str) -> WebhookFormat:
        """The format a webhook URL's service expects (JSON when unknown)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host == "hooks.slack.com":
            return cls.SLACK
        if host.endswith(("discord.com", "discordapp.com")) and "/api/webhooks/" in parts.path:
            return cls.DISCORD
        if host == "ntfy.sh" or host.startswith("ntfy."):
            return cls.NTFY
        return cls.JSON


class EventKind(enum.Enum):
    ALERT = "alert"  # a condition started
    CLEAR = "clear"  # it ended
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class Notification:
    kind: EventKind
    key: str | None  # the alert's key ("spark-1/memory"); None for a heartbeat
    text: str
    time: float  # time.time()
    active: tuple[str, ...] = ()  # the texts of every active alert (heartbeats)
    watcher: str = field(default_factory=socket.gethostname)

    @property
    def device(self) -> str | None:
        return None if self.key is None else self.key.split("/", 1)[0]

    def title(self) -> str:
        if self.kind is EventKind.ALERT:
            return f"sparktui: {self.device}: alert"
        if self.kind is EventKind.CLEAR:
            return f"sparktui: {self.device}: cleared"
        return f"sparktui watch on {self.watcher}: alive"

    def line(self) -> str:
        if self.kind is EventKind.ALERT:
            return f"🔴 {self.text}"
        if self.kind is EventKind.CLEAR:
            return f"🟢 cleared: {self.text}"
        if self.active:
            return f"💓 {self.watcher}: watching; active: " + "; ".join(self.active)
        return f"💓 {self.watcher}: watching; all clear"


def render(notification: Notification, fmt: WebhookFormat) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the POST for one notification."""
    import json

    line = strip_control(notification.line())
    if fmt is WebhookFormat.NTFY:
        priority = {EventKind.ALERT: "high", EventKind.CLEAR: "default",
                    EventKind.HEARTBEAT: "min"}[notification.kind]
        tags = {EventKind.ALERT: "rotating_light", EventKind.CLEAR: "white_check_mark",
                EventKind.HEARTBEAT: "heartbeat"}[notification.kind]
        # header values must be latin-1: the title is kept ASCII
        title = notification.title().encode("ascii", "replace").decode("ascii")
        return ({"Title": strip_control(title), "Priority": priority, "Tags": tags,
                 "Content-Type": "text/plain; charset=utf-8"}, line.encode("utf-8"))
    if fmt is WebhookFormat.SLACK:
        body = {"text": line}
    elif fmt is WebhookFormat.DISCORD:
        body = {"content": line[:2000], "allowed_mentions": {"parse": []}}
    else:
        body = {
            "event": notification.kind.value, "key": notification.key,
            "device": notification.device, "text": notification.text,
            "time": datetime.fromtimestamp(notification.time, UTC).isoformat(),
            "active": list(notification.active), "watcher": notification.watcher,
            "source": f"sparktui {__version__}",
        }
    return {"Content-Type": "application/json"}, json.dumps(body).encode("utf-8")


class EdgeTracker:
    """Active conditions -> start and clear events, each after `hold_s` of steadiness."""

    def __init__(self, hold_s: float = 0.0) -> None:
        self.hold_s = hold_s
        self.announced: dict[str, str] = {}  # key -> text when it was announced
        self._seen_since: dict[str, float] = {}  # present, not yet announced
        self._gone_since: dict[str, float] = {}  # announced, now absent

    def update(self, active: dict[str, str], now: float) -> list[tuple[EventKind, str, str]]:
        events: list[tuple[EventKind, str, str]] = []
        for key in list(self._seen_since):
            if key not in active:
                del self._seen_since[key]  # went away before it counted
        for key, text in active.items():
            self._gone_since.pop(key, None)
            if key in self.announced:
                continue
            since = self._seen_since.setdefault(key, now)
            if now - since >= self.hold_s:
                del self._seen_since[key]
                self.announced[key] = text
                events.append((EventKind.ALERT, key, text))
        for key in list(self.announced):
            if key in active:
                continue
            since = self._gone_since.setdefault(key, now)
            if now - since >= self.hold_s:
                del self._gone_since[key]
                events.append((EventKind.CLEAR, key, self.announced.pop(key)))
        return events


def fleet_alerts(fleet: Fleet, now: float, down_after_s: float,
                 adjust: Callable[[object], object] | None = None) -> dict[str, str]:
    """Every active condition of the fleet by key (the banner's, plus devices down)."""
    active: dict[str, str] = {}
    for device in fleet.devices:
        status = device.link.status
        # since it was last connected, not since the last retry's status (see the link)
        down_since = device.link.unreachable_since
        if down_since is not None and now - down_since >= down_after_s:
            active[f"{device.name}/down"] = f"{device.name}: unreachable ({status.describe()})"
            continue  # its last figures are stale: no alerts from them
        telemetry = device.telemetry.latest
        if adjust is not None:
            telemetry = adjust(telemetry)  # type: ignore[assignment]
        for alert in telemetry.alert_items:  # type: ignore[attr-defined]
            active[alert.key] = alert.text
    return active


class AlertWatcher:
    """Watches a fleet and sends notifications to one webhook."""

    def __init__(self, fleet: Fleet, url: str, fmt: WebhookFormat | None = None, *,
                 check_s: float = 1.0, hold_s: float = 10.0, down_after_s: float = 30.0,
                 heartbeat_s: float | None = 3600.0, transport=None,
                 adjust: Callable[[object], object] | None = None) -> None:
        self.fleet = fleet
        self.url = url
        self.format = fmt or WebhookFormat.guess(url)
        self.check_s = check_s
        self.down_after_s = down_after_s
        self.heartbeat_s = heartbeat_s
        self.tracker = EdgeTracker(hold_s)
        self.adjust = adjust  # tests and config changes: thresholds applied afresh
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[Notification] = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=15.0, transport=transport,
                                         headers={"User-Agent": f"sparktui/{__version__}"})

    def check(self, now_wall: float | None = None) -> None:
        """Evaluate once and queue what changed."""
        now = time.monotonic()
        active = fleet_alerts(self.fleet, now, self.down_after_s, self.adjust)
        wall = time.time() if now_wall is None else now_wall
        for kind, key, text in self.tracker.update(active, now):
            log.warning("%s: %s", kind.value, strip_control(text))
            self._queue.put_nowait(Notification(kind, key, text, wall))

    def heartbeat(self) -> None:
        active = tuple(self.tracker.announced.values())
        self._queue.put_nowait(Notification(EventKind.HEARTBEAT, None, "alive", time.time(),
                                            active))

    async def run(self, stop: asyncio.Event) -> None:
        sender = asyncio.get_running_loop().create_task(self._send_loop(), name="notify")
        next_beat = time.monotonic() + (self.heartbeat_s or 0)
        try:
            if self.heartbeat_s:
                self.heartbeat()  # the first one says the service started
            while not stop.is_set():
                self.check()
                if self.heartbeat_s and time.monotonic() >= next_beat:
                    self.heartbeat()
                    next_beat += self.heartbeat_s
                    next_beat = max(next_beat, time.monotonic())
                wait = self.check_s
                if self.heartbeat_s:
                    wait = min(wait, max(0.0, next_beat - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await within(stop.wait(), wait)
            with contextlib.suppress(TimeoutError):  # what is queued still goes out
                await within(self._queue.join(), 10)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await self._client.aclose()

    async def _send_loop(self) -> None:
        while True:
            notification = await self._queue.get()
            try:
                await self._deliver(notification)
            finally:
                self._queue.task_done()

    async def _deliver(self, notification: Notification) -> None:
        headers, body = render(notification, self.format)
        for attempt in range(1, SEND_TRIES + 1):
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < SEND_TRIES:
                await asyncio.sleep(SEND_RETRY_S * attempt)
        self.failed += 1
        log.error("could not deliver a %s notification to the webhook: %s",
                  notification.kind.value, problem)
