"""Honest state: a device dropped mid-session is marked stale, with the age of its figures.

The real SparkApp against a real sshd (the stand-in nvidia-smi on its PATH);
the sshd is stopped and its sessions killed while the app watches. Within the
keepalive bound the Telemetry tab says STALE with the age of the last sample,
dims its figures and refuses `x` (kill) with the reason; the Devices tab no
longer shows the old utilisation as live next to "reconnecting".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Static

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.services.config import Config, Settings
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.telemetry.pane import TelemetryPane
from tests.infra import SshdServer
from tests.infra.pilot import wait_until

pytestmark = pytest.mark.sshd

KEEPALIVE_S, KEEPALIVE_COUNT = 1.0, 2
#: a dead peer is noticed within interval * count; a tick of the stale timer on top
STALE_BOUND_S = KEEPALIVE_S * KEEPALIVE_COUNT + 3.0


async def test_a_dropped_device_is_marked_stale_on_every_tab(ssh_client, sshd: SshdServer,
                                                             fake_gpu, tmp_path: Path):
    fake_gpu("gb10")
    settings = Settings(refresh_interval=0.5, keepalive_interval=KEEPALIVE_S,
                        keepalive_count_max=KEEPALIVE_COUNT, reconnect_max_delay=30.0)
    app = SparkApp(Config(path=tmp_path / "config.toml", settings=settings),
                   [DeviceSpec.parse("spark-test")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        await wait_until(pilot, lambda: pane.focused_state is not None
                         and bool(pane.focused_state.gpus), timeout=20)
        assert not pane.has_class("-stale")
        assert app.screen.active_bindings["x"].enabled  # kill is offered while connected

        sshd.stop(kill_sessions=True)
        dropped = time.monotonic()
        link = app.fleet.links[0]
        await wait_until(pilot, lambda: pane.has_class("-stale"), timeout=STALE_BOUND_S)
        noticed = time.monotonic() - dropped
        assert link.status.state is not LinkState.CONNECTED
        status = str(app.query_one("#tel-status", Static).render())
        assert "STALE: last sample" in status and "s ago" in status, status
        # no kill on a device that is gone: disabled, and the key says why
        assert not app.screen.active_bindings["x"].enabled
        await pilot.press("x")
        await wait_until(pilot, lambda: any("not connected" in n.message
                                            for n in app._notifications))

        await pilot.press("1")
        devices = app.query_one(DevicesPane)
        await wait_until(pilot, lambda: "figures stale" in str(
            app.query_one("#device-detail", Static).render()), timeout=STALE_BOUND_S)
        util = devices.table.get_cell("0", "util")
        assert isinstance(util, Text) and util.style and "strike" in str(util.style), util
        print(f"\ndevice drop marked stale after {noticed:.2f} s "
              f"(bound {STALE_BOUND_S:.0f} s)")
