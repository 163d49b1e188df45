"""What the Telemetry and Devices tabs show, worked out from a DeviceTelemetry.

Pure: no widgets here, so every figure and every "why is there no value" reason
can be tested without a screen. A missing reading is NO_VALUE with a reason,
never 0; device text (GPU names, zone names, reasons) stays plain text.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sparktui.core import nvsmi
from sparktui.core.device import LinkState
from sparktui.core.nvsmi import GpuSample, ReasonSeverity
from sparktui.core.sanitize import strip_control
from sparktui.core.units import (
    NO_VALUE,
    fmt_bytes,
    fmt_celsius,
    fmt_mhz,
    fmt_percent,
    fmt_watts,
)
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import GIB, DeviceTelemetry, MemoryView

UNIFIED_LABEL = "Unified memory (host RAM shared with GPU)"
GPU_MEMORY_LABEL = "GPU memory"
#: what MemoryView.label says -> what the user reads
MEMORY_LABELS = {"unified": UNIFIED_LABEL, "GPU": GPU_MEMORY_LABEL}

UNIFIED_NA_REASON = "nvidia-smi reports [N/A]: GB10 has unified memory, no framebuffer"
WAITING_REASON = "no sample received yet"


class Level(enum.Enum):
    """How worrying a reading is; the widgets map it to theme colours."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Reading:
    """One gauge: a bar fraction (None: no bar), the value text, and why it is missing."""

    text: str
    fraction: float | None = None
    level: Level = Level.OK
    reason: str | None = None  # tooltip: why the text is NO_VALUE, or what the bar is against
    note: str = ""  # shown where the bar would be when there is nothing to measure against

    @property
    def missing(self) -> bool:
        return self.text == NO_VALUE


def _fraction(value: float | None, maximum: float | None) -> float | None:
    if value is None or maximum is None or maximum <= 0 or not math.isfinite(value):
        return None
    return min(1.0, max(0.0, value / maximum))


_QUERY_OF_ATTR = {f.attr: f.query for f in nvsmi.FIELDS}


def missing_reason(telemetry: DeviceTelemetry, gpu: GpuSample | None, attr: str) -> str:
    """Why a GPU figure has no value, in words (for a tooltip)."""
    if gpu is None:
        return telemetry.gpu_problem or WAITING_REASON
    query = _QUERY_OF_ATTR.get(attr, attr)
    if query in telemetry.dropped_fields or (
            attr == "event_reasons" and nvsmi.EVENT_REASONS_FIELD in telemetry.dropped_fields
            and nvsmi.THROTTLE_REASONS_FIELD in telemetry.dropped_fields):
        return f"nvidia-smi on this driver rejected {query}; not shown"
    if attr in ("mem_used_mib", "mem_total_mib") and not gpu.has_memory:
        return UNIFIED_NA_REASON
    if attr == "power_limit_w":
        return "nvidia-smi reports no power limit ([N/A]) for this GPU"
    return f"nvidia-smi reports [N/A] for {query} on this GPU"


# ------------------------------------------------------------------------- GPU gauges
def utilisation(telemetry: DeviceTelemetry, gpu: GpuSample) -> Reading:
    value = gpu.util_gpu
    if value is None:
        return Reading(NO_VALUE, reason=missing_reason(telemetry, gpu, "util_gpu"))
    return Reading(fmt_percent(value), _fraction(value, 100.0))


def memory_label(view: MemoryView) -> str:
    return MEMORY_LABELS.get(view.label, view.label)


