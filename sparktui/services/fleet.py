"""A headless fleet: links, telemetry and (optionally) containers for many devices.

What `sparktui exporter`, `sparktui watch` and `sparktui record` share: the
same services as the TUI (make_link, TelemetryService, ContainerService), run
without a screen, plus the collector's own health per device (samples
counted, reconnects, when the last sample came) for the exporter to publish.
No Textual; the commands layer parses arguments and calls this.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, LinkState, LinkStatus
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService

log = logging.getLogger(__name__)


@dataclass
class CollectorHealth:
    """How well the streams of one device are doing, as the exporter reports it."""

    gpu_samples: int = 0  # complete nvidia-smi ticks received
    host_samples: int = 0
    connects: int = 0  # successful connections (the first included)
    last_gpu_sample: float | None = None  # time.monotonic() of the last tick
    last_host_sample: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


@dataclass
class FleetDevice:
    link: DeviceLink
    telemetry: TelemetryService
    health: CollectorHealth
    containers: object | None = None  # a ContainerService when containers are followed
    serving: object | None = None  # a ServingMonitor when model endpoints are followed
    serving_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.link.name


class Fleet:
    """Every device of one headless run, opened together and closed together."""

    def __init__(self, settings: Settings, specs: Sequence[DeviceSpec], *,
                 containers: bool = False, serving: bool = False,
                 accept_new_host_keys: bool = False, demo: bool = False) -> None:
        self.settings = settings
        self.specs = list(specs)
        self.follow_containers = containers
        self.follow_serving = serving
        self.accept_new_host_keys = accept_new_host_keys
        self.want_demo = demo
        self.devices: list[FleetDevice] = []
        self._listeners: list[Callable[[FleetDevice, DeviceTelemetry], None]] = []
        self._demo = None

    def subscribe(self, listener: Callable[[FleetDevice, DeviceTelemetry], None]) -> None:
        """`listener(device, telemetry)` after every telemetry update of any device."""
        self._listeners.append(listener)

    async def open(self) -> None:
        from sparktui.transport.ssh_types import SSHOptions

        if self.want_demo:
            from sparktui.services.demo import start_demo

            self._demo = demo = await start_demo()
            self._add(make_link(demo.spec, self.settings, ssh_options=demo.ssh_options))
        options = SSHOptions(keepalive_interval=self.settings.keepalive_interval,
                             keepalive_count_max=self.settings.keepalive_count_max,
                             accept_new_host_keys=self.accept_new_host_keys)
        for spec in self.specs:
            self._add(make_link(spec, self.settings, ssh_options=options))
        for device in self.devices:
            device.link.start()
            device.telemetry.start()
            if device.containers is not None:
                device.containers.start()  # type: ignore[attr-defined]
            if self.follow_serving:
                device.serving_task = asyncio.get_running_loop().create_task(
                    follow_serving(device), name=f"serving:{device.name}")

    def _add(self, link: DeviceLink) -> None:
        service = TelemetryService(link, self.settings)
        # nobody looks at a process list here: the GPU processes' memory share is polled
        # at the idle period (30 s), not every 3 s (an nvidia-smi start on the device)
        service.watch_processes(False)
        device = FleetDevice(link, service, CollectorHealth())
        if self.follow_containers:
            from sparktui.services.containers import ContainerService

            device.containers = ContainerService(link, socket_path=self.settings.docker_socket,
                                                 read_only=True)
        previous: list[DeviceTelemetry | None] = [None]

        def on_telemetry(telemetry: DeviceTelemetry) -> None:
            before, previous[0] = previous[0], telemetry
            now = time.monotonic()
            if telemetry.gpus and (before is None or telemetry.gpus is not before.gpus):
                device.health.gpu_samples += 1
                device.health.last_gpu_sample = now
            if telemetry.host is not None and (before is None or telemetry.host is not before.host):
                device.health.host_samples += 1
                device.health.last_host_sample = now
            for listener in list(self._listeners):
                try:
                    listener(device, telemetry)
                except Exception:
                    log.exception("fleet listener failed for %s", device.name)

        def on_status(status: LinkStatus) -> None:
            if status.state is LinkState.CONNECTED:
                device.health.connects += 1

        service.subscribe(on_telemetry)
        link.subscribe(on_status)
        self.devices.append(device)

    async def close(self) -> None:
        devices, self.devices = self.devices, []
        for device in devices:
            if device.serving_task is not None:
                device.serving_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await device.serving_task
        closers = [d.containers.close() for d in devices  # type: ignore[attr-defined]
                   if d.containers is not None]
        closers += [d.telemetry.close() for d in devices]
        results = await asyncio.gather(*closers, return_exceptions=True)
        results += await asyncio.gather(*(d.link.close() for d in devices),
                                        return_exceptions=True)
        demo, self._demo = self._demo, None
        if demo is not None:
            results.append(await _quietly(demo.close()))
        for result in results:
            if isinstance(result, Exception):
                log.error("while closing: %s: %s", type(result).__name__, result)


async def follow_serving(device: FleetDevice) -> None:
    """Keep a ServingMonitor on the device's model endpoints.

    Endpoints are found on every new connection, and again when the device's
    containers change (a model server started or stopped): discovery asks
    Docker for published ports, so it is not repeated on a timer.
    """
    from sparktui.services.endpoints import EndpointConnector
    from sparktui.services.serving import ServingMonitor

    link = device.link
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    monitor = ServingMonitor(connector)
    device.serving = monitor
    changed = asyncio.Event()
    unsubscribe = None
    if device.containers is not None:
        unsubscribe = device.containers.subscribe(  # type: ignore[attr-defined]
            lambda change: changed.set() if change.kind in ("upsert", "remove", "reset")
            else None)
    monitor.start()
    try:
        async for transport in link.sessions():
            changed.set()
            while transport.is_alive():
                if changed.is_set():
                    changed.clear()
                    try:
                        found = await connector.discover_device(link)
                        monitor.set_endpoints(found.endpoints)
                    except Exception:
                        log.exception("%s: finding model endpoints failed", device.name)
                # woken by container changes; the timeout only notices a lost connection
                with contextlib.suppress(TimeoutError):
                    await within(changed.wait(), ALIVE_CHECK_S)
                    await asyncio.sleep(SERVING_SETTLE_S)  # a burst of events: once
    finally:
        if unsubscribe is not None:
            unsubscribe()
        await monitor.close()
        await connector.close()


SERVING_SETTLE_S = 2.0
ALIVE_CHECK_S = 5.0


async def _quietly(awaitable) -> Exception | None:
    try:
        await awaitable
    except Exception as exc:
        return exc
    return None


def with_interval(settings: Settings, interval: float | None) -> Settings:
    """The settings with the telemetry period a command asked for."""
    if interval is None:
        return settings
    return dataclasses.replace(settings, refresh_interval=interval)
