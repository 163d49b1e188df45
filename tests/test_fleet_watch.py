"""`sparktui watch`: edge-triggered webhook notifications and a heartbeat, to a real receiver.

The watcher runs on a real sshd with the stand-in nvidia-smi and posts to an
HTTP server on loopback. Memory runs low when the floor is raised above what
the device has (the same comparison the banner makes) and recovers when it is
put back; the device goes down when its sshd stops and comes back with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import stat
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.config import Settings
from sparktui.services.fleet import Fleet
from sparktui.services.notify import (
    AlertWatcher,
    EdgeTracker,
    EventKind,
    Notification,
    WebhookFormat,
    render,
)
from tests.infra import REPO_ROOT, ClientSetup

FAST = Settings(refresh_interval=0.3, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=0.5)
HEARTBEAT_S = 1.0


class Receiver:
    """A webhook on loopback; each POST lands in an asyncio queue with its arrival time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.monotonic()
                receiver.loop.call_soon_threadsafe(receiver.queue.put_nowait,
                                                   (arrived, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hook"
        self.heartbeats: list[float] = []

    async def next_event(self, timeout: float = 30.0) -> dict:
        """The next alert or clear (heartbeats are noted on the way)."""
        while True:
            arrived, message = await within(self.queue.get(), timeout)
            if message["event"] == "heartbeat":
                self.heartbeats.append(arrived)
                continue
            return message

    async def heartbeats_seen(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` heartbeats arrived; any alert on the way fails the test."""
        while len(self.heartbeats) < count:
            arrived, message = await within(self.queue.get(), timeout)
            assert message["event"] == "heartbeat", f"unexpected {message}"
            self.heartbeats.append(arrived)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.sshd
async def test_one_message_at_start_one_at_clear_and_heartbeats(
        ssh_client: ClientSetup, sshd, fake_gpu) -> None:
    fake_gpu("gb10")
    receiver = Receiver()
    fleet = Fleet(FAST, [DeviceSpec.parse("spark-test")])
    floor = [1]  # bytes: nothing is below it

    def thresholds(telemetry):
        # the GPU figures of the stand-in wander across the banner's other thresholds:
        # this test is about memory and reachability, so only those may alert
        return dataclasses.replace(telemetry, gpus=(), memory_floor_bytes=floor[0])

    watcher = AlertWatcher(fleet, receiver.url, WebhookFormat.JSON, check_s=0.05, hold_s=0,
                           down_after_s=0.5, heartbeat_s=HEARTBEAT_S, adjust=thresholds)
    stop = asyncio.Event()
    host_seen = asyncio.Event()
    fleet.subscribe(lambda device, telemetry: telemetry.host and host_seen.set())
    await fleet.open()
    await within(host_seen.wait(), 30)  # connected, figures flowing
    task = asyncio.get_running_loop().create_task(watcher.run(stop))
    try:
        await receiver.heartbeats_seen(1)  # the service says it started
        floor[0] = 1 << 50  # memory is now below the floor: the banner's condition
        started = await receiver.next_event()
        assert (started["event"], started["key"], started["device"]) == \
            ("alert", "spark-test/memory", "spark-test")
        assert "GiB memory available" in started["text"]
        beats = len(receiver.heartbeats)
        await receiver.heartbeats_seen(beats + 2)  # figures move; nothing is sent but beats
        floor[0] = 1
        cleared = await receiver.next_event()
        assert (cleared["event"], cleared["key"]) == ("clear", "spark-test/memory")

        sshd.stop(kill_sessions=True)  # the device goes away
        down = await receiver.next_event()
        assert (down["event"], down["key"]) == ("alert", "spark-test/down")
        sshd.restart()
        back = await receiver.next_event()
        assert (back["event"], back["key"]) == ("clear", "spark-test/down")
    finally:
        stop.set()
        await task
        await fleet.close()
        receiver.close()
    gaps = [b - a for a, b in zip(receiver.heartbeats, receiver.heartbeats[1:], strict=False)]
    assert len(gaps) >= 2
    assert all(0.7 * HEARTBEAT_S <= gap <= 3 * HEARTBEAT_S for gap in gaps), gaps
    assert watcher.failed == 0


def test_edges_wait_for_the_hold_both_ways() -> None:
    tracker = EdgeTracker(hold_s=10)
    assert tracker.update({"a/memory": "low"}, 0) == []
    assert tracker.update({}, 5) == []  # a blip shorter than the hold is never sent
    assert tracker.update({"a/memory": "low"}, 6) == []
    assert tracker.update({"a/memory": "lower"}, 16) == [(EventKind.ALERT, "a/memory", "lower")]
    assert tracker.update({"a/memory": "lowest"}, 20) == []  # the figures move: silence
    assert tracker.update({}, 21) == []
    assert tracker.update({"a/memory": "low"}, 25) == []  # back before the clear counted
    assert tracker.update({}, 26) == []
    assert tracker.update({}, 36) == [(EventKind.CLEAR, "a/memory", "lower")]


def test_formats() -> None:
    alert = Notification(EventKind.ALERT, "spark-1/memory", "spark-1: only 3.0 GiB\x1b[31m",
                         0.0, watcher="box")
    headers, body = render(alert, WebhookFormat.NTFY)
    assert headers["Priority"] == "high" and headers["Title"] == "sparktui: spark-1: alert"
    assert b"\x1b" not in body and "spark-1: only 3.0 GiB" in body.decode()
    assert json.loads(render(alert, WebhookFormat.SLACK)[1])["text"].endswith("3.0 GiB")
    discord = json.loads(render(alert, WebhookFormat.DISCORD)[1])
    assert discord["allowed_mentions"] == {"parse": []}
    generic = json.loads(render(alert, WebhookFormat.JSON)[1])
    assert generic["event"] == "alert" and generic["time"].startswith("1970-01-01T00:00:00")
    assert WebhookFormat.guess("https://hooks.slack.com/services/T/B/x") is WebhookFormat.SLACK
    assert WebhookFormat.guess("https://discord.com/api/webhooks/1/x") is WebhookFormat.DISCORD
    assert WebhookFormat.guess("https://ntfy.sh/my-sparks") is WebhookFormat.NTFY
    assert WebhookFormat.guess("http://127.0.0.1:9/hook") is WebhookFormat.JSON


def test_install_writes_a_private_unit_running_the_same_command(tmp_path) -> None:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "sparktui", "watch", "--install", "spark-1",
         "--notify", "https://ntfy.sh/my sparks%", "--heartbeat", "600"],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "systemd" / "user" / "sparktui-watch.service"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o600
    text = unit.read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_line.endswith(' watch spark-1 --notify "https://ntfy.sh/my sparks%%" '
                              '--heartbeat 600')
    assert "--install" not in exec_line and "WantedBy=default.target" in text
    assert "systemctl --user enable --now sparktui-watch.service" in proc.stdout


async def test_a_device_retrying_faster_than_the_alert_delay_is_still_down() -> None:
    # defect: "down" counted from the last status, and every retry publishes one, so a
    # link retrying more often than down_after_s (the default 30 s backoff cap against
    # the default 30 s delay, often) never alerted at all
    from types import SimpleNamespace

    from sparktui.core.device import FailureKind, LinkState
    from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
    from sparktui.services.notify import fleet_alerts

    attempts = asyncio.Queue()

    async def refused():  # the device is off: every attempt fails at once
        attempts.put_nowait(None)
        raise ConnectFailure(FailureKind.UNREACHABLE, "connection refused")

    link = DeviceLink(DeviceSpec(name="spark-off", host="spark-off.lan"), refused,
                      backoff=Backoff(initial=0.05, cap=0.1))
    fleet = SimpleNamespace(devices=[SimpleNamespace(name="spark-off", link=link)])
    link.start()
    try:
        await within(attempts.get(), 10)
        assert link.unreachable_since is not None
        # retries every 0.1 s or so, until the last status is well younger than the outage
        while True:
            await within(attempts.get(), 10)
            now = time.monotonic()
            outage, last_status = now - link.unreachable_since, now - link.status.since
            if outage >= 0.5 and last_status < outage - 0.2:
                break
        assert link.status.state is not LinkState.CONNECTED
        # an alert delay the outage has passed, but the last retry's status has not
        assert "spark-off/down" in fleet_alerts(fleet, now, down_after_s=last_status + 0.1)
    finally:
        await link.close()
