"""Pure helpers for Docker containers: inspect data in, display values out.

Everything here works on the plain dicts the Docker Engine API returns
(`GET /containers/{id}/json`, `/containers/{id}/stats`), so it is testable
without a daemon and the services stay thin. No docker-py, no Textual.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sparktui.core.sanitize import CleanText, strip_control

#: the oldest Engine API sparktui talks to: 1.40 (Docker 19.03) added DeviceRequests,
#: which is how a container asks for GPUs
MIN_API_VERSION = "1.40"

#: container events that change what the table shows; exec_* (every health check
#: probe) and attach/resize are left out so a busy health check costs nothing
WATCHED_EVENTS = ("create", "start", "die", "stop", "destroy", "health_status", "rename",
                  "pause", "unpause", "restart", "oom")

_ZERO_TIME = "0001-01-01"
_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:\d\d)$")


def _without_slash(name: Any) -> Any:
    return name.lstrip("/") if isinstance(name, str) else name


def _clean(value: Any, max_line: int) -> CleanText:
    """Daemon text, safe to show: no escapes, no controls, one line of sane length."""
    if value is None:
        return strip_control("")
    return strip_control(value if isinstance(value, str) else str(value), max_line=max_line)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _safe(parse, attrs: dict[str, Any], default):
    try:
        return parse(attrs)
    except (TypeError, ValueError, AttributeError, KeyError):
        return default


def _float(value: Any) -> float:
    """A stats counter; 0 for anything that is not a finite number."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def version_tuple(version: str) -> tuple[int, ...]:
    """'1.41' -> (1, 41); junk parts count as 0 so a comparison never raises."""
    parts = []
    for piece in str(version).split("."):
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group(0)) if digits else 0)
    return tuple(parts)


def api_too_old(api_version: str, minimum: str = MIN_API_VERSION) -> bool:
    return version_tuple(api_version) < version_tuple(minimum)


def parse_docker_time(text: str | None) -> float | None:
    """An RFC 3339 timestamp with nanoseconds as a Unix time; Docker's zero time -> None."""
    if not text or text.startswith(_ZERO_TIME):
        return None
    match = _RFC3339.match(text.strip())
    if not match:
        return None
    frac = (match["frac"] or "0")[:6]  # datetime keeps microseconds
    tz = "+00:00" if match["tz"] == "Z" else match["tz"]
    try:
        moment = datetime.fromisoformat(f"{match['base']}.{frac:0<6}{tz}")
    except ValueError:
        return None
    return moment.timestamp()


