"""Prometheus as a telemetry source: every Spark it scrapes, without SSH to each.

    source = PrometheusSource("http://prometheus:9090", settings)
    devices = await source.latest()          # name -> RemoteDevice (telemetry, up, age)
    histories = await source.history(600)    # name -> History, from range queries

A refresh is four instant queries for the whole fleet however many devices
(sparktui's, DCGM's and node_exporter's series in one selector, plus the
rate()s for CPU and DCGM energy), so a lab of 64 Sparks costs the same
requests as one. Series are joined into devices by core/promfleet.py.
PrometheusFleet keeps the latest picture and history current for a screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from sparktui.core.device import LinkState, LinkStatus
from sparktui.core.history import GPU_METRICS, HOST_METRICS, History
from sparktui.core.metric_names import DCGM_GPU, NODE_HOST
from sparktui.core.metric_names import GPU_METRICS as EXPORTED_GPU
from sparktui.core.metric_names import HOST_METRICS as EXPORTED_HOST
from sparktui.core.promfleet import (
    CPU_QUERY,
    DCGM_POWER_QUERY,
    LATEST_QUERY,
    DeviceReading,
    Series,
    parse_matrix,
    parse_vector,
    readings,
)
from sparktui.services.config import Settings
from sparktui.services.telemetry import GIB, DeviceTelemetry

log = logging.getLogger(__name__)

#: points per series a history query asks for (a chart is 20-100 columns of braille, two
#: points a column; 64 devices at 240 points were 7 MB and seconds of parsing)
HISTORY_POINTS = 120


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused; the message says which and why."""


@dataclass(frozen=True)
class RemoteDevice:
    """One device as Prometheus knows it."""

    name: str
    telemetry: DeviceTelemetry
    up: bool | None  # None: no series says whether it is reachable
    age_s: float | None  # seconds since Prometheus's newest sample of it
    sources: frozenset[str]  # "sparktui", "dcgm", "node"

    @property
    def status(self) -> LinkStatus:
        """A LinkStatus for the views and `status`: connected, or why not."""
        if self.up is False:
            return LinkStatus(LinkState.FAILED, reason="down, according to Prometheus")
        return LinkStatus(LinkState.CONNECTED)


def _history_names() -> tuple[list[str], list[str]]:
    """(sparktui's charted names, DCGM's and node_exporter's)."""
    charted = set(GPU_METRICS) | set(HOST_METRICS)
    own = [m.metric for m in (*EXPORTED_GPU, *EXPORTED_HOST) if m.attr in charted]
    others = [m.metric for m in DCGM_GPU if m.attr in charted]
    others += [m.metric for m in NODE_HOST]  # "used" needs node's total and available
    return sorted(set(own)), sorted(set(others))


def _history_selector() -> str:
    own, others = _history_names()
    return '{__name__=~"' + "|".join(own + others) + '"}'


def _promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _device_history_query(device: str) -> str:
    """The charted series of one device: sparktui's by label, the others by target host."""
    own, others = _history_names()
    host = re.escape(device)
    target = _promql_string(host + "(:[0-9]+)?")
    mine = "|".join(own)
    return (f'{{__name__=~"{mine}",device={_promql_string(device)}}} or '
            # an exporter run on the Spark itself labels its series device="local"
            f'{{__name__=~"{mine}",device="local",instance=~{target}}} or '
            f'{{__name__=~"{"|".join(others)}",instance=~{target}}}')


#: a whole fleet's hour of history at the finest step is a few MB of JSON
MAX_ANSWER_BYTES = 32 * 1024 * 1024
MAX_ERROR_BYTES = 1024 * 1024


