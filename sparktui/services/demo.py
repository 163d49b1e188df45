"""The demo: a simulated Spark on loopback, reached through the real SSH code path.

Nothing is special-cased for the demo past this file: the link connects with
asyncssh, checks the host key against a known_hosts file of the demo's own and
authenticates with a throwaway key, exactly as it would for a real device.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

from sparktui.core.device import DeviceSpec
from sparktui.transport.ssh import SSHOptions

DEMO_DEVICE_NAME = "spark-demo"


@dataclass
class Demo:
    spec: DeviceSpec
    ssh_options: SSHOptions
    server: object  # sparktui.sim.server.SimServer
    workdir: str
    #: the simulated DGX Dashboard the sim's port 11000 leads to (an asyncio.Server)
    dashboard: object | None = None
    #: the sim's model server (sparktui.sim.openai_server), at localhost:8000 on the device
    openai: object | None = None
    #: the simulated Docker Engine (sparktui.sim.docker_engine) behind the device's docker.sock
    docker: object | None = None

    async def close(self) -> None:
        if self.docker is not None:
            await self.docker.close()  # type: ignore[attr-defined]
        if self.openai is not None:
            await self.openai.close()  # type: ignore[attr-defined]
        if self.dashboard is not None:
            self.dashboard.close()  # type: ignore[attr-defined]
        await self.server.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.workdir, ignore_errors=True)


async def start_demo(port: int = 0, gpus: int = 1, kind: str = "gb10",
                     name: str = DEMO_DEVICE_NAME, token_rate: float = 60.0) -> Demo:
    """Start the simulated Spark in this event loop and describe how to reach it."""
    from sparktui.sim.dashboard import DASHBOARD_PORT, start_dashboard
    from sparktui.sim.server import start_sim

    server = await start_sim("127.0.0.1", port, gpus=gpus, kind=kind)
    workdir = tempfile.mkdtemp(prefix="sparktui-demo-")
    dashboard = None
    try:
        identity, known_hosts = server.write_client_files(workdir)
        # so the Dashboard tunnel preset has something to show in the demo
        dashboard = await start_dashboard("127.0.0.1", 0)
        server.map_port(DASHBOARD_PORT, "127.0.0.1", dashboard.sockets[0].getsockname()[1])
    except BaseException:
        if dashboard is not None:
            dashboard.close()
        await server.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    spec = DeviceSpec(name=name, host="127.0.0.1", port=server.port, user="demo",
                      identity_file=str(identity))
    options = SSHOptions(known_hosts=str(known_hosts), use_ssh_config=False)
    demo = Demo(spec=spec, ssh_options=options, server=server, workdir=workdir,
                dashboard=dashboard)
    try:
        # a model server the Chat tab finds at localhost:8000 on the device, as on a Spark
        from sparktui.sim.openai_server import DEMO_PORT, start_openai_sim

        demo.openai = await start_openai_sim(server.device, token_rate=token_rate)
        server.map_port(DEMO_PORT, "127.0.0.1", demo.openai.port)  # type: ignore[attr-defined]
        # containers for the Containers tab, through the device's forwarded docker.sock
        from sparktui.sim.docker_engine import start_docker_engine

        demo.docker = engine = await start_docker_engine(
            os.path.join(workdir, "docker.sock"), hostname=server.device.hostname)
        # deployed servers' ports answer too; chat requests go to the model server
        await engine.attach(server, model_server_port=demo.openai.port)  # type: ignore[attr-defined]
    except BaseException:
        await demo.close()
        raise
    return demo