def format_age(seconds: float | None) -> str:
    """A short duration: 45s, 12m, 3h, 5d. None (unknown) is a dash."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "-"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60:02d}m" if hours < 10 else f"{hours}h"
    return f"{int(seconds // 86400)}d"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _scaled_bytes(value: float) -> tuple[float, str]:
    """`value` in the largest binary unit that keeps it under 1024 (TiB at most)."""
    index = 0
    while abs(value) >= 1024 and index < len(_BYTE_UNITS) - 1:
        value /= 1024
        index += 1
    return value, _BYTE_UNITS[index]


def format_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    scaled, unit = _scaled_bytes(value)
    return f"{scaled:.0f} {unit}" if unit == "B" else f"{scaled:.1f} {unit}"


def format_ports(attrs: dict[str, Any]) -> tuple[str, ...]:
    """'127.0.0.1:8000->8000/tcp' per published port, '8000/tcp' for exposed-only ones.

    Published ports come from NetworkSettings.Ports while the container runs and
    from HostConfig.PortBindings when it is stopped (Docker clears the former).
    """
    host_config = attrs.get("HostConfig") or {}
    if host_config.get("NetworkMode") == "host":
        return ("host network",)
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    if not ports:
        ports = host_config.get("PortBindings") or {}
    out: list[str] = []
    for container_port in sorted(ports, key=_port_sort_key):
        bindings = ports.get(container_port) or []
        if not bindings:
            out.append(container_port)
            continue
        seen = set()
        for binding in bindings:
            host_ip = (binding or {}).get("HostIp") or "0.0.0.0"
            host_port = (binding or {}).get("HostPort") or "?"
            if (host_ip, host_port) in seen or (host_ip == "::" and ("0.0.0.0", host_port) in seen):
                continue  # the IPv6 twin of a 0.0.0.0 binding says nothing new
            seen.add((host_ip, host_port))
            out.append(f"{host_ip}:{host_port}->{container_port}")
    return tuple(out)


_PORT_SPEC = re.compile(r"^(?:(?P<ip>[^>]*):(?P<host>[^:>]+)->)?(?P<port>\d+)(?P<proto>/\w+)?$")


def short_port(spec: str) -> str:
    """One of format_ports' specs in the fewest characters that still say where to connect.

    '0.0.0.0:8000->8000/tcp' -> '8000'; '0.0.0.0:12000->8080/tcp' -> '12000→8080';
    '127.0.0.1:8001->80/tcp' -> '127.0.0.1:8001→80'; '53/udp' -> '53/udp'. An address
    that listens everywhere and /tcp go without saying; anything else is kept.
    """
    found = _PORT_SPEC.match(spec)
    if found is None:
        return spec  # 'host network', or a shape this does not know: shown as it is
    proto = "" if found["proto"] in (None, "/tcp") else found["proto"]
    host = found["host"]
    if host is None:
        return found["port"] + proto
    ip = found["ip"]
    target = host if host == found["port"] else f"{host}→{found['port']}"
    where = "" if ip in ("0.0.0.0", "::", "[::]", "") else f"{ip}:"
    return f"{where}{target}{proto}"


def _port_sort_key(spec: str) -> tuple[int, str]:
    number = re.match(r"\d+", spec)
    return (int(number.group(0)) if number else 0, spec)


def gpu_request(attrs: dict[str, Any]) -> str:
    """What GPUs the container asked for: 'all', a count, device ids, or '' for none."""
    requests = (attrs.get("HostConfig") or {}).get("DeviceRequests") or []
    for request in requests:
        capabilities = request.get("Capabilities") or []
        if not any("gpu" in group for group in capabilities):
            continue
        ids = request.get("DeviceIDs") or []
        if ids:
            return ",".join(str(i) for i in ids)
        count = request.get("Count", 0)
        return "all" if count == -1 else str(count)
    return ""


def command_line(attrs: dict[str, Any]) -> str:
    """The process the container runs, as `docker ps` shows it (Path plus Args)."""
    path = attrs.get("Path") or ""
    args = attrs.get("Args") or []
    return " ".join([path, *(str(a) for a in args)]).strip()


@dataclass(frozen=True)
class ContainerInfo:
    """One container as the table shows it.

    Made by from_inspect, its strings are CleanText (crossed the boundary there);
    the simulator and tests may build one from plain strings of their own."""

    id: str
    name: str
    image: str
    state: str  # created, running, paused, restarting, removing, exited, dead
    health: str = ""  # starting, healthy, unhealthy, or '' without a health check
    exit_code: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    ports: tuple[str, ...] = ()
    gpu: str = ""
    command: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    oom_killed: bool = False
    error: str = ""
    tty: bool = False

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> ContainerInfo:
        """One container from `docker inspect`; its strings come out clean.

        The daemon (or whoever answers on its socket) chooses every field: text is
        passed through strip_control here, once, and a field of the wrong type
        gives an empty or missing value, never an exception for the whole list.
        """
        state = _dict(attrs.get("State"))
        config = _dict(attrs.get("Config"))
        health = _dict(state.get("Health")).get("Status") or ""
        labels = _dict(config.get("Labels"))
        return cls(
            id=_clean(attrs.get("Id"), 128),
            name=_clean(_without_slash(attrs.get("Name")), 256),
            image=_clean(config.get("Image") or attrs.get("Image"), 512),
            state=_clean(state.get("Status"), 32) or _clean("unknown", 32),
            health=_clean(health, 32),
            exit_code=_int(state.get("ExitCode")),
            started_at=parse_docker_time(_str_or_none(state.get("StartedAt"))),
            finished_at=parse_docker_time(_str_or_none(state.get("FinishedAt"))),
            ports=tuple(_clean(p, 128) for p in _safe(format_ports, attrs, ())),
            gpu=_clean(_safe(gpu_request, attrs, ""), 128),
            command=_clean(_safe(command_line, attrs, ""), 4096),
            labels=tuple(sorted((_clean(k, 256), _clean(v, 1024))
                                for k, v in labels.items())),
            oom_killed=bool(state.get("OOMKilled")),
            error=_clean(state.get("Error"), 1024),
            tty=bool(config.get("Tty")),
        )

    def state_text(self, *, compact: bool = False) -> str:
        """'running · healthy', 'exited (137, OOM)', 'paused'.

        `compact` (a side pane): 'healthy' (a health check implies running),
        'exit 137 OOM', 'paused'.
        """
        if compact:
            if self.state in ("exited", "dead"):
                return f"exit {self.exit_code}" + (" OOM" if self.oom_killed else "")
            return self.health if self.state == "running" and self.health else self.state
        if self.state in ("exited", "dead"):
            extra = f"{self.exit_code}, OOM" if self.oom_killed else str(self.exit_code)
            return f"{self.state} ({extra})"
        return f"{self.state} · {self.health}" if self.health else self.state

    def uptime(self, now: float) -> float | None:
        """Seconds up while running; seconds since it stopped otherwise (None if never)."""
        if self.running:
            return None if self.started_at is None else now - self.started_at
        return None if self.finished_at is None else now - self.finished_at

    def uptime_text(self, now: float) -> str:
        age = format_age(self.uptime(now))
        if self.running or age == "-":
            return age
        return f"{age} ago"


@dataclass(frozen=True)
class ContainerStats:
    cpu_percent: float | None  # of one core: 250 means two and a half cores busy
    mem_used: float | None
    mem_limit: float | None
    #: the raw counters, kept to compute the next sample's CPU figure
    cpu_total: float = field(default=0.0, repr=False)
    system_total: float = field(default=0.0, repr=False)


def _memory_used(memory: dict[str, Any]) -> float | None:
    usage = memory.get("usage")
    if usage is None:
        return None
    stats = memory.get("stats") or {}
    # as `docker stats` does: page cache that can be dropped is not "used"
    for key in ("inactive_file", "total_inactive_file"):
        if key in stats and stats[key] < usage:
            return float(usage - stats[key])
    if "cache" in stats and stats["cache"] < usage:
        return float(usage - stats["cache"])
    return float(usage)


def stats_from_sample(sample: dict[str, Any], previous: ContainerStats | None) -> ContainerStats:
    """Turn one `/stats?stream=false` answer into figures.

    CPU needs two samples: the API's own `precpu_stats` when it sent them
    (a full, two-cycle request), otherwise the counters of `previous` (the
    cheap one-shot requests sparktui makes every few seconds).
    """
    cpu = _dict(sample.get("cpu_stats"))
    usage = _dict(cpu.get("cpu_usage"))
    total = _float(usage.get("total_usage"))
    system = _float(cpu.get("system_cpu_usage"))
    percpu = usage.get("percpu_usage")
    online = _int(cpu.get("online_cpus")) or (len(percpu) if isinstance(percpu, list) else 0) or 1
    pre = _dict(sample.get("precpu_stats"))
    pre_total = _float(_dict(pre.get("cpu_usage")).get("total_usage"))
    pre_system = _float(pre.get("system_cpu_usage"))
    if not pre_system and previous is not None:
        pre_total, pre_system = previous.cpu_total, previous.system_total
    percent: float | None = None
    if pre_system and system > pre_system and total >= pre_total:
        percent = (total - pre_total) / (system - pre_system) * online * 100.0
        if not 0 <= percent <= 100.0 * online:
            percent = None  # not a reading: counters from a confused (or lying) daemon
    memory = _dict(sample.get("memory_stats"))
    limit = _float(memory.get("limit"))
    try:
        used = _memory_used(memory)
    except (TypeError, ValueError, OverflowError):
        used = None
    return ContainerStats(cpu_percent=percent, mem_used=used,
                          mem_limit=limit or None, cpu_total=total, system_total=system)


def format_cpu(stats: ContainerStats | None, *, compact: bool = False) -> str:
    if stats is None or stats.cpu_percent is None:
        return "-"
    return f"{stats.cpu_percent:.0f}%" if compact else f"{stats.cpu_percent:.1f}%"


def format_memory(stats: ContainerStats | None, *, compact: bool = False) -> str:
    """'769.1 MiB', or in a side pane '769M' / '5.9G' / '12G'."""
    if stats is None or stats.mem_used is None:
        return "-"
    if not compact:
        return format_bytes(stats.mem_used)
    scaled, unit = _scaled_bytes(stats.mem_used)
    precise = abs(scaled) < 10 and unit not in ("B", "KiB")
    return f"{scaled:.1f}{unit[0]}" if precise else f"{scaled:.0f}{unit[0]}"


# -- the table: columns, filtering, sorting ------------------------------------------

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "Name"), ("image", "Image"), ("state", "State"), ("uptime", "Up"),
    ("ports", "Ports"), ("gpu", "GPU"), ("cpu", "CPU"), ("memory", "Mem"),
)
SORTABLE = tuple(key for key, _ in COLUMNS)


def matches(info: ContainerInfo, query: str, device: str = "") -> bool:
    """Case-insensitive substring match on what the row shows, plus id, command and labels."""
    query = query.strip().lower()
    if not query:
        return True
    haystack = " ".join([
        info.name, info.image, info.state_text(), info.id, info.command, device,
        " ".join(info.ports), " ".join(f"{k}={v}" for k, v in info.labels),
    ]).lower()
    return all(word in haystack for word in query.split())


def sort_key(column: str, info: ContainerInfo, stats: ContainerStats | None,
             now: float) -> tuple:
    """A key that sorts rows by `column`; unknown figures go last in ascending order."""
    missing = (1, 0.0, "")
    if column == "cpu":
        value = None if stats is None else stats.cpu_percent
        return missing if value is None else (0, value, info.name)
    if column == "memory":
        value = None if stats is None else stats.mem_used
        return missing if value is None else (0, value, info.name)
    if column == "uptime":
        up = info.uptime(now)
        # running ones first (by time up), then stopped ones by how long ago
        return missing if up is None else (0 if info.running else 0.5, up, info.name)
    if column == "state":
        return (0, info.state_text(), info.name)
    if column == "ports":
        return (0, " ".join(info.ports), info.name)
    if column == "gpu":
        return (0, info.gpu, info.name)
    if column == "image":
        return (0, info.image.lower(), info.name)
    return (0, info.name.lower(), info.id)


def action_outcome(action: str, name: str, after: ContainerInfo | None) -> tuple[str, bool]:
    """What to tell the user after `action`, from docker's state afterwards; and whether
    that state is what was asked. Never "stopped" unless docker says it is."""
    if after is None:
        return f"{action}: {name} asked; its state could not be read back", False
    if action in ("stop", "kill") and after.running:
        return f"{action}: docker answered, but {name} is still {after.state_text()}", False
    done = {"stop": "stopped", "kill": "killed"}.get(action, f"{action}: done")
    return f"{name} {done} ({after.state_text()})", True
