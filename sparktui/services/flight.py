"""The flight recorder: the last minutes of every device's telemetry, on this machine's disk.

sparktui watches from outside the box, so when a Spark freezes it still holds
what the box did just before. Per device, a bounded ring of gzip'd JSON-lines
segments (services.recordings.RecordingRing, the format of core.recording)
gets every GPU tick, host sample (memory, PSI, buddyinfo, rails), process list,
link change and event (guard steps, Xids, power advice). A crash of sparktui
loses at most the last flush (FLUSH_S); the ring never grows past
`flight_recorder_minutes` worth of bytes.

Kept under data_dir()/flight/<device>/; `read_window` gives the records of a
time range back (the post-mortem's charts).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

from sparktui.core.recording import KIND_EVENT, Record
from sparktui.services.config import Settings, data_dir
from sparktui.services.link import DeviceLink
from sparktui.services.recorder import TelemetryRecorder
from sparktui.services.recordings import RecordingRing, read_records
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService

log = logging.getLogger(__name__)

#: compressed bytes one device's minute takes, measured with the simulated Spark
#: (about 20 KiB); the ring is sized with room to spare
BYTES_PER_MINUTE = 48 * 1024
SEGMENTS = 6
MIN_SEGMENT_BYTES = 16 * 1024


def flight_root() -> Path:
    return data_dir() / "flight"


def device_dir(device: str, root: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", device)[:120] or "_"
    return (root or flight_root()) / safe


def ring_size(minutes: float) -> tuple[int, int]:
    """(segment bytes, segments) holding at least `minutes` of one device."""
    total = max(1.0, minutes) * BYTES_PER_MINUTE
    # one segment is the one being written: the others must hold the window
    return max(MIN_SEGMENT_BYTES, int(total / (SEGMENTS - 1)) + 1), SEGMENTS


class FlightRecorder:
    """One ring per device, fed by that device's telemetry."""

    def __init__(self, settings: Settings, *, root: Path | None = None) -> None:
        self.settings = settings
        self.root = root or flight_root()
        self.recorders: dict[str, TelemetryRecorder] = {}
        self._last_event: dict[str, object] = {}  # device -> the last event recorded

    @property
    def enabled(self) -> bool:
        return self.settings.flight_recorder_minutes > 0

    def attach(self, service: TelemetryService, link: DeviceLink | None = None) -> None:
        name = service.link.name
        if not self.enabled or name in self.recorders:
            return
        segment, count = ring_size(self.settings.flight_recorder_minutes)
        try:
            ring = RecordingRing(device_dir(name, self.root), segment_bytes=segment,
                                 max_segments=count)
        except OSError as exc:  # a full or read-only disk must not stop the app
            log.warning("flight recorder off for %s: %s", name, exc)
            return
        recorder = self.recorders[name] = TelemetryRecorder(ring, meta={"flight": name})
        recorder.attach(service, link)
        if service.latest.events:
            self._last_event[name] = service.latest.events[-1]
        service.subscribe(lambda t: self._record_events(recorder, t))
        try:
            recorder.start()
        except RuntimeError:  # no running loop (a test building it by hand): flushed at close
            pass

    def _record_events(self, recorder: TelemetryRecorder, telemetry: DeviceTelemetry) -> None:
        events = telemetry.events
        if not events or events[-1] is self._last_event.get(telemetry.device):
            return
        # the telemetry keeps only the last MAX_EVENTS: new ones follow the last recorded
        last = self._last_event.get(telemetry.device)
        at = next((i for i in range(len(events) - 1, -1, -1) if events[i] is last), -1)
        for event in events[at + 1:]:
            recorder.sink.write(Record(KIND_EVENT, event.wall, event.device, {
                "source": event.kind, "text": event.text, "severity": event.severity.value}))
        self._last_event[telemetry.device] = events[-1]

    def record_container(self, device: str, container_id: str, row) -> None:
        """A container event of `device` (services.containers.CONTAINER_EVENT_HOOKS)."""
        recorder = self.recorders.get(device)
        if recorder is None:
            return
        state = "removed" if row is None else row.state
        detail = {"source": "container", "id": container_id, "state": state}
        if row is not None:
            detail.update(name=row.name, image=row.image, exit_code=row.exit_code,
                          oom_killed=row.oom_killed, health=row.health)
        name = row.name if row is not None else container_id[:12]
        detail["text"] = f"container {name}: {state}" + (
            " (OOM-killed)" if row is not None and row.oom_killed else "")
        recorder.sink.write(Record(KIND_EVENT, time.time(), device, detail))

    async def flush(self) -> None:
        await asyncio.gather(*(r.flush() for r in self.recorders.values()))

    async def close(self) -> None:
        recorders, self.recorders = list(self.recorders.values()), {}
        for recorder in recorders:
            try:
                await recorder.close()
            except OSError:
                log.exception("flight recorder: closing failed")


def read_window(device: str, start: float, end: float, *, root: Path | None = None,
                problems: list[str] | None = None) -> Iterator[Record]:
    """The device's recorded records with start <= t <= end, in order (blocking I/O)."""
    directory = device_dir(device, root)
    if not directory.is_dir():
        return
    for record in read_records(directory, problems):
        if start <= record.t <= end and (record.device in (None, device)):
            yield record
