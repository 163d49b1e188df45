"""What a Spark serves besides SSH: the DGX Dashboard, a model server, Docker.

Started beside a simulated Spark and reachable only through its SSH
connection (port and socket forwards map to these loopback servers), as on a
real box where they listen on the device's localhost. Shared by the demo and
`sparktui sim`, so both show the same device.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any


@dataclass
class SimExtras:
    dashboard: Any = None  # asyncio.Server behind device port 11000
    openai: Any = None  # OpenAISimServer behind device port 8000
    docker: Any = None  # SimDockerEngine behind /var/run/docker.sock

    async def close(self) -> None:
        # in reverse order of start; each closes even if another fails
        errors: list[BaseException] = []
        for closer in (self.docker, self.openai):
            if closer is not None:
                try:
                    await closer.close()
                except Exception as exc:
                    errors.append(exc)
        if self.dashboard is not None:
            self.dashboard.close()
            with contextlib.suppress(Exception):
                await self.dashboard.wait_closed()
        if errors:
            raise errors[0]


async def start_extras(server: Any, workdir: str, *, token_rate: float = 60.0) -> SimExtras:
    """Start the dashboard, the model server and the Docker engine for `server`."""
    from sparktui.sim.dashboard import DASHBOARD_PORT, start_dashboard
    from sparktui.sim.docker_engine import start_docker_engine
    from sparktui.sim.openai_server import DEMO_PORT, start_openai_sim

    extras = SimExtras()
    try:
        extras.dashboard = await start_dashboard("127.0.0.1", 0)
        server.map_port(DASHBOARD_PORT, "127.0.0.1",
                        extras.dashboard.sockets[0].getsockname()[1])
        extras.openai = await start_openai_sim(server.device, token_rate=token_rate)
        server.map_port(DEMO_PORT, "127.0.0.1", extras.openai.port)
        extras.docker = await start_docker_engine(os.path.join(workdir, "docker.sock"),
                                                  hostname=server.device.hostname)
        # deployed servers' ports answer too; chat requests go to the model server
        await extras.docker.attach(server, model_server_port=extras.openai.port)
    except BaseException:
        await extras.close()
        raise
    return extras
