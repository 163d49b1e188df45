"""What `sparktui status` prints: gpustat-style lines, or JSON.

Pure: takes DeviceTelemetry snapshots and LinkStatus values, returns text or
JSON-ready dicts. Everything that came from a device goes through
strip_control before it reaches a terminal; JSON keeps raw values (json.dumps
escapes every control character, so the document itself is safe to print).
A missing reading is a dash (or null), never 0.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from sparktui.core import nvsmi
from sparktui.core.device import LinkState, LinkStatus
from sparktui.core.hoststat import HostSample
from sparktui.core.nvsmi import GpuSample
from sparktui.core.sanitize import strip_control
from sparktui.core.units import NO_VALUE

GIB = 1024**3
MIB = 1024**2
NAME_WIDTH = 40  # a process name longer than this is cut


@dataclass(frozen=True)
class DeviceReport:
    """One device as `status` reports it: its connection and what it sent."""

    name: str
    status: LinkStatus
    telemetry: object | None  # a DeviceTelemetry once the device connected
    problem: str | None = None  # why this device counts as failed (None: fine)

    @property
    def ok(self) -> bool:
        return self.problem is None


# ----------------------------------------------------------------------- numbers

def _num(value: float | None, fmt: str, suffix: str = "") -> str:
    return NO_VALUE if value is None else f"{value:{fmt}}{suffix}"


def _gib_pair(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return NO_VALUE
    left = NO_VALUE if used is None else f"{used / GIB:.1f}"
    right = NO_VALUE if total is None else f"{total / GIB:.1f}"
    return f"{left}/{right} GiB"


def _gib(value: int | None) -> str:
    return NO_VALUE if value is None else f"{value / GIB:.1f} GiB"


def _clean(text: object, max_line: int | None = None) -> str:
    return strip_control(str(text), max_line=max_line)


# -------------------------------------------------------------------- human text

def describe_state(report: DeviceReport) -> str:
    if report.problem is not None:
        return report.problem
    return report.status.describe()


def host_summary(host: HostSample | None) -> str:
    if host is None:
        return f"CPU {NO_VALUE}  mem {NO_VALUE}"
    parts = [f"CPU {_num(host.cpu_pct, '.0f', ' %')}",
             f"load {_num(host.load1, '.2f')}",
             f"mem {_gib_pair(host.mem_used, host.mem_total)}"]
    zone = host.hottest_zone
    if zone is not None:
        parts.append(f"{zone.celsius:.0f}°C ({_clean(zone.name, 24)})")
    return "  ".join(parts)


def memory_summary(truth) -> str:
    """`free for CUDA 3.0 GiB | after reclaim 96.0 GiB | ...`: the GB10's two free figures."""
    some = truth.pressure.some if truth.pressure else None
    frag = truth.fragmentation
    parts = [f"free for CUDA {_gib(truth.free_for_cuda)}",
             f"after reclaim {_gib(truth.available_after_reclaim)}",
             f"cache {_gib(truth.reclaimable_cache)}",
             f"shm {_gib(truth.shared)}",
             "pressure " + (NO_VALUE if some is None else f"{some.avg10:.0f} %/10 s"),
             f"order>={frag.order} blocks {frag.blocks}" if frag else f"blocks {NO_VALUE}"]
    return " | ".join(parts)


def process_text(proc) -> str:
    """`user/pid(name, MiB)`, as gpustat shows processes."""
    user = _clean(proc.user, 16) if proc.user else NO_VALUE
    name = os.path.basename(proc.name.rstrip("/")) if proc.name else ""
    name = _clean(name, NAME_WIDTH) or NO_VALUE
    memory = _num(proc.used_memory_mib, ".0f", " MiB")
    return f"{user}/{proc.pid}({name}, {memory})"


def gpu_line(telemetry, gpu: GpuSample) -> str:
    view = telemetry.memory_view(gpu)
    name = _clean(gpu.name, 40) if gpu.name else NO_VALUE
    procs = "" if view.gpu_processes_bytes is None else (
        f" (GPU procs {_gib(view.gpu_processes_bytes)})")
    memory = f"{view.label} {_gib_pair(view.used_bytes, view.total_bytes)}{procs}"
    fields = [
        f"[{gpu.index}] {name}",
        f"{_num(gpu.temp_c, '.0f', '°C')}, {_num(gpu.util_gpu, '.0f', ' %')}",
        memory,
        f"{_num(gpu.power_w, '.0f', ' W')} / {_num(gpu.power_limit_w, '.0f', ' W')}",
        _num(gpu.sm_clock_mhz, '.0f', ' MHz'),
    ]
    reasons = gpu.event_reason_names
    if nvsmi.event_severity(gpu.event_reasons) is not nvsmi.ReasonSeverity.NONE:
        fields.append("held back: " + ", ".join(reasons))
    return " | ".join(fields)


