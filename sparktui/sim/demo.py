"""The demo: a simulated Spark on loopback, reached through the real SSH code path.

Nothing is special-cased for the demo past this module: the link connects with
asyncssh, checks the host key against a known_hosts file of the demo's own and
authenticates with a throwaway key, exactly as it would for a real device.
Besides SSH the device serves what a Spark serves on its localhost: the DGX
Dashboard (11000), a model server (8000) and Docker, reachable only through SSH
forwards. sparktui's command line hands `start_demo` to the services
(services.demo.provide): they never import the simulator.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass

from sparktui.core.device import DeviceSpec
from sparktui.sim.docker.engine import SimDockerEngine
from sparktui.sim.http import Exchange, HttpServer, Request
from sparktui.sim.servers.openai import DEMO_PORT, OpenAISimServer
from sparktui.sim.ssh.server import SimServer, start_sim
from sparktui.transport.ssh_types import SSHOptions

DEMO_DEVICE_NAME = "spark-demo"
DASHBOARD_PORT = 11000
DASHBOARD_PAGE = (b'<!doctype html>\n<html><head><meta charset="utf-8"><title>DGX Dashboard '
                  b"(simulated)</title></head>\n<body><h1>DGX Dashboard (simulated)</h1>\n"
                  b"<p>This page comes from sparktui's simulated DGX Spark, through a sparktui "
                  b"tunnel.</p>\n</body></html>\n")


async def _dashboard(request: Request, exchange: Exchange) -> None:
    """Just enough of the DGX Dashboard for a browser, curl and the tunnel probe."""
    if request.path == "/":
        await exchange.reply(200, DASHBOARD_PAGE, content_type="text/html; charset=utf-8")
    else:
        await exchange.reply(404, b"not found\n", content_type="text/plain")


@dataclass
class Demo:
    spec: DeviceSpec
    ssh_options: SSHOptions
    server: SimServer
    workdir: str
    #: what the device serves on its localhost
    dashboard: HttpServer | None = None
    openai: OpenAISimServer | None = None
    docker: SimDockerEngine | None = None

    async def close(self) -> None:
        try:
            for server in (self.docker, self.openai, self.dashboard):
                if server is not None:
                    await server.close()
        finally:
            await self.server.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            atexit.unregister(shutil.rmtree)


async def start_demo(port: int = 0, gpus: int = 1, name: str = DEMO_DEVICE_NAME,
                     token_rate: float = 60.0) -> Demo:
    """Start the simulated Spark in this event loop and describe how to reach it."""
    server = await start_sim("127.0.0.1", port, gpus=gpus)
    workdir = tempfile.mkdtemp(prefix="sparktui-demo-")
    # the workdir holds a throwaway private key: gone even when the UI dies with
    # its terminal (a hang-up) before Demo.close runs
    atexit.register(shutil.rmtree, workdir, True)
    identity, known_hosts = server.write_client_files(workdir)
    demo = Demo(DeviceSpec(name=name, host="127.0.0.1", port=server.port, user="demo",
                           identity_file=identity),
                SSHOptions(known_hosts=known_hosts, use_ssh_config=False), server, workdir)
    try:
        demo.dashboard = await HttpServer(_dashboard).listen()
        server.map_port(DASHBOARD_PORT, "127.0.0.1", demo.dashboard.port)
        demo.openai = await OpenAISimServer(server.device, token_rate=token_rate).start()
        server.map_port(DEMO_PORT, "127.0.0.1", demo.openai.port)
        demo.docker = await SimDockerEngine(os.path.join(workdir, "docker.sock")).start()
        # deployed servers' ports answer too; chat requests go to the model server
        await demo.docker.attach(server, model_server=demo.openai.answer)
    except BaseException:
        await demo.close()
        raise
    return demo