class PrometheusSource:
    """Asks one Prometheus server's HTTP API (v1)."""

    def __init__(self, url: str, settings: Settings | None = None, *, timeout: float = 10.0,
                 deadline: float | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        base = url.strip().rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise PrometheusError(f"{url!r} is not an http:// or https:// URL")
        self.url = base
        self.settings = settings or Settings()
        self._clock = clock
        self._deadline = deadline if deadline is not None else 2 * timeout
        # identity: a small compressed body must not unpack to gigabytes before it is counted
        self._client = httpx.AsyncClient(base_url=base, timeout=timeout, transport=transport,
                                         headers={"Accept": "application/json",
                                                  "Accept-Encoding": "identity"})

    async def close(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, str], parse=None) -> object:
        """The API's answer, parsed by `parse` in a worker thread (a fleet's JSON is
        hundreds of KB: decoding it on the event loop would stall a screen).

        Bounded in size and in time (the whole answer, not each read), so a server
        that never ends its body, or trickles it, costs a few MB and ends with a
        message."""
        status, body = await self._read(path, params)
        try:
            payload = await asyncio.to_thread(json.loads, body)
        except (ValueError, RecursionError):
            raise PrometheusError(f"{self.url}{path} answered HTTP {status} "
                                  "without JSON: is this a Prometheus server?") from None
        if status != 200 or not isinstance(payload, dict) \
                or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else None
            raise PrometheusError(f"Prometheus refused the query (HTTP {status})"
                                  + (f": {str(error)[:300]}" if error else ""))
        return payload if parse is None else await asyncio.to_thread(parse, payload)

    async def _read(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self._deadline), \
                    self._client.stream("GET", path, params=params) as response:
                limit = MAX_ANSWER_BYTES if response.status_code == 200 else MAX_ERROR_BYTES
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise PrometheusError(
                            f"{self.url}{path}: the answer passed {limit // 2**20 or 1} MiB; "
                            "not read further (is this a Prometheus server?)")
                    chunks.append(chunk)
                return response.status_code, b"".join(chunks)
        except TimeoutError:
            raise PrometheusError(f"{self.url}{path}: no complete answer within "
                                  f"{self._deadline:.0f} s; not waiting longer") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: "
                                  f"{type(exc).__name__}: {exc}") from exc

    async def query(self, promql: str) -> list[Series]:
        return await self._get("/api/v1/query", {"query": promql},  # type: ignore[return-value]
                               parse_vector)

    async def query_range(self, promql: str, start: float, end: float,
                          step: float) -> list[Series]:
        return await self._get("/api/v1/query_range", {  # type: ignore[return-value]
            "query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
            "step": f"{max(step, 0.001):.3f}"}, parse_matrix)

    async def latest(self) -> dict[str, RemoteDevice]:
        """Every device Prometheus has figures for, by name."""
        results = await asyncio.gather(self.query(LATEST_QUERY), self.query(CPU_QUERY),
                                       self.query(DCGM_POWER_QUERY))
        series = [s for batch in results for s in batch]
        now = self._clock()
        found = await asyncio.to_thread(readings, series)
        return {name: self._device(reading, now) for name, reading in sorted(found.items())}

    def _device(self, reading: DeviceReading, now: float) -> RemoteDevice:
        settings = self.settings
        telemetry = DeviceTelemetry(
            device=reading.name, t=reading.newest or now, gpus=reading.gpu_samples(),
            host=reading.host_sample(), driver_version=reading.driver_version,
            memory_floor_bytes=int(settings.memory_floor_gib * GIB),
            temperature_alert_c=settings.temperature_alert_c,
            power_alert_w=settings.power_alert_w)
        age = None if reading.newest is None else max(0.0, now - reading.newest)
        return RemoteDevice(reading.name, telemetry, reading.up, age,
                            frozenset(reading.sources))

    async def history(self, seconds: float, *, end: float | None = None,
                      points: int = HISTORY_POINTS,
                      device: str | None = None) -> dict[str, History]:
        """The charted figures over the last `seconds`, of one device or of every one."""
        end = self._clock() if end is None else end
        step = max(1.0, seconds / points)
        query = _history_selector() if device is None else _device_history_query(device)
        series = await self.query_range(query, end - seconds, end, step)
        return await asyncio.to_thread(histories_from, series, seconds, step)


def histories_from(series: Sequence[Series], seconds: float, step: float) -> dict[str, History]:
    """Range-query series -> one History per device, sample by sample in time order."""
    from sparktui.core.promfleet import series_device

    by_time: dict[str, dict[float, list[Series]]] = {}
    for s in series:
        device = series_device(s)
        if device is None:
            continue
        slots = by_time.setdefault(device, {})
        for t, value in s.points:
            slots.setdefault(t, []).append(Series(s.name, s.labels, ((t, value),)))
    out: dict[str, History] = {}
    for device, slots in by_time.items():
        history = out[device] = History(seconds + step, step)
        for t in sorted(slots):
            reading = readings(slots[t]).get(device)
            if reading is None:
                continue
            for gpu in reading.gpu_samples(t):
                history.record_gpu(gpu)
            host = reading.host_sample(t)
            if host is not None:
                history.record_host(host)
    return out


class PrometheusFleet:
    """The fleet as Prometheus sees it, refreshed every period, for a screen or a CLI."""

    def __init__(self, source: PrometheusSource, *, period: float = 5.0,
                 history_seconds: float = 600.0) -> None:
        self.source = source
        self.period = period
        self.history_seconds = history_seconds
        self.devices: dict[str, RemoteDevice] = {}
        self.histories: dict[str, History] = {}
        self.problem: str | None = None
        self._listeners: list[Callable[[PrometheusFleet], None]] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, listener: Callable[[PrometheusFleet], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prometheus")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.source.close()

    async def refresh(self, *, with_history: bool = False) -> None:
        try:
            if with_history:
                self.histories = await self.source.history(self.history_seconds)
            self.devices = await self.source.latest()
            self.problem = None
        except PrometheusError as exc:
            self.problem = str(exc)
        for device in self.devices.values():
            self._extend_history(device)
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("Prometheus fleet listener failed")

    async def load_history(self, name: str) -> None:
        """Fill one device's history from a range query (the device on screen)."""
        try:
            loaded = (await self.source.history(self.history_seconds, device=name)).get(name)
        except PrometheusError as exc:
            log.warning("Prometheus: no history for %s: %s", name, exc)
            return
        if loaded is not None:
            self.histories[name] = loaded
            device = self.devices.get(name)
            if device is not None:
                self._extend_history(device)

    def _extend_history(self, device: RemoteDevice) -> None:
        history = self.histories.get(device.name)
        if history is None:
            history = self.histories[device.name] = History(self.history_seconds,
                                                            max(self.period, 1.0))
        telemetry = device.telemetry
        for key in (("gpu0", "util_gpu"), ("host", "cpu_pct")):
            buffer = history.series(key)
            last = None if buffer is None else buffer.last
            if last is not None and not math.isnan(last[0]) and last[0] >= telemetry.t:
                return  # Prometheus has nothing newer than what the history holds
        for gpu in telemetry.gpus:
            history.record_gpu(gpu)
        if telemetry.host is not None:
            history.record_host(telemetry.host)

    async def _run(self) -> None:
        # history comes per device when one is first shown (load_history): the whole
        # fleet's at once was 1.9 s of CPU and 3 MB for 64 devices (BENCHMARKS.md)
        await self.refresh()
        while True:
            await asyncio.sleep(self.period)
            await self.refresh()