def _gpu_processes(telemetry, gpu: GpuSample) -> list:
    return [p for p in telemetry.processes
            if p.gpu_index == gpu.index or (gpu.uuid is not None and p.gpu_uuid == gpu.uuid)]


def render_device(report: DeviceReport) -> list[str]:
    telemetry = report.telemetry
    name = _clean(report.name, 40)
    state = _clean(describe_state(report))
    if telemetry is None:
        return [f"{name}  {state}"]
    driver = _clean(telemetry.driver_version, 20) if telemetry.driver_version else NO_VALUE
    lines = [f"{name}  {state}  driver {driver}  {host_summary(telemetry.host)}"]
    truth = telemetry.memory_truth
    if truth is not None:
        lines.append("  " + memory_summary(truth))
    if telemetry.gpu_problem:
        lines.append(f"  GPU: {_clean(telemetry.gpu_problem)}")
    if telemetry.host_problem and telemetry.host is None:
        lines.append(f"  host: {_clean(telemetry.host_problem)}")
    shown: set[int] = set()
    for gpu in telemetry.gpus:
        lines.append(gpu_line(telemetry, gpu))
        procs = _gpu_processes(telemetry, gpu)
        shown.update(id(p) for p in procs)
        if procs:
            lines.append("    " + " ".join(process_text(p) for p in procs))
    others = [p for p in telemetry.processes if id(p) not in shown]
    if others:
        lines.append("    other GPU processes: " + " ".join(process_text(p) for p in others))
    if telemetry.dropped_fields:
        lines.append("  (this nvidia-smi does not know: "
                     + ", ".join(_clean(f) for f in telemetry.dropped_fields) + ")")
    return lines


def render(reports: list[DeviceReport]) -> str:
    blocks = ["\n".join(render_device(r)) for r in reports]
    return "\n".join(blocks) + "\n"


# -------------------------------------------------------------------------- JSON

def host_json(host: HostSample | None) -> dict | None:
    if host is None:
        return None
    zone = host.hottest_zone
    return {
        "cpu_pct": host.cpu_pct,
        "load1": host.load1,
        "load5": host.load5,
        "load15": host.load15,
        "mem_total": host.mem_total,
        "mem_used": host.mem_used,
        "mem_available": host.mem_available,
        "page_cache": host.page_cache,
        "swap_used": host.swap_used,
        "hottest_zone": None if zone is None else {"name": zone.name,
                                                   "celsius": zone.celsius},
        "mem_free": host.mem_free,
        "uptime_s": host.uptime_s,
        "boot_id": host.boot_id,
        "rails_w": {rail.label: rail.watts for rail in host.rails} or None,
        "prochot": host.prochot,
    }


def gpu_json(telemetry, gpu: GpuSample) -> dict:
    out = {f.name: getattr(gpu, f.name) for f in dataclasses.fields(gpu)}
    out["event_reasons_decoded"] = gpu.event_reason_names
    view = telemetry.memory_view(gpu)
    out["memory"] = {"label": view.label, "used_bytes": view.used_bytes,
                     "total_bytes": view.total_bytes,
                     "gpu_processes_bytes": view.gpu_processes_bytes}
    return out


def device_json(report: DeviceReport) -> dict:
    telemetry = report.telemetry
    status = report.status
    out: dict = {
        "name": report.name,
        "state": status.state.value,
        "reason": None if report.ok and status.state is LinkState.CONNECTED
        else (report.problem or status.describe()),
        "failure": status.failure.value if status.failure else None,
        "driver_version": None,
        "unified_memory": False,
        "host": None,
        "gpus": [],
        "processes": [],
        "dropped_fields": [],
        "gpu_problem": None,
        "memory": None,  # the GB10 memory truth: free for CUDA, after reclaim, PSI, buddyinfo
        "events": [],  # guard steps, Xid errors, power advice, reboots
        "clock_event_seconds": [],  # how long each clock event reason was active
    }
    if telemetry is not None:
        out.update(
            driver_version=telemetry.driver_version,
            unified_memory=telemetry.unified_memory,
            host=host_json(telemetry.host),
            gpus=[gpu_json(telemetry, g) for g in telemetry.gpus],
            processes=[dataclasses.asdict(p) for p in telemetry.processes],
            dropped_fields=list(telemetry.dropped_fields),
            memory=None if telemetry.memory_truth is None else telemetry.memory_truth.as_json(),
            events=[e.as_json() for e in telemetry.events],
            clock_event_seconds=[{"gpu": g, "reason": n, "seconds": round(s, 1)}
                                 for g, n, s in telemetry.reason_seconds],
            gpu_problem=telemetry.gpu_problem,
        )
    return out
