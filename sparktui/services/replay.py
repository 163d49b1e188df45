"""Replaying a recording (sparktui.core.recording) as live telemetry.

    player = ReplayPlayer(path, settings, speed=10)
    player.scan()                      # devices, span; reads the file once (in a thread)
    for device in player.devices.values():
        device.subscribe(on_update)    # DeviceTelemetry, exactly as a TelemetryService gives
    await player.play()                # at `speed` times the recorded pace

Each device is a ReplayTelemetry with the parts of TelemetryService the views
read (latest, subscribe, history), so the Devices and Telemetry views show a
recording as they show a device: for a bug report, or to look back at a run
that overheated or froze. Records of kinds it does not know are skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sparktui.core.history import History
from sparktui.core.recording import (
    KIND_GPUS,
    KIND_HOST,
    KIND_LINK,
    KIND_META,
    KIND_PROCESSES,
    KIND_STATE,
    Record,
    RecordError,
    decode_gpus,
    decode_host,
    from_jsonable,
)
from sparktui.services.config import Settings
from sparktui.services.recordings import read_records
from sparktui.services.telemetry import GIB, DeviceTelemetry, GpuProcess

log = logging.getLogger(__name__)

Listener = Callable[[DeviceTelemetry], None]


class ReplayTelemetry:
    """One recorded device, played back: what a TelemetryService offers the views."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.history = History(settings.history_minutes * 60, settings.refresh_interval)
        self.link_state: str | None = None  # the recorded connection state
        self.link_reason: str | None = None
        self._listeners: list[Listener] = []
        self._state = DeviceTelemetry(
            device=name, memory_floor_bytes=int(settings.memory_floor_gib * GIB),
            temperature_alert_c=settings.temperature_alert_c,
            power_alert_w=settings.power_alert_w)

    @property
    def latest(self) -> DeviceTelemetry:
        return self._state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def watch_processes(self, watching: bool) -> None:
        """Nothing to poll: a recording's process lists arrive as they were recorded."""

    def show(self, telemetry: DeviceTelemetry, history: History | None = None, *,
             link_state: str | None = None, link_reason: str | None = None) -> None:
        """Take a whole picture from elsewhere (Prometheus), with its history."""
        if history is not None:
            self.history = history
        self.link_state, self.link_reason = link_state, link_reason
        self._state = telemetry
        self._publish()

    def _publish(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self._state)
            except Exception:
                log.exception("telemetry listener failed for %s", self.name)

    def apply(self, record: Record) -> bool:
        """Play one record; True when the telemetry changed."""
        changes: dict[str, object] = {}
        if record.kind == KIND_GPUS:
            gpus = decode_gpus(record)
            for gpu in gpus:
                self.history.record_gpu(gpu)
            changes = {"gpus": gpus, "gpu_problem": None}
        elif record.kind == KIND_HOST:
            host = decode_host(record)
            if host is None:
                return False
            self.history.record_host(host)
            changes = {"host": host, "host_problem": None}
        elif record.kind == KIND_PROCESSES and isinstance(record.data, list):
            changes = {"processes": tuple(_processes(record.data))}
        elif record.kind == KIND_STATE and isinstance(record.data, dict):
            changes = _state_changes(record.data)
        elif record.kind == KIND_LINK and isinstance(record.data, dict):
            state, reason = record.data.get("state"), record.data.get("reason")
            self.link_state = state if isinstance(state, str) else None
            self.link_reason = reason if isinstance(reason, str) else None
            return False
        else:
            return False
        self._state = dataclasses.replace(self._state, t=record.t, **changes)
        self._publish()
        return True


def _processes(items: list) -> Iterator[GpuProcess]:
    for item in items:
        if isinstance(item, dict):
            try:
                yield from_jsonable(GpuProcess, item)
            except RecordError:
                continue


def _state_changes(data: dict) -> dict[str, object]:
    changes: dict[str, object] = {}
    for key in ("gpu_problem", "host_problem", "driver_version"):
        value = data.get(key)
        changes[key] = value if isinstance(value, str) else None
    dropped = data.get("dropped_fields")
    if isinstance(dropped, list):
        changes["dropped_fields"] = tuple(f for f in dropped if isinstance(f, str))
    return changes


@dataclass
class ReplaySummary:
    devices: list[str]
    start: float | None  # wall time of the first record
    end: float | None
    records: int
    problems: list[str]
    meta: dict

    @property
    def span_s(self) -> float:
        return 0.0 if self.start is None or self.end is None else self.end - self.start


class ReplayPlayer:
    """Plays a recording file (or a flight-recorder ring directory) into ReplayTelemetry."""

    def __init__(self, path: str | Path, settings: Settings | None = None, *,
                 speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError("speed must be above 0")
        self.path = Path(path)
        self.settings = settings or Settings()
        self.speed = speed
        self._clock = clock
        self.devices: dict[str, ReplayTelemetry] = {}
        self.summary: ReplaySummary | None = None
        self.played = 0
        self.finished = asyncio.Event()

    def scan(self) -> ReplaySummary:
        """Read the file once for its devices and span (blocking: call it in a thread)."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such recording")
        problems: list[str] = []
        names: dict[str, None] = {}
        start = end = None
        count = 0
        meta: dict = {}
        for record in read_records(self.path, problems):
            count += 1
            start = record.t if start is None else min(start, record.t)
            end = record.t if end is None else max(end, record.t)
            if record.kind == KIND_META and isinstance(record.data, dict) and not meta:
                meta = record.data
            if record.device is not None:
                names.setdefault(record.device)
        for name in names:
            self.devices.setdefault(name, ReplayTelemetry(name, self.settings))
        self.summary = ReplaySummary(list(names), start, end, count, problems, meta)
        return self.summary

    async def play(self) -> None:
        """Every record, paced at `speed` times the recorded pace; then `finished` is set."""
        if self.summary is None:
            await asyncio.to_thread(self.scan)
        records = read_records(self.path)
        first: float | None = None
        began = self._clock()
        try:
            while True:
                batch = await asyncio.to_thread(_take, records, 256)
                if not batch:
                    break
                for record in batch:
                    if first is None:
                        first = record.t
                    due = (record.t - first) / self.speed - (self._clock() - began)
                    if due > 0:
                        await asyncio.sleep(due)
                    device = self.devices.get(record.device or "")
                    if device is not None and device.apply(record):
                        self.played += 1
        finally:
            self.finished.set()


def _take(records: Iterator[Record], count: int) -> list[Record]:
    out = []
    for record in records:
        out.append(record)
        if len(out) >= count:
            break
    return out
