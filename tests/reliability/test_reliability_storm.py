"""A 64-device reconnect storm: every link drops and the devices return at once.

The links are real DeviceLinks; their transports are LocalTransports (no sshd,
so the test stays cheap on 2 CI cores). What is checked: every link comes
back, the reconnects are spread by the backoff's jitter instead of landing in
one instant, and the event loop (the UI's) never stalls meanwhile.
"""

from __future__ import annotations

import asyncio
import time

from sparktui.core.device import DeviceSpec, FailureKind, LinkState
from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
from sparktui.transport.local import LocalTransport

DEVICES = 64


class Fleet:
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


async def test_64_devices_drop_and_return_at_once() -> None:
    fleet = Fleet()
    backoff = Backoff(initial=0.2, factor=2.0, cap=1.0, jitter=0.25)
    links = [DeviceLink(DeviceSpec(name=f"spark-{i:02d}", host=f"spark-{i:02d}.lan"),
                        fleet.connector(f"spark-{i:02d}"), backoff=backoff)
             for i in range(DEVICES)]
    lag = 0.0
    running = True

    async def measure_lag() -> None:  # what a UI on this loop would feel
        nonlocal lag
        while running:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            lag = max(lag, time.monotonic() - before - 0.02)

    ticker = asyncio.get_running_loop().create_task(measure_lag())
    try:
        for link in links:
            link.start()
        await _all(links, LinkState.CONNECTED, 10)
        fleet.up = False
        for transport in list(fleet.transports):
            await transport.close()  # every connection drops at once
        await _all(links, LinkState.RECONNECTING, 10)
        await asyncio.sleep(1.5)  # a few failed rounds: the links' backoffs drift apart
        returned = time.monotonic()
        fleet.up = True
        await _all(links, LinkState.CONNECTED, 15)
        recovered = time.monotonic() - returned
        second = sorted(times[-1] for times in fleet.connected_at.values())
        spread = second[-1] - second[0]
        print(f"storm: back in {recovered:.2f} s, spread {spread:.2f} s, max loop lag "
              f"{lag * 1000:.0f} ms")
        assert all(len(times) == 2 for times in fleet.connected_at.values())
        assert recovered < 5.0, f"the fleet took {recovered:.1f} s to come back"
        assert spread > 0.1, f"all {DEVICES} reconnected within {spread * 1000:.0f} ms"
        assert lag < 0.5, f"the event loop stalled for {lag * 1000:.0f} ms"
    finally:
        running = False
        await ticker
        await asyncio.gather(*(link.close() for link in links))


async def _all(links: list[DeviceLink], state: LinkState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(link.status.state is state for link in links):
        if time.monotonic() > deadline:
            states = sorted({link.status.state.name for link in links})
            raise AssertionError(f"not every link {state.name} within {timeout} s: {states}")
        await asyncio.sleep(0.02)
