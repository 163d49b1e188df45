"""Telemetry hubs fed from elsewhere than SSH streams: a recording, or Prometheus.

The app shows telemetry through a TelemetryHub (attach a link, get a service
with latest/subscribe/history). These two hubs keep that contract, so the
Devices and Telemetry tabs show a replay (`sparktui --replay FILE`) or a
whole lab's Prometheus (`sparktui --prometheus URL`) without knowing it:
- ReplayHub plays a recording into ReplayTelemetry objects, one per device;
- PrometheusHub refreshes a PrometheusFleet and hands each device's figures
  and range-query history to the same kind of object.
Nothing here opens an SSH connection; with Prometheus, the app opens a
device's link when the user selects it (containers, tunnels, chat).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

from sparktui.services.config import Settings
from sparktui.services.link import DeviceLink
from sparktui.services.promsource import PrometheusFleet, PrometheusSource
from sparktui.services.replay import ReplayPlayer, ReplayTelemetry
from sparktui.services.telemetry import DeviceTelemetry, TelemetryHub

log = logging.getLogger(__name__)


class ReplayHub(TelemetryHub):
    """Plays one recording; starts when the app attaches its first device."""

    def __init__(self, player: ReplayPlayer, settings: Settings) -> None:
        # nothing recorded can be killed: the hub is read-only whatever the app says
        super().__init__(dataclasses.replace(settings, read_only=True))
        self.player = player
        self._task: asyncio.Task[None] | None = None

    def attach(self, link: DeviceLink) -> ReplayTelemetry:  # type: ignore[override]
        device = self.player.devices.get(link.name)
        if device is None:
            device = self.player.devices[link.name] = ReplayTelemetry(link.name, self.settings)
        self.services[link.name] = device  # type: ignore[assignment]
        if self._task is None:
            with contextlib.suppress(RuntimeError):  # no loop yet: the next attach starts it
                self._task = asyncio.get_running_loop().create_task(self._play(),
                                                                    name="replay")
        return device

    async def _play(self) -> None:
        try:
            await self.player.play()
        except Exception:
            log.exception("replaying %s failed", self.player.path)

    def watch_processes(self, watching: bool) -> None:
        self._watching_processes = watching

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class PrometheusHub(TelemetryHub):
    """Every device's telemetry from one Prometheus server, refreshed every period."""

    def __init__(self, source: PrometheusSource, settings: Settings, *,
                 period: float | None = None) -> None:
        # a kill needs SSH; the process list does not come through Prometheus
        super().__init__(dataclasses.replace(settings, read_only=True))
        self.fleet_view = PrometheusFleet(
            source, period=period or max(settings.refresh_interval, 2.0),
            history_seconds=settings.history_minutes * 60)
        self.fleet_view.subscribe(self._refreshed)
        self.on_problem: Callable[[str | None], None] | None = None
        self._last_problem: str | None = None
        self._history_asked: set[str] = set()
        self._loads: set[asyncio.Task[None]] = set()

    def attach(self, link: DeviceLink) -> ReplayTelemetry:  # type: ignore[override]
        device = self.services.get(link.name)
        if device is None:
            device = self.services[link.name] = ReplayTelemetry(  # type: ignore[assignment]
                link.name, self.settings)
        with contextlib.suppress(RuntimeError):
            self.fleet_view.start()
        return device  # type: ignore[return-value]

    def get(self, name: str):  # type: ignore[override]
        """The device's telemetry; the first ask (a chart about to be drawn) loads its
        history from Prometheus in the background."""
        device = self.services.get(name)
        if device is not None and name not in self._history_asked:
            self._history_asked.add(name)
            with contextlib.suppress(RuntimeError):  # no loop: nothing draws either
                task = asyncio.get_running_loop().create_task(
                    self._load_history(name), name=f"prometheus-history:{name}")
                self._loads.add(task)
                task.add_done_callback(self._loads.discard)
        return device

    async def _load_history(self, name: str) -> None:
        await self.fleet_view.load_history(name)
        self._refreshed(self.fleet_view)  # hand the new history to the device at once

    def _refreshed(self, view: PrometheusFleet) -> None:
        if view.problem != self._last_problem:
            self._last_problem = view.problem
            if view.problem:
                log.warning("Prometheus: %s", view.problem)
            if self.on_problem is not None:
                self.on_problem(view.problem)
        for name, remote in view.devices.items():
            if name not in self.services and self.on_device_found is not None:
                self.on_device_found(name)  # a Spark Prometheus began to scrape after start
            device = self.services.get(name)
            if isinstance(device, ReplayTelemetry):
                history = view.histories.get(name)
                device.show(remote.telemetry, history,
                            link_state=remote.status.state.value,
                            link_reason=remote.status.reason)

    def watch_processes(self, watching: bool) -> None:
        self._watching_processes = watching

    async def close(self) -> None:
        for task in list(self._loads):
            task.cancel()
        await self.fleet_view.close()


def latest_telemetry(hub: TelemetryHub, name: str) -> DeviceTelemetry | None:
    """The newest figures an external hub holds for a device (for the CLI and tests)."""
    device = hub.services.get(name)
    return None if device is None else device.latest
