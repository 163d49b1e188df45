"""The devices of one `sparktui status` run: links, telemetry, and when they are done.

The same services as the TUI: make_link per device (the demo's too) and a
TelemetryService on each link. `snapshot()` runs them until every device has
settled (one complete GPU tick or a GPU problem, one host sample with a CPU
figure or a host problem, or a failed connection) or the timeout has passed;
`watch()` keeps them running and hands a fresh picture over every period.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sparktui.commands.report import DeviceReport
from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, LinkState, LinkStatus
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import TelemetryService

log = logging.getLogger(__name__)

SNAPSHOT_INTERVAL_S = 0.5  # telemetry period for one snapshot: CPU % over half a second
POLL_S = 0.05


@dataclass
class _Entry:
    link: DeviceLink
    service: TelemetryService
    # the first failed attempt before any connection, as the link reported it
    first_failure: LinkStatus | None = None

    @property
    def name(self) -> str:
        return self.link.name

    @property
    def ever_connected(self) -> bool:
        return self.link.generation > 0

    def settled(self) -> bool:
        """Nothing more worth waiting for: figures complete, or the device failed."""
        status = self.link.status
        if status.state is LinkState.FAILED:
            return True
        if not self.ever_connected:
            return self.first_failure is not None
        telemetry = self.service.latest
        gpu_done = bool(telemetry.gpus) or telemetry.gpu_problem is not None
        host = telemetry.host
        host_done = (host is not None and host.cpu_pct is not None) \
            or telemetry.host_problem is not None
        return gpu_done and host_done

    def missing(self) -> list[str]:
        telemetry = self.service.latest
        out = []
        if not telemetry.gpus and telemetry.gpu_problem is None:
            out.append("GPU figures")
        host = telemetry.host
        if (host is None or host.cpu_pct is None) and telemetry.host_problem is None:
            out.append("host figures")
        return out


class Session:
    """Every device of one run, opened together and always closed together."""

    def __init__(self, settings: Settings, specs: Sequence[DeviceSpec], *, demo: bool = False,
                 timeout: float = 10.0, accept_new_host_keys: bool = False,
                 watch: float | None = None) -> None:
        period = watch if watch else SNAPSHOT_INTERVAL_S
        self.settings = dataclasses.replace(
            settings, refresh_interval=min(settings.refresh_interval, period))
        self.specs = list(specs)
        self.want_demo = demo
        self.timeout = timeout
        self.accept_new_host_keys = accept_new_host_keys
        self.period = watch
        self.entries: list[_Entry] = []
        self.extra: list[DeviceReport] = []  # devices that failed before they had a link
        self._demo = None

    # -- lifecycle -----------------------------------------------------------
    async def open(self) -> None:
        from sparktui.transport.ssh_types import SSHOptions

        if self.want_demo:
            from sparktui.services.demo import DEMO_DEVICE_NAME, start_demo

            try:
                self._demo = demo = await start_demo()
            except Exception as exc:
                status = LinkStatus(LinkState.FAILED,
                                    reason=f"the simulated Spark did not start: "
                                           f"{type(exc).__name__}: {exc}")
                self.extra.append(DeviceReport(DEMO_DEVICE_NAME, status, None,
                                               status.describe()))
            else:
                self._add(make_link(demo.spec, self.settings, ssh_options=demo.ssh_options))
        options = SSHOptions(keepalive_interval=self.settings.keepalive_interval,
                             keepalive_count_max=self.settings.keepalive_count_max,
                             connect_timeout=self.timeout,
                             accept_new_host_keys=self.accept_new_host_keys)
        for spec in self.specs:
            # no host_key_prompt: the CLI never asks, an unknown key fails the device
            self._add(make_link(spec, self.settings, ssh_options=options))
        for entry in self.entries:
            entry.link.start()
            entry.service.start()

    def _add(self, link: DeviceLink) -> None:
        entry = _Entry(link, TelemetryService(link, self.settings))

        def on_status(status: LinkStatus) -> None:
            if (entry.first_failure is None and not entry.ever_connected
                    and status.failure is not None):
                entry.first_failure = status

        link.subscribe(on_status)
        self.entries.append(entry)

    async def close(self) -> None:
        entries, self.entries = self.entries, []
        results = await asyncio.gather(*(e.service.close() for e in entries),
                                       return_exceptions=True)
        results += await asyncio.gather(*(e.link.close() for e in entries),
                                        return_exceptions=True)
        demo, self._demo = self._demo, None
        if demo is not None:
            try:
                await demo.close()
            except Exception as exc:
                results.append(exc)
        for result in results:
            if isinstance(result, Exception):
                log.error("while closing: %s: %s", type(result).__name__, result)

    async def settle(self, timeout: float, stop: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not all(e.settled() for e in self.entries):
            if stop is not None and stop.is_set():
                return
            await asyncio.sleep(POLL_S)

    # -- pictures --------------------------------------------------------------
    def reports(self, *, final: bool) -> list[DeviceReport]:
        """One DeviceReport per device; `final`: a snapshot, so unfinished means failed."""
        return self.extra + [self._report(e, final) for e in self.entries]

    def _report(self, entry: _Entry, final: bool) -> DeviceReport:
        status = entry.link.status
        if not entry.ever_connected:
            if status.state is LinkState.FAILED:
                return DeviceReport(entry.name, status, None, status.describe())
            if not final:
                return DeviceReport(entry.name, status, None)  # still trying: say so
            first = entry.first_failure
            if first is not None:
                # a snapshot does not retry: the first failure is the answer
                failed = LinkStatus(LinkState.FAILED, attempt=first.attempt,
                                    reason=first.reason, failure=first.failure)
                return DeviceReport(entry.name, failed, None, failed.describe())
            return DeviceReport(entry.name, status, None,
                                f"no connection within {self.timeout:g} s "
                                f"({status.describe()})")
        telemetry = entry.service.latest
        problem = None
        if status.state is LinkState.FAILED:
            problem = status.describe()
        elif final and entry.missing():
            problem = f"no {' or '.join(entry.missing())} within {self.timeout:g} s"
            if status.state is not LinkState.CONNECTED:
                problem += f" ({status.describe()})"
        return DeviceReport(entry.name, status, telemetry, problem)

    # -- the two modes ----------------------------------------------------------
    async def snapshot(self) -> list[DeviceReport]:
        try:
            await self.open()
            await self.settle(self.timeout)
            return self.reports(final=True)
        finally:
            await self.close()

    async def watch(self, emit: Callable[[list[DeviceReport]], None]) -> int:
        """Hand `emit` (run in a worker thread) a picture every period until a signal."""
        assert self.period is not None
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            await self.open()
            await self.settle(self.timeout, stop)
            while not stop.is_set():
                # stdout may be a full pipe: write from a thread, not the event loop
                await asyncio.to_thread(emit, self.reports(final=False))
                with contextlib.suppress(TimeoutError):
                    await within(stop.wait(), self.period)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await self.close()
        return 0