def memory(telemetry: DeviceTelemetry, gpu: GpuSample) -> Reading:
    """Used / total of the memory the GPU works in (host RAM on a GB10)."""
    view = telemetry.memory_view(gpu)
    used, total = view.used_bytes, view.total_bytes
    if used is None or total is None:
        if view.unified:
            reason = (telemetry.host_problem or "host memory figures (/proc/meminfo) not "
                      "received yet") + f"; {UNIFIED_NA_REASON}"
        else:
            attr = "mem_used_mib" if gpu.mem_used_mib is None else "mem_total_mib"
            reason = missing_reason(telemetry, gpu, attr)
        return Reading(NO_VALUE, reason=reason)
    level = Level.OK
    if view.unified and telemetry.memory_pressure:
        level = Level.ERROR
    elif total and used / total >= 0.9:
        level = Level.WARNING
    reason = ("used = MemTotal - MemAvailable from /proc/meminfo: the GPU and the CPU share "
              "this memory" if view.unified else None)
    return Reading(f"{fmt_bytes(used)} / {fmt_bytes(total)}", _fraction(used, total), level,
                   reason)


def gpu_processes_memory(telemetry: DeviceTelemetry, gpu: GpuSample) -> str:
    """ "GPU processes: 18.7 GiB", what the compute apps themselves hold."""
    held = telemetry.memory_view(gpu).gpu_processes_bytes
    if held is None:
        return "GPU processes: none" if not telemetry.processes else f"GPU processes: {NO_VALUE}"
    return f"GPU processes: {fmt_bytes(held)}"


def temperature(telemetry: DeviceTelemetry, gpu: GpuSample) -> Reading:
    value = gpu.temp_c
    alert = telemetry.temperature_alert_c
    if value is None:
        return Reading(NO_VALUE, reason=missing_reason(telemetry, gpu, "temp_c"))
    level = Level.OK
    if value >= alert:
        level = Level.ERROR
    elif value >= alert - 10:
        level = Level.WARNING
    return Reading(f"{fmt_celsius(value)} (alert {alert:.0f})", _fraction(value, alert), level,
                   f"against the alert threshold of {alert:.0f} °C (temperature_alert_c)")


def power(telemetry: DeviceTelemetry, gpu: GpuSample) -> Reading:
    value, limit = gpu.power_w, gpu.power_limit_w
    if value is None:
        return Reading(NO_VALUE, reason=missing_reason(telemetry, gpu, "power_w"))
    alert = telemetry.power_alert_w
    level = Level.ERROR if alert is not None and value >= alert else Level.OK
    if limit is None or limit <= 0:
        # no fake limit: just the watts
        return Reading(fmt_watts(value), None, level,
                       missing_reason(telemetry, gpu, "power_limit_w"),
                       note="no limit reported")
    if level is Level.OK and value >= 0.95 * limit:
        level = Level.WARNING
    return Reading(f"{fmt_watts(value)} / {limit:.0f} W", _fraction(value, limit), level,
                   "against the power limit (power.limit)")


def sm_clock(telemetry: DeviceTelemetry, gpu: GpuSample) -> Reading:
    value, maximum = gpu.sm_clock_mhz, gpu.sm_clock_max_mhz
    if value is None:
        return Reading(NO_VALUE, reason=missing_reason(telemetry, gpu, "sm_clock_mhz"))
    if maximum is None:
        return Reading(fmt_mhz(value), None, Level.OK,
                       missing_reason(telemetry, gpu, "sm_clock_max_mhz"),
                       note="no max reported")
    return Reading(f"{value:.0f} / {maximum:.0f} MHz", _fraction(value, maximum), Level.OK,
                   "against the maximum SM clock (clocks.max.sm)")


def event_reasons(telemetry: DeviceTelemetry, gpu: GpuSample) -> tuple[str, Level, str | None]:
    """Clock event (throttle) reasons in words, how alarming they are, and a reason if none."""
    if gpu.event_reasons is None:
        return NO_VALUE, Level.OK, missing_reason(telemetry, gpu, "event_reasons")
    names = gpu.event_reason_names
    if not names:
        return "none", Level.OK, None
    severity = nvsmi.event_severity(gpu.event_reasons)
    level = {ReasonSeverity.ALARMING: Level.ERROR,
             ReasonSeverity.NOTABLE: Level.WARNING}.get(severity, Level.OK)
    return ", ".join(names), level, None


def gpu_title(gpu: GpuSample) -> str:
    name = strip_control(gpu.name or "GPU", max_line=60)
    return f"GPU {gpu.index} · {name}"


