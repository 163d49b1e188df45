"""Prometheus query results -> the GPU and host samples of every device it scrapes.

Pure: the services layer (services/promsource.py) asks Prometheus's HTTP API
and hands the JSON here. Understands sparktui's exporter, NVIDIA's DCGM
exporter and node_exporter (names in core/metric_names.py), and joins them
per device:
- sparktui series name their device in the `device` label (an exporter run
  on the Spark itself, `sparktui exporter local`, says "local": then the
  scrape target's host names it);
- DCGM and node_exporter series are named by the host of their `instance`
  (DCGM's own `device` label is "nvidia0", not a machine), or DCGM's
  `Hostname` when there is no instance.
A GB10's DCGM memory fields are dead: its GPU then has no memory figures and
DeviceTelemetry shows the host's (unified) memory instead. A missing value
stays None. Never raises on odd input: the JSON comes from a server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sparktui.core.hoststat import HostSample, MemInfo, ThermalZone
from sparktui.core.metric_names import (
    DCGM_ENERGY,
    DCGM_FB_FREE,
    DCGM_GPU,
    DCGM_PREFIX,
    GPU_METRICS,
    HOST_METRICS,
    MEMINFO_METRICS,
    NODE_HOST,
    PREFIX,
    gpu_attr_for,
    host_attr_for,
    instance_host,
)
from sparktui.core.nvsmi import GpuSample

__all__ = [
    "CPU_QUERY", "DCGM_POWER_QUERY", "LATEST_QUERY", "DeviceReading", "Series",
    "parse_matrix", "parse_vector", "readings", "series_device",
]

MAX_SERIES = 200_000
MAX_LABEL_CHARS = 512

def _latest_selector() -> str:
    """Only the series the fleet view reads (not per-core, per-reason or per-state ones)."""
    names = [m.metric for m in (*GPU_METRICS, *HOST_METRICS, *MEMINFO_METRICS, *DCGM_GPU,
                                *NODE_HOST)]
    names += ["sparktui_gpu_performance_state", "sparktui_gpu_info", "sparktui_device_up",
              "sparktui_host_thermal_zone_celsius", DCGM_FB_FREE, "node_thermal_zone_temp",
              "up"]
    return '{__name__=~"' + "|".join(dict.fromkeys(names)) + '"}'


#: every series the fleet view reads, in one instant query
LATEST_QUERY = _latest_selector()
#: node_exporter's CPU busy percent per instance (sparktui's exporter gives its own)
CPU_QUERY = ('label_replace(100 * (1 - avg by (instance) '
             '(rate(node_cpu_seconds_total{mode="idle"}[1m]))), '
             '"__name__", "node_cpu_busy_percent", "", "")')
#: DCGM's power from its energy counter (mJ) where POWER_USAGE is missing
DCGM_POWER_QUERY = (f'label_replace(rate({DCGM_ENERGY}[1m]) / 1000, '
                    '"__name__", "DCGM_energy_watts", "", "")')


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a query result: its labels and (time, value) points."""

    name: str
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]  # seconds since the epoch; NaN kept out

    @property
    def last(self) -> tuple[float, float] | None:
        return self.points[-1] if self.points else None


def _point(raw: Any) -> tuple[float, float] | None:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    t, v = raw
    try:
        t, v = float(t), float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    if not (math.isfinite(t) and math.isfinite(v)):
        return None
    return t, v


