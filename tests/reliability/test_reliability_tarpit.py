"""The SIGSTOP tarpit: a device whose sshd is frozen, not gone.

Every process of the test's sshd (the listener, each connection's sshd, what
they run) gets SIGSTOP. The kernel still ACKs our packets and still accepts new
TCP connections into the listener's backlog, so nothing fails fast: only the
keepalives notice. The real SparkApp must stay responsive (tabs switch while
the device is frozen; the event loop's worst stall is printed, not asserted),
mark the device stale with the age of its figures, and recover after SIGCONT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Static, TabbedContent

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.services.config import Config, Settings
from sparktui.ui.app import SparkApp
from sparktui.ui.telemetry.pane import TelemetryPane
from tests.infra import SshdServer
from tests.infra.common import alive, proc_id
from tests.infra.pilot import wait_until

pytestmark = pytest.mark.sshd

KEEPALIVE_S, KEEPALIVE_COUNT = 1.0, 2
STALE_BOUND_S = KEEPALIVE_S * KEEPALIVE_COUNT + 3.0


def _signal_all(sshd: SshdServer, signum: int) -> int:
    """Send `signum` to the listener and every session process; how many got it."""
    procs = [p for p in [proc_id(sshd.pid)] if p] if sshd.pid else []
    procs += sshd.sessions()
    sent = 0
    for pid_id in dict.fromkeys(procs):
        if alive(pid_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid_id[0], signum)
                sent += 1
    return sent


async def _loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.05)
        samples.append(loop.time() - before - 0.05)


async def test_a_sigstopped_sshd_is_stale_then_recovers(ssh_client, sshd: SshdServer,
                                                        fake_gpu, tmp_path: Path):
    fake_gpu("gb10")
    settings = Settings(refresh_interval=0.5, keepalive_interval=KEEPALIVE_S,
                        keepalive_count_max=KEEPALIVE_COUNT, reconnect_max_delay=2.0)
    app = SparkApp(Config(path=tmp_path / "config.toml", settings=settings),
                   [DeviceSpec.parse("spark-test")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        await wait_until(pilot, lambda: pane.focused_state is not None
                         and bool(pane.focused_state.gpus), timeout=20)
        link = app.fleet.links[0]
        lags: list[float] = []
        lag_done = asyncio.Event()
        lag_task = asyncio.create_task(_loop_lag(lags, lag_done))
        assert _signal_all(sshd, signal.SIGSTOP) >= 2  # the listener and our session
        frozen = time.monotonic()
        try:
            # the bound is printed; the wait has slack for a loaded CI machine
            await wait_until(pilot, lambda: pane.has_class("-stale"), timeout=2 * STALE_BOUND_S)
            noticed = time.monotonic() - frozen
            assert link.status.state is not LinkState.CONNECTED
            status = str(app.query_one("#tel-status", Static).render())
            assert "STALE: last sample" in status and "s ago" in status, status
            # responsive while the device is frozen: keys switch tabs at once
            tabs = app.query_one(TabbedContent)
            for key, tab in (("1", "devices"), ("2", "telemetry"), ("1", "devices")):
                await pilot.press(key)
                await wait_until(pilot, lambda t=tab: tabs.active == t, timeout=2)
        finally:
            _signal_all(sshd, signal.SIGCONT)
        thawed = time.monotonic()
        await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED, timeout=20)
        await pilot.press("2")
        await wait_until(pilot, lambda: not pane.has_class("-stale"), timeout=20)
        lag_done.set()
        await lag_task
        print(f"\nSIGSTOP tarpit: stale after {noticed:.2f} s (bound {STALE_BOUND_S:.0f} s), "
              f"live again {time.monotonic() - thawed:.2f} s after SIGCONT; event loop's "
              f"worst stall while frozen {max(lags) * 1000:.0f} ms")
