"""The demo: a simulated Spark on loopback, reached through the real SSH code path.

Nothing is special-cased for the demo past this module: the link connects with
asyncssh, checks the host key against a known_hosts file of the demo's own and
authenticates with a throwaway key, exactly as it would for a real device.
Besides SSH the device serves what a Spark serves on its localhost: the DGX
Dashboard, a model server and Docker, reachable only through SSH forwards (port
and socket forwards map to these loopback servers). `sparktui sim` shows the
same device. sparktui's command line hands `start_demo` to the services
(services.demo.provide): they never import the simulator.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass

from sparktui.core.device import DeviceSpec
from sparktui.sim.docker.engine import SimDockerEngine, start_docker_engine
from sparktui.sim.http import HttpServer
from sparktui.sim.servers.dashboard import DASHBOARD_PORT, start_dashboard
from sparktui.sim.servers.openai import DEMO_PORT, OpenAISimServer, start_openai_sim
from sparktui.sim.ssh.server import SimServer, start_sim
from sparktui.transport.ssh_types import SSHOptions

DEMO_DEVICE_NAME = "spark-demo"


@dataclass
class Demo:
    spec: DeviceSpec
    ssh_options: SSHOptions
    server: SimServer
    workdir: str
    #: the dashboard, model server and Docker engine behind the simulated device
    extras: SimExtras | None = None

    @property
    def openai(self) -> OpenAISimServer | None:
        return self.extras.openai if self.extras is not None else None

    @property
    def docker(self) -> SimDockerEngine | None:
        return self.extras.docker if self.extras is not None else None

    async def close(self) -> None:
        try:
            if self.extras is not None:
                await self.extras.close()
        finally:
            await self.server.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            atexit.unregister(shutil.rmtree)


async def start_demo(port: int = 0, gpus: int = 1, kind: str = "gb10",
                     name: str = DEMO_DEVICE_NAME, token_rate: float = 60.0) -> Demo:
    """Start the simulated Spark in this event loop and describe how to reach it."""
    server = await start_sim("127.0.0.1", port, gpus=gpus, kind=kind)
    workdir = tempfile.mkdtemp(prefix="sparktui-demo-")
    # the workdir holds a throwaway private key: gone even when the UI dies with
    # its terminal (a hang-up) before Demo.close runs
    atexit.register(shutil.rmtree, workdir, True)
    try:
        identity, known_hosts = server.write_client_files(workdir)
    except BaseException:
        await server.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    spec = DeviceSpec(name=name, host="127.0.0.1", port=server.port, user="demo",
                      identity_file=str(identity))
    options = SSHOptions(known_hosts=str(known_hosts), use_ssh_config=False)
    demo = Demo(spec=spec, ssh_options=options, server=server, workdir=workdir)
    try:
        demo.extras = await start_extras(server, workdir, token_rate=token_rate)
    except BaseException:
        await demo.close()
        raise
    return demo


@dataclass
class SimExtras:
    dashboard: HttpServer | None = None  # behind device port 11000
    openai: OpenAISimServer | None = None  # behind device port 8000
    docker: SimDockerEngine | None = None  # behind /var/run/docker.sock

    async def close(self) -> None:
        # in reverse order of start; each closes even if another fails
        errors: list[BaseException] = []
        for closer in (self.docker, self.openai, self.dashboard):
            if closer is not None:
                try:
                    await closer.close()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


async def start_extras(server: SimServer, workdir: str, *, token_rate: float = 60.0) -> SimExtras:
    """Start the dashboard, the model server and the Docker engine for `server`."""

    extras = SimExtras()
    try:
        extras.dashboard = await start_dashboard("127.0.0.1", 0)
        server.map_port(DASHBOARD_PORT, "127.0.0.1", extras.dashboard.port)
        extras.openai = await start_openai_sim(server.device, token_rate=token_rate)
        server.map_port(DEMO_PORT, "127.0.0.1", extras.openai.port)
        extras.docker = await start_docker_engine(os.path.join(workdir, "docker.sock"),
                                                  hostname=server.device.hostname)
        # deployed servers' ports answer too; chat requests go to the model server
        await extras.docker.attach(server, model_server=extras.openai.answer)
    except BaseException:
        await extras.close()
        raise
    return extras
