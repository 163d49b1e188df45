"""Telemetry into a recording: what `sparktui record` and the flight recorder share.

A TelemetryRecorder listens to TelemetryServices (and DeviceLinks) and writes
what changed on each update as records (sparktui.core.recording) into a sink:
a RecordingWriter (one file) or a RecordingRing (bounded directory), or
anything with write/flush/close/due. A "gpus" record per complete tick, a
"host" record per host sample, "processes", "state" and "link" records when
they change. Times are wall-clock (time.time()) at the moment of the update.

    recorder = TelemetryRecorder(RecordingWriter(path))
    recorder.attach(service, link)       # any number of devices
    recorder.start()                     # flushes in a worker thread every FLUSH_S
    ...
    await recorder.close()               # last flush, file closed

Replay (sparktui.services.replay) turns the records back into DeviceTelemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

from sparktui import __version__
from sparktui.core.device import LinkStatus
from sparktui.core.recording import (
    KIND_LINK,
    KIND_META,
    KIND_PROCESSES,
    KIND_STATE,
    Record,
    gpus_record,
    host_record,
    to_jsonable,
)
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService

log = logging.getLogger(__name__)

FLUSH_CHECK_S = 1.0


class RecordSink(Protocol):
    @property
    def due(self) -> bool: ...
    def write(self, record: Record) -> None: ...
    def flush(self) -> object: ...
    def close(self) -> None: ...


def state_of(telemetry: DeviceTelemetry) -> dict[str, object]:
    """The rarely changing part of a device's telemetry, as a "state" record holds it."""
    return {"gpu_problem": telemetry.gpu_problem, "host_problem": telemetry.host_problem,
            "driver_version": telemetry.driver_version,
            "dropped_fields": list(telemetry.dropped_fields)}


class TelemetryRecorder:
    """Writes the telemetry of the attached devices into one sink."""

    def __init__(self, sink: RecordSink, *, wall_clock: Callable[[], float] = time.time,
                 meta: dict[str, object] | None = None) -> None:
        self.sink = sink
        self._wall = wall_clock
        self._last: dict[str, DeviceTelemetry] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.records = 0
        header = {"sparktui": __version__, "host": socket.gethostname(), **(meta or {})}
        self._write(Record(KIND_META, self._wall(), None, header))

    def _write(self, record: Record) -> None:
        self.sink.write(record)
        self.records += 1

    def attach(self, service: TelemetryService, link: DeviceLink | None = None) -> None:
        name = service.link.name
        self._unsubscribe.append(service.subscribe(lambda t: self.on_telemetry(t)))
        if link is not None:
            self._unsubscribe.append(link.subscribe(lambda s: self.on_link(name, s)))
            self.on_link(name, link.status)
        if service.latest.gpus or service.latest.host is not None:
            self.on_telemetry(service.latest)

    def on_link(self, device: str, status: LinkStatus) -> None:
        self._write(Record(KIND_LINK, self._wall(), device,
                           {"state": status.state.value, "reason": status.reason}))

    def on_telemetry(self, telemetry: DeviceTelemetry) -> None:
        """Record what changed since this device's previous update."""
        now = self._wall()
        device = telemetry.device
        prev = self._last.get(device)
        self._last[device] = telemetry
        if telemetry.gpus and (prev is None or telemetry.gpus is not prev.gpus):
            self._write(gpus_record(device, now, telemetry.gpus))
        if telemetry.host is not None and (prev is None or telemetry.host is not prev.host):
            self._write(host_record(device, now, telemetry.host))
        if prev is None or telemetry.processes != prev.processes:
            self._write(Record(KIND_PROCESSES, now, device,
                               [to_jsonable(p) for p in telemetry.processes]))
        state = state_of(telemetry)
        if prev is None or state != state_of(prev):
            self._write(Record(KIND_STATE, now, device, state))

    # -- flushing ------------------------------------------------------------
    def start(self) -> None:
        """Flush in a worker thread whenever the sink says a flush is due."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(),
                                                                   name="recorder-flush")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_CHECK_S)
            if self.sink.due:
                try:
                    await self.flush()
                except OSError:
                    log.exception("recording: flush failed")

    async def flush(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self.sink.flush)

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        async with self._lock:
            await asyncio.to_thread(self.sink.close)
