"""Group 6: Docker answers that are malformed must not make the container list loop.

A hostile Docker API of the suite's own (tests/reliability/hostile_docker.py)
lists one good container and rows that are not rows, and answers `inspect` of
the others with JSON that is not a container. The service must show the good
one, skip the rest with a log line, and not re-fetch the list again and again.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sparktui.core.device import DeviceSpec
from sparktui.services.config import Settings
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.devices import make_link
from tests.reliability.hostile_docker import GOOD_ID, HostileDocker


async def test_a_malformed_inspect_does_not_loop_the_list(tmp_path, caplog) -> None:
    server = await HostileDocker(str(tmp_path / "docker.sock")).start()
    link = make_link(DeviceSpec.parse("local"), Settings())
    service = ContainerService(link, socket_path=server.path, retry_interval=0.5)
    link.start()
    service.start()
    try:
        with caplog.at_level(logging.INFO, logger="sparktui"):
            deadline = time.monotonic() + 15
            while service.state is not ServiceState.READY:
                assert time.monotonic() < deadline, f"not ready: {service.problem}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(2)  # a window, not an event: a loop listed ~10 times in it
        lists = server.asked("/containers/json")
        print(f"list fetched {lists} times in 2 s; requests: {dict(server.requests)}")
        assert list(service.containers) == [GOOD_ID]
        assert lists == 1, f"the list was fetched {lists} times"
        assert "not a container" in caplog.text
    finally:
        await service.close()
        await link.close()
        await server.close()
