"""Fixed containers fed to the real Containers pane, for pictures and table-grammar tests.

The app's one device is connected (to this machine: actions need a connected
device) and its Docker socket path leads nowhere; the pane's ContainerService is
the real one, closed once made, so nothing but the fed list reaches it. Uptimes
are set relative to now, in whole days and hours, so a picture shows the same
text on every run. Tests of
Docker itself (events, actions, logs) use the real dockerd: tests/test_containers_ui.py.
"""

from __future__ import annotations

import time

from textual.pilot import Pilot

from sparktui.core.device import LinkState
from sparktui.core.docker_info import ContainerInfo, ContainerStats
from sparktui.services.config import Settings
from sparktui.services.containers import Change, ContainerService, ServiceState
from sparktui.ui.app import SparkApp
from sparktui.ui.containers.pane import ContainersChanged, ContainersPane
from tests.infra.pilot import wait_until

GIB = 1024 ** 3
DAY = 86400.0


def sample_containers(now: float) -> list[tuple[ContainerInfo, ContainerStats | None]]:
    """What a GB10 runs: a model server or two, a web UI, a crashed notebook."""
    return [
        (ContainerInfo("0b3375d6f331" + "0" * 52, "ollama", "ollama/ollama:latest", "running",
                       started_at=now - 3 * DAY - 600,
                       ports=("0.0.0.0:11434->11434/tcp",), gpu="all", command="serve",
                       labels=(("org.opencontainers.image.version", "0.12.6"),)),
         ContainerStats(5.0, 5.1 * GIB, 128 * GIB)),
        (ContainerInfo("7c1d2e3f4a5b" + "1" * 52, "vllm-llama31-8b",
                       "nvcr.io/nvidia/vllm:25.09-py3", "running", health="healthy",
                       started_at=now - 3 * 3600 - 600, ports=("0.0.0.0:8000->8000/tcp",),
                       gpu="all", command="vllm serve meta-llama/Llama-3.1-8B-Instruct"),
         ContainerStats(141.9, 7.0 * GIB, 128 * GIB)),
        (ContainerInfo("a9b8c7d6e5f4" + "2" * 52, "open-webui",
                       "ghcr.io/open-webui/open-webui:ollama", "running",
                       started_at=now - 3 * DAY - 900,
                       ports=("0.0.0.0:12000->8080/tcp", "127.0.0.1:12001->9090/tcp"),
                       command="bash start.sh"),
         ContainerStats(1.5, 0.77 * GIB, 128 * GIB)),
        (ContainerInfo("3e4f5a6b7c8d" + "3" * 52, "comfyui-old",
                       "nvcr.io/nvidia/pytorch:25.09-py3", "exited", exit_code=137,
                       oom_killed=True, started_at=now - 2 * DAY,
                       finished_at=now - DAY - 600, ports=("0.0.0.0:8188->8188/tcp",),
                       gpu="all", command="python main.py --listen"),
         None),
    ]


def fed_app() -> SparkApp:
    """The real shell on one connected device, spark-01, whose Docker is never reached."""
    from tests.test_ui_shell import LocalConnector, link, make_app

    return make_app([link("spark-01", LocalConnector("spark-01"))],
                    settings=Settings(docker_socket="/nonexistent/sparktui-fed.sock"))


async def feed_containers(pilot: Pilot) -> tuple[ContainersPane, ContainerService]:
    """Open the Containers tab and hand its device's (closed) service the sample list."""
    app = pilot.app
    assert isinstance(app, SparkApp)
    await wait_until(pilot, lambda: app.fleet.links[0].status.state is LinkState.CONNECTED,
                     what="spark-01 connected")
    await pilot.press("3")
    pane = app.query_one(ContainersPane)
    await wait_until(pilot, lambda: bool(pane.services), what="a container service")
    service = pane.services[0]
    await service.close()  # its Docker is nowhere: nothing but the fed list may reach it
    now = time.time()
    samples = sample_containers(now)
    service.containers = {info.id: info for info, _ in samples}
    service.stats = {info.id: stats for info, stats in samples if stats is not None}
    service.engine_version, service.api_version = "28.3.3", "1.51"
    service.state = ServiceState.READY
    pane.post_message(ContainersChanged(service, Change("reset")))
    await wait_until(pilot, lambda: pane.table.row_count == 3, what="the fed rows")
    pane.table.focus()
    await pilot.pause()
    return pane, service