# ---------------------------------------------------------------------------- host
def host_parts(telemetry: DeviceTelemetry, *, compact: bool = False) -> list[list[tuple[str, str]]]:
    """Lines of (label, value) pairs for the host strip: one line, or two when compact."""
    host = telemetry.host
    if host is None:
        return [[("host", telemetry.host_problem or WAITING_REASON)]]
    loads = (host.load1,) if compact else (host.load1, host.load5, host.load15)
    load = NO_VALUE if host.load1 is None else " ".join(
        NO_VALUE if v is None else f"{v:.2f}" for v in loads)
    zone = host.hottest_zone
    hottest = NO_VALUE if zone is None else fmt_celsius(zone.celsius)
    if zone is not None and not compact:
        hottest += f" ({strip_control(zone.name, max_line=24)})"
    cpu = [("CPU", fmt_percent(host.cpu_pct)), ("load", load), ("hottest", hottest)]
    memory = [("used" if compact else "mem used", fmt_bytes(host.mem_used)),
              ("cache", fmt_bytes(host.page_cache)),
              ("avail" if compact else "available", fmt_bytes(host.mem_available))]
    return [cpu, memory] if compact else [cpu[:2] + memory + cpu[2:]]


def dropped_notice(telemetry: DeviceTelemetry) -> str | None:
    if not telemetry.dropped_fields:
        return None
    fields = ", ".join(strip_control(f, max_line=60) for f in telemetry.dropped_fields)
    return f"nvidia-smi on this driver rejected {fields}; not shown"


# ------------------------------------------------------------------------ alerts
def pressure_alert(telemetry: DeviceTelemetry) -> str | None:
    host = telemetry.host
    if not telemetry.memory_pressure or host is None or host.mem_available is None:
        return None
    return (f"{telemetry.device}: only {host.mem_available / GIB:.1f} GiB memory available "
            f"(floor {telemetry.memory_floor_bytes / GIB:.0f} GiB) — a model load may "
            "freeze the box")


AlertLines = list[tuple[str, Level]]


def _device_alerts(state: DeviceTelemetry) -> tuple[AlertLines, AlertLines]:
    """One device's alerts: its memory-pressure line, and the others."""
    line = pressure_alert(state)
    pressure = [(line, Level.ERROR)] if line is not None else []
    others = [(strip_control(alert, max_line=200), Level.WARNING) for alert in state.alerts
              if line is None or "memory available" not in alert]  # said above, with why
    return pressure, others


def _pressure_first(per_device: Iterable[tuple[AlertLines, AlertLines]]) -> AlertLines:
    """Devices' alert lines in the banner's order: every memory-pressure line first."""
    per_device = list(per_device)
    return [line for pressure, _ in per_device for line in pressure] + \
        [line for _, others in per_device for line in others]


def alert_lines(states: Iterable[DeviceTelemetry]) -> AlertLines:
    """Every alert of every device, memory pressure first (it can freeze the box)."""
    return _pressure_first(_device_alerts(state) for state in states)


class AlertBoard:
    """Every device's alerts, as alert_lines gives them, worked out again only for the
    device whose figures changed: the banner is checked at every device's tick, and
    reading every device's alerts at each one was devices² a second (64 devices:
    ~8000 alert evaluations a second, 6 % of the TUI's samples, py-spy)."""

    def __init__(self) -> None:
        self._by_device: dict[str, tuple[AlertLines, AlertLines]] = {}

    def update(self, state: DeviceTelemetry) -> AlertLines:
        """Take `state`'s alerts; all devices' lines, memory pressure first."""
        self._by_device[state.device] = _device_alerts(state)
        return _pressure_first(self._by_device.values())


