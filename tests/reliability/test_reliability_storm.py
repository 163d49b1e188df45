"""A 64-device reconnect storm, driven through the real app's Devices tab.

64 real DeviceLinks over LocalTransports (no sshd, so the test stays cheap on
2 CI cores) in the real SparkApp under Pilot, the Devices tab showing 64 rows.
Every connection drops at once, the devices stay away for a few backoff
rounds, then all return at once. Checked (correctness only): every row says
reconnecting, then connected again; the reconnects are spread by the backoff's
jitter instead of landing in one instant; keys move the cursor while the storm
runs. The event loop's worst stall and the spread are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot

from sparktui.core.device import DeviceSpec, FailureKind, LinkState
from sparktui.services.config import Config, Settings
from sparktui.services.devices import Fleet
from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
from sparktui.services.telemetry import TelemetryHub, TelemetryService
from sparktui.transport.local import LocalTransport
from sparktui.ui.app import SparkApp
from sparktui.ui.panes import DevicesPane
from tests.infra.pilot import wait_until

DEVICES = 64
REPO_THEMES = Path(__file__).resolve().parents[2] / "themes"


class Devices:
    """64 devices that can all go away and come back at once."""

    def __init__(self) -> None:
        self.up = True
        self.connected_at: dict[str, list[float]] = {}
        self.transports: list[LocalTransport] = []

    def connector(self, name: str):
        async def connect() -> LocalTransport:
            await asyncio.sleep(0.01)  # a handshake's worth of waiting
            if not self.up:
                raise ConnectFailure(FailureKind.UNREACHABLE, f"{name} is down")
            transport = LocalTransport(name)
            self.transports.append(transport)
            self.connected_at.setdefault(name, []).append(time.monotonic())
            return transport
        return connect


class QuietHub(TelemetryHub):
    """Services that never start: 64 local telemetry streams are not the subject here."""

    def attach(self, link: DeviceLink) -> TelemetryService:
        service = self.services.get(link.name)
        if service is None:
            service = self.services[link.name] = TelemetryService(link, self.settings)
        return service


def _states(pane: DevicesPane) -> list[str]:
    cells = [pane.table.get_cell(str(i), "state") for i in range(DEVICES)]
    return [cell.plain if isinstance(cell, Text) else str(cell) for cell in cells]


async def _every_row(pilot: Pilot, pane: DevicesPane, word: str, timeout: float) -> None:
    await wait_until(pilot, lambda: all(word in s for s in _states(pane)), timeout,
                     f"every row {word}: {sorted(set(_states(pane)))}")


async def test_64_devices_drop_and_return_at_once_on_the_devices_tab() -> None:
    devices = Devices()
    backoff = Backoff(initial=0.2, factor=2.0, cap=1.0, jitter=0.25)
    links = [DeviceLink(DeviceSpec(name=f"spark-{i:02d}", host=f"spark-{i:02d}.lan"),
                        devices.connector(f"spark-{i:02d}"), backoff=backoff)
             for i in range(DEVICES)]
    settings = Settings()
    app = SparkApp(Config(path=Path("/nonexistent/sparktui.toml"), settings=settings),
                   fleet=Fleet(links), telemetry=QuietHub(settings), theme_dirs=[REPO_THEMES])
    lag = 0.0
    running = True

    async def measure_lag() -> None:  # what the UI on this loop feels
        nonlocal lag
        while running:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            lag = max(lag, time.monotonic() - before - 0.02)

    async with app.run_test(size=(120, 80)) as pilot:
        pane = app.query_one(DevicesPane)
        assert pane.table.row_count >= DEVICES
        await _every_row(pilot, pane, "connected", 20)
        ticker = asyncio.get_running_loop().create_task(measure_lag())
        try:
            devices.up = False
            for transport in list(devices.transports):
                await transport.close()  # every connection drops at once
            await _every_row(pilot, pane, "reconnecting", 10)
            # responsive mid-storm: the cursor follows the keys
            # (focus() takes a message hop: a key pressed before it lands goes elsewhere)
            pane.table.focus()
            await wait_until(pilot, lambda: pane.table.has_focus, 10, "the table's focus")
            start = pane.table.cursor_row
            for _ in range(3):
                await pilot.press("down")
            await wait_until(pilot, lambda: pane.table.cursor_row == start + 3, 10,
                             f"the cursor 3 rows down from {start}: {pane.table.cursor_row}")
            # a few failed rounds, so the links' backoffs drift apart (a time window,
            # not an event: the storm is what happens during it)
            await asyncio.sleep(1.5)
            returned = time.monotonic()
            devices.up = True
            await _every_row(pilot, pane, "connected", 20)
            recovered = time.monotonic() - returned
        finally:
            running = False
            await ticker
        second = sorted(times[-1] for times in devices.connected_at.values())
        spread = second[-1] - second[0]
        print(f"\nstorm through the Devices tab ({DEVICES} rows): all back on screen "
              f"{recovered:.2f} s after the return, reconnects spread over {spread:.2f} s, "
              f"event loop's worst stall {lag * 1000:.0f} ms")
        assert all(len(times) == 2 for times in devices.connected_at.values())
        assert all(link.status.state is LinkState.CONNECTED for link in links)
        assert spread > 0.1, f"all {DEVICES} reconnected within {spread * 1000:.0f} ms"