def _labels(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    out = {}
    for key, value in raw.items():
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value[:MAX_LABEL_CHARS]
    return out


def _result(payload: Any, kind: str) -> list[Any]:
    if not isinstance(payload, Mapping) or payload.get("status") != "success":
        return []
    data = payload.get("data")
    if not isinstance(data, Mapping) or data.get("resultType") != kind:
        return []
    result = data.get("result")
    return result[:MAX_SERIES] if isinstance(result, list) else []


def parse_vector(payload: Any) -> list[Series]:
    """An instant query's JSON (`resultType: vector`) -> one-point series."""
    out = []
    for item in _result(payload, "vector"):
        if not isinstance(item, Mapping):
            continue
        labels = _labels(item.get("metric"))
        point = _point(item.get("value"))
        if labels is None or point is None:
            continue
        out.append(Series(labels.get("__name__", ""), labels, (point,)))
    return out


def parse_matrix(payload: Any) -> list[Series]:
    """A range query's JSON (`resultType: matrix`) -> series with their points."""
    out = []
    for item in _result(payload, "matrix"):
        if not isinstance(item, Mapping):
            continue
        labels = _labels(item.get("metric"))
        values = item.get("values")
        if labels is None or not isinstance(values, list):
            continue
        points = tuple(p for p in (_point(v) for v in values) if p is not None)
        out.append(Series(labels.get("__name__", ""), labels, points))
    return out


def series_device(series: Series) -> str | None:
    """Which device a series is about (see the module's docstring)."""
    labels = series.labels
    instance = labels.get("instance", "")
    if series.name.startswith(PREFIX):
        device = labels.get("device", "")
        if device and device != "local":
            return device
    elif series.name.startswith(DCGM_PREFIX) or series.name.startswith("DCGM_"):
        if not instance:
            return labels.get("Hostname") or None
    return instance_host(instance) if instance else None


@dataclass
class DeviceReading:
    """What Prometheus knows of one device at one moment."""

    name: str
    gpus: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> GpuSample kwargs
    host: dict[str, Any] = field(default_factory=dict)  # host figures by attribute
    driver_version: str | None = None
    up: bool | None = None  # sparktui_device_up, else the scrape target's `up`
    newest: float | None = None  # the newest sample time seen for this device
    sources: set[str] = field(default_factory=set)  # "sparktui", "dcgm", "node"

    def gpu_samples(self, t: float | None = None) -> tuple[GpuSample, ...]:
        when = self.newest if t is None else t
        out = []
        for index in sorted(self.gpus):
            values = dict(self.gpus[index])
            fb_free = values.pop("_fb_free", None)
            energy_w = values.pop("_energy_w", None)
            if values.get("mem_used_mib") is not None and fb_free is not None:
                values["mem_total_mib"] = values["mem_used_mib"] + fb_free
            if values.get("power_w") is None and energy_w is not None:
                values["power_w"] = energy_w
            out.append(GpuSample(index=index, t=when or 0.0, **values))
        return tuple(out)

    def host_sample(self, t: float | None = None) -> HostSample | None:
        h = self.host
        if not h:
            return None
        total, available = h.get("mem_total"), h.get("mem_available")
        used = h.get("mem_used")
        if used is None and total is not None and available is not None:
            used = max(0, total - available)
        cache = h.get("page_cache")
        if cache is None and h.get("cached") is not None:
            cache = max(0, (h.get("buffers") or 0) + h["cached"] + (h.get("sreclaimable") or 0)
                        - (h.get("shmem") or 0))
        swap = h.get("swap_used")
        if swap is None and h.get("swap_total") is not None and h.get("swap_free") is not None:
            swap = max(0, h["swap_total"] - h["swap_free"])
        zone = h.get("_zone")
        mem = MemInfo(**{name: _int(h.get(name)) for name in _MEMINFO_FIELDS},
                      total=_int(total), available=_int(available))
        return HostSample(
            t=(self.newest if t is None else t) or 0.0, cpu_pct=h.get("cpu_pct"),
            per_core_pct=(), load1=h.get("load1"), load5=h.get("load5"),
            load15=h.get("load15"), mem_total=_int(total), mem_used=_int(used),
            mem_available=_int(available), page_cache=_int(cache), swap_used=_int(swap),
            hottest_zone=zone, mem=mem, uptime_s=h.get("uptime_s"))


_MEMINFO_FIELDS = ("free", "buffers", "cached", "sreclaimable", "shmem", "swap_total",
                   "swap_free", "unevictable")


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _gpu_index(labels: Mapping[str, str]) -> int | None:
    text = labels.get("gpu", "")
    return int(text) if text.isdigit() and len(text) <= 4 else None


def readings(series: Iterable[Series]) -> dict[str, DeviceReading]:
    """Every device in `series` (an instant query's), with its latest figures."""
    out: dict[str, DeviceReading] = {}
    targets: list[tuple[str, float]] = []
    for s in series:
        device = series_device(s)
        if s.name == "up":
            # a scrape target's health says something of a device only when that
            # target is the device (DCGM, node_exporter), never an exporter's host
            if device is not None and s.last is not None:
                targets.append((device, s.last[1]))
            continue
        point = s.last
        if device is None or point is None:
            continue
        reading = out.get(device)
        if reading is None:
            reading = out[device] = DeviceReading(device)
        t, value = point
        reading.newest = t if reading.newest is None else max(reading.newest, t)
        _apply(reading, s, value)
    for device, value in targets:
        reading = out.get(device)
        if reading is not None and "sparktui" not in reading.sources:
            reading.up = (reading.up is not False) and value >= 1
    return out


def _apply(reading: DeviceReading, s: Series, value: float) -> None:
    name, labels = s.name, s.labels
    if name.startswith(PREFIX):
        reading.sources.add("sparktui")
    elif name.startswith("DCGM_"):
        reading.sources.add("dcgm")
    elif name.startswith("node_"):
        reading.sources.add("node")
    if name == "sparktui_device_up":
        reading.up = value >= 1
        return
    index = _gpu_index(labels)
    gpu_metric = gpu_attr_for(name)
    if index is not None and (gpu_metric is not None or name in (
            "sparktui_gpu_performance_state", "sparktui_gpu_info", DCGM_FB_FREE,
            "DCGM_energy_watts")):
        gpu = reading.gpus.setdefault(index, {})
        uuid = labels.get("uuid") or labels.get("UUID")
        model = labels.get("name") or labels.get("modelName")
        if uuid:
            gpu.setdefault("uuid", uuid)
        if model:
            gpu.setdefault("name", model)
        if gpu_metric is not None:
            scaled = value / gpu_metric.to_metric
            gpu[gpu_metric.attr] = int(scaled) if gpu_metric.attr == "event_reasons" else scaled
        elif name == "sparktui_gpu_performance_state":
            gpu["pstate"] = f"P{int(value)}"
        elif name == DCGM_FB_FREE:
            gpu["_fb_free"] = value
        elif name == "DCGM_energy_watts":
            gpu["_energy_w"] = value
        if name == "sparktui_gpu_info" and labels.get("driver_version"):
            reading.driver_version = labels["driver_version"]
        driver = labels.get("DCGM_FI_DRIVER_VERSION")
        if driver and reading.driver_version is None:
            reading.driver_version = driver
        return
    host_metric = host_attr_for(name)
    if host_metric is not None:
        # sparktui's own figures win over node_exporter's for the same attribute
        attr = "free" if host_metric.attr == "mem_free" else host_metric.attr
        if name.startswith(PREFIX) or attr not in reading.host:
            reading.host[attr] = value / host_metric.to_metric
        return
    if name == "node_cpu_busy_percent":
        reading.host.setdefault("cpu_pct", max(0.0, min(100.0, value)))
    elif name in ("sparktui_host_thermal_zone_celsius", "node_thermal_zone_temp"):
        zone = ThermalZone(labels.get("zone") or labels.get("type") or "zone", value)
        best = reading.host.get("_zone")
        if zone.plausible and (best is None or zone.celsius > best.celsius):
            reading.host["_zone"] = zone