# --------------------------------------------------------------------- fleet summary
@dataclass(frozen=True, slots=True)
class Summary:
    """One row of the Devices tab's live columns."""

    gpus: int | None
    util: float | None  # mean over GPUs
    memory_used: int | None
    memory_total: int | None
    unified: bool
    temp: float | None  # hottest GPU
    power: float | None  # sum over GPUs


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(state: DeviceTelemetry | None) -> Summary:
    if state is None or not state.gpus:
        return Summary(None if state is None or state.gpu_problem is None else 0,
                       None, None, None, False, None, None)
    gpus = state.gpus
    utils = [g.util_gpu for g in gpus if g.util_gpu is not None]
    temps = [g.temp_c for g in gpus if g.temp_c is not None]
    powers = [g.power_w for g in gpus if g.power_w is not None]
    if state.unified_memory:
        view = state.memory_view(gpus[0])
        used, total = view.used_bytes, view.total_bytes
    else:
        used_mib = [g.mem_used_mib for g in gpus if g.mem_used_mib is not None]
        total_mib = [g.mem_total_mib for g in gpus if g.mem_total_mib is not None]
        used = int(sum(used_mib) * 1024**2) if used_mib else None
        total = int(sum(total_mib) * 1024**2) if total_mib else None
    return Summary(len(gpus), _mean(utils), used, total, state.unified_memory,
                   max(temps) if temps else None, sum(powers) if powers else None)


def fleet_total(summaries: Iterable[Summary]) -> Summary:
    """Sum of GPUs, mean utilisation, total power, hottest temperature, summed memory."""
    rows = [s for s in summaries if s.gpus]
    utils = [s.util for s in rows if s.util is not None]
    temps = [s.temp for s in rows if s.temp is not None]
    powers = [s.power for s in rows if s.power is not None]
    used = [s.memory_used for s in rows if s.memory_used is not None]
    total = [s.memory_total for s in rows if s.memory_total is not None]
    return Summary(sum(s.gpus or 0 for s in rows) if rows else None, _mean(utils),
                   sum(used) if used else None, sum(total) if total else None,
                   any(s.unified for s in rows), max(temps) if temps else None,
                   sum(powers) if powers else None)


def summary_cells(summary: Summary, *, compact: bool = False) -> dict[str, str]:
    memory = NO_VALUE
    if summary.memory_used is not None and summary.memory_total is not None:
        used, total = summary.memory_used / GIB, summary.memory_total / GIB
        if compact:
            memory = f"{used:.0f}/{total:.0f}G"
        else:
            memory = f"{used:.0f} / {total:.0f} GiB" + (" unified" if summary.unified else "")
    return {
        "gpus": NO_VALUE if summary.gpus is None else str(summary.gpus),
        "util": fmt_percent(summary.util),
        "memory": memory,
        "temp": fmt_celsius(summary.temp),
        "power": fmt_watts(summary.power, precision=0),
    }


def age_text(state: DeviceTelemetry, now: float | None = None) -> str:
    """How old a device's last sample is, in words: "14 s", "3 min"."""
    return age_since(state.t, now)


def age_since(t: float, now: float | None = None) -> str:
    """How long ago time.monotonic() was `t`, in words: "14 s", "3 min"."""
    age = max(0.0, (time.monotonic() if now is None else now) - t)
    if age < 120:
        return f"{age:.0f} s"
    if age < 7200:
        return f"{age / 60:.0f} min"
    return f"{age / 3600:.0f} h"


# -- staleness: one wording on every tab -------------------------------------------------
def gone_reason(link: DeviceLink | None) -> str | None:
    """Why `link`'s device cannot be acted on now; None while it is connected."""
    if link is None or link.status.state is LinkState.CONNECTED:
        return None
    return f"{link.name} is not connected ({link.status.describe()})"


def stale_label(what: str, since: float, gone: str) -> str:
    """The mark on figures from a device that dropped: "STALE: last sample 14 s ago, ..."."""
    return f" STALE: {what} {age_since(since)} ago, {gone} "


def link_stale_label(link: DeviceLink, what: str) -> str | None:
    """`stale_label` for what was read over `link`'s last connection (it is as old as the
    connection's loss); None while connected, or when it never was."""
    gone, lost = gone_reason(link), link.lost_at
    return None if gone is None or lost is None else stale_label(what, lost, gone)
