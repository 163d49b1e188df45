"""Host figures (CPU, memory, load, temperatures) from one persistent stream.

The device runs a shell loop (sparktui/core/hostscript.py) that prints a
framed block every tick, so one long-lived channel replaces a command per
figure per tick:

    --- sparktui-hoststat <uptime seconds>
    cpu  ...            (the /proc/stat cpu lines)
    MemTotal: ... kB    (/proc/meminfo)
    0.52 0.58 0.59 1/389 12345   (/proc/loadavg)
    thermal <zone type> <millidegrees>
    --- end

Pure: the services layer feeds lines in. A block only becomes a snapshot when
its `--- end` arrives, so a stream cut mid-block or restarted never yields
half a snapshot. Lines inside a block that match nothing are ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sparktui.core.hostscript import (
    BLOCK_BEGIN,
    BLOCK_END,
    BOOT_PREFIX,
    BUDDY_PREFIX,
    MEMINFO_FIELDS,
    PROCHOT_PREFIX,
    PSI_PREFIX,
    RAIL_PREFIX,
)
from sparktui.core.memtruth import (
    BuddyZone,
    Pressure,
    Rail,
    parse_boot_id,
    parse_buddy_line,
    parse_pressure,
    parse_prochot,
    parse_rail_line,
)

__all__ = [
    "BLOCK_END",
    "BLOCK_HEADER",
    "CpuTimes",
    "HostSample",
    "HostSampler",
    "HostSnapshot",
    "HostStatBlockParser",
    "LoadAvg",
    "MemInfo",
    "ThermalZone",
    "cpu_utilisation",
    "hottest",
    "memory_pressure",
    "parse_cpu_line",
    "parse_loadavg",
    "parse_meminfo",
    "parse_thermal_line",
]

BLOCK_HEADER = BLOCK_BEGIN.rstrip()

# A block that never ends (a broken loop, garbage) must not grow memory forever.
MAX_BLOCK_LINES = 4096
# Sockets beyond this are not a DGX Spark; the cap bounds the per-core tuple.
MAX_CPUS = 1024
# Zone readings outside this range are sensor faults (unplugged probes read
# -273 C or 255 C); the OS shuts a Spark down near 105 C.
PLAUSIBLE_CELSIUS = (-40.0, 150.0)


# ---------------------------------------------------------------------------- cpu


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """One /proc/stat cpu line, in clock ticks. Columns an old kernel lacks are 0."""

    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0
    steal: int = 0
    guest: int = 0
    guest_nice: int = 0

    @property
    def idle_all(self) -> int:
        return self.idle + self.iowait

    @property
    def total(self) -> int:
        # guest and guest_nice are already counted in user and nice.
        return (
            self.user + self.nice + self.system + self.idle + self.iowait
            + self.irq + self.softirq + self.steal
        )

    def _counters(self) -> tuple[int, ...]:
        return (self.user, self.nice, self.system, self.idle, self.iowait,
                self.irq, self.softirq, self.steal)


_CPU_LINE = re.compile(r"cpu(\d{0,5})((?:[ \t]+\d{1,20}){4,})[ \t]*", re.ASCII)


def parse_cpu_line(line: str) -> tuple[int | None, CpuTimes] | None:
    """`cpu ...` -> (None, times); `cpu3 ...` -> (3, times); anything else -> None."""
    if not isinstance(line, str):
        return None
    match = _CPU_LINE.fullmatch(line.strip())
    if not match:
        return None
    numbers = [int(x) for x in match.group(2).split()][:10]
    index = int(match.group(1)) if match.group(1) else None
    return index, CpuTimes(*numbers)


def cpu_utilisation(prev: CpuTimes | None, cur: CpuTimes | None) -> float | None:
    """Percent busy between two samples, or None when it cannot be known.

    None when there is no previous sample, when no time passed, and when any
    counter went backwards (a CPU went offline and back, or the box rebooted):
    a reset would otherwise show as a bogus 0 % or 100 % spike.
    """
    if prev is None or cur is None:
        return None
    # spelled out, not a loop over the counters: 21 cores a GB10, 64 GB10s a second
    if (cur.user < prev.user or cur.nice < prev.nice or cur.system < prev.system
            or cur.idle < prev.idle or cur.iowait < prev.iowait or cur.irq < prev.irq
            or cur.softirq < prev.softirq or cur.steal < prev.steal):
        return None
    elapsed = cur.total - prev.total
    if elapsed <= 0:
        return None
    idle = (cur.idle + cur.iowait) - (prev.idle + prev.iowait)
    busy = 100.0 * (elapsed - idle) / elapsed
    return min(100.0, max(0.0, busy))


# ------------------------------------------------------------------------- memory

_MEMINFO_KEYS = MEMINFO_FIELDS  # the lines the host loop sends, and their MemInfo fields
_MEMINFO_LINE = re.compile(r"([A-Za-z0-9_()]+):[ \t]*(\d{1,20})(?:[ \t]*kB)?[ \t]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class MemInfo:
    """The /proc/meminfo figures sparktui uses, in bytes; None when absent."""

    total: int | None = None
    free: int | None = None
    available: int | None = None
    buffers: int | None = None
    cached: int | None = None
    sreclaimable: int | None = None
    shmem: int | None = None
    swap_total: int | None = None
    swap_free: int | None = None
    unevictable: int | None = None
    mlocked: int | None = None

    @property
    def used(self) -> int | None:
        """total - available: what the tools DGX Spark users know call "used"
        (on a GB10 this is the GPU's memory too, as it is unified)."""
        if self.total is None or self.available is None:
            return None
        return max(0, self.total - self.available)

    @property
    def page_cache(self) -> int | None:
        """Cache the kernel can drop: Buffers + Cached + SReclaimable - Shmem.

        Shmem (tmpfs, shared memory) is counted inside Cached but cannot be
        dropped, so it is taken out; this is the figure that fills memory when
        a model loads and warns of pressure. Buffers and SReclaimable count as
        0 when an old kernel does not print them; None without Cached.
        """
        if self.cached is None:
            return None
        cache = (self.buffers or 0) + self.cached + (self.sreclaimable or 0) - (self.shmem or 0)
        return max(0, cache)

    @property
    def swap_used(self) -> int | None:
        if self.swap_total is None or self.swap_free is None:
            return None
        return max(0, self.swap_total - self.swap_free)


def _meminfo_from_lines(lines: Iterable[str]) -> MemInfo:
    values: dict[str, int] = {}
    for line in lines:
        match = _MEMINFO_LINE.fullmatch(line.strip())
        if match:
            attr = _MEMINFO_KEYS.get(match.group(1))
            if attr is not None:
                values[attr] = int(match.group(2)) * 1024
    return MemInfo(**values)


def parse_meminfo(text: str) -> MemInfo:
    """/proc/meminfo text -> MemInfo (kB converted to bytes)."""
    if not isinstance(text, str):
        return MemInfo()
    return _meminfo_from_lines(text.splitlines())


def memory_pressure(mem_available_bytes: int | None, floor_bytes: int) -> bool:
    """True when available memory is below the floor. Unknown is not pressure:
    a box without MemAvailable must not show a permanent warning."""
    return mem_available_bytes is not None and mem_available_bytes < floor_bytes


# ------------------------------------------------------------------ load, thermal


@dataclass(frozen=True, slots=True)
class LoadAvg:
    load1: float
    load5: float
    load15: float
    running: int | None = None
    tasks: int | None = None


_LOADAVG = re.compile(
    r"(\d{1,9}\.\d{1,4})[ \t]+(\d{1,9}\.\d{1,4})[ \t]+(\d{1,9}\.\d{1,4})"
    r"(?:[ \t]+(\d{1,9})/(\d{1,9})(?:[ \t]+\d{1,9})?)?[ \t]*",
    re.ASCII,
)


def parse_loadavg(line: str) -> LoadAvg | None:
    """A /proc/loadavg line -> LoadAvg, else None."""
    if not isinstance(line, str):
        return None
    match = _LOADAVG.fullmatch(line.strip())
    if not match:
        return None
    running = int(match.group(4)) if match.group(4) else None
    tasks = int(match.group(5)) if match.group(5) else None
    return LoadAvg(float(match.group(1)), float(match.group(2)), float(match.group(3)),
                   running, tasks)


@dataclass(frozen=True, slots=True)
class ThermalZone:
    name: str  # the zone's type, raw from the device: sanitise before display
    celsius: float

    @property
    def plausible(self) -> bool:
        low, high = PLAUSIBLE_CELSIUS
        return low <= self.celsius <= high


# The zone type is read whole from sysfs, so it may hold spaces: the number is the last token.
_THERMAL = re.compile(r"thermal[ \t]+(\S.{0,63}?)[ \t]+(-?\d{1,9})[ \t]*", re.ASCII)


def parse_thermal_line(line: str) -> ThermalZone | None:
    """`thermal acpitz 45000` -> ThermalZone("acpitz", 45.0)."""
    if not isinstance(line, str):
        return None
    match = _THERMAL.fullmatch(line.strip())
    if not match:
        return None
    return ThermalZone(match.group(1), int(match.group(2)) / 1000.0)


def hottest(zones: Iterable[ThermalZone]) -> ThermalZone | None:
    """The hottest plausible zone (the usual "system temperature"); None if none."""
    best: ThermalZone | None = None
    for zone in zones:
        if zone.plausible and (best is None or zone.celsius > best.celsius):
            best = zone
    return best


# ---------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One complete block as the device printed it."""

    # The number in the block header: the device's uptime in seconds as the
    # hostscript loop prints it. For spacing samples, not a wall-clock time.
    t: float
    cpu: CpuTimes | None
    cores: tuple[CpuTimes | None, ...]  # by CPU number; None where a CPU is missing
    mem: MemInfo
    load: LoadAvg | None
    thermal: tuple[ThermalZone, ...]
    boot_id: str | None = None
    pressure: Pressure | None = None  # /proc/pressure/memory
    buddy: tuple[BuddyZone, ...] = ()  # /proc/buddyinfo
    rails: tuple[Rail, ...] = ()  # spbm hwmon power rails
    prochot: bool | None = None


_HEADER = re.compile(r"--- sparktui-hoststat[ \t]+([0-9]{1,12}(?:\.[0-9]{0,9})?)[ \t]*", re.ASCII)


class HostStatBlockParser:
    """Feeds stream lines in, gives a HostSnapshot for each complete block."""

    def __init__(self) -> None:
        self._t: float | None = None  # None: outside a block
        self._lines: list[str] = []

    @property
    def in_block(self) -> bool:
        return self._t is not None

    def reset(self) -> None:
        """Forget a block in progress (after a reconnect)."""
        self._t = None
        self._lines = []

    def feed_line(self, line: str) -> HostSnapshot | None:
        try:
            return self._feed(line)
        except Exception:  # text from a device must not take the stream down
            self.reset()
            return None

    def feed_lines(self, lines: Iterable[str]) -> list[HostSnapshot]:
        return [s for line in lines if (s := self.feed_line(line)) is not None]

    def _feed(self, line: str) -> HostSnapshot | None:
        if not isinstance(line, str):
            return None
        stripped = line.strip()
        if stripped.startswith(BLOCK_HEADER):
            # A header inside a block means the previous one was cut: drop it.
            self.reset()
            match = _HEADER.fullmatch(stripped)
            if match:
                t = float(match.group(1))
                if math.isfinite(t):
                    self._t = t
            return None
        if self._t is None:
            return None
        if stripped == BLOCK_END:
            t, lines = self._t, self._lines
            self.reset()
            return _build_snapshot(t, lines)
        if len(self._lines) >= MAX_BLOCK_LINES:
            self.reset()
            return None
        self._lines.append(stripped)
        return None


def _build_snapshot(t: float, lines: list[str]) -> HostSnapshot | None:
    # Once a second per device, so a fleet of 64 runs this 64 times a second: one
    # pass, each line sorted by its first characters before any regex is tried
    # (the per-line parsers above define what each kind of line must look like).
    cpu: CpuTimes | None = None
    cores: dict[int, CpuTimes] = {}
    load: LoadAvg | None = None
    zones: list[ThermalZone] = []
    mem: dict[str, int] = {}
    extras = _Extras()
    cpu_fullmatch = _CPU_LINE.fullmatch
    mem_fullmatch = _MEMINFO_LINE.fullmatch
    mem_keys = _MEMINFO_KEYS
    for line in lines:
        first = line[:1]
        if first in _EXTRAS_FIRST and extras.take(line):
            continue
        if first == "c" and line.startswith("cpu"):
            match = cpu_fullmatch(line)
            if match is not None:
                times = CpuTimes(*[int(x) for x in match.group(2).split()][:10])
                if not match.group(1):
                    cpu = times
                elif (index := int(match.group(1))) < MAX_CPUS:
                    cores[index] = times
        elif first == "t" and line.startswith("thermal"):
            zone = parse_thermal_line(line)
            if zone is not None:
                zones.append(zone)
        elif ":" in line:
            match = mem_fullmatch(line)
            if match is not None:
                attr = mem_keys.get(match.group(1))
                if attr is not None:
                    mem[attr] = int(match.group(2)) * 1024
        elif first.isdigit():  # a load line starts with a digit; nothing else does
            parsed_load = parse_loadavg(line)
            if parsed_load is not None:
                load = parsed_load
    # Every block the loop prints has the aggregate cpu line and MemTotal; one
    # without them is damage, and a snapshot with holes would read as "0 %".
    if cpu is None or "total" not in mem:
        return None
    size = max(cores) + 1 if cores else 0
    return HostSnapshot(
        t=t,
        cpu=cpu,
        cores=tuple(cores.get(i) for i in range(size)),
        mem=MemInfo(**mem),
        load=load,
        thermal=tuple(zones),
        boot_id=extras.boot_id,
        pressure=parse_pressure(extras.psi),
        buddy=tuple(extras.buddy),
        rails=tuple(extras.rails),
        prochot=extras.prochot,
    )


#: the first letters of the lines _Extras takes (psi, buddy, boot, rail, prochot)
_EXTRAS_FIRST = frozenset(p[0] for p in (PSI_PREFIX, BUDDY_PREFIX, BOOT_PREFIX, RAIL_PREFIX,
                                         PROCHOT_PREFIX))


MAX_RAILS = 64
MAX_BUDDY_ZONES = 64


class _Extras:
    """The GB10 lines of a block (boot id, PSI, buddyinfo, rails, PROCHOT)."""

    def __init__(self) -> None:
        self.boot_id: str | None = None
        self.psi: list[str] = []
        self.buddy: list[BuddyZone] = []
        self.rails: list[Rail] = []
        self.prochot: bool | None = None

    def take(self, line: str) -> bool:
        """True when the line was one of these (taken, parsed or not)."""
        if line.startswith(PSI_PREFIX):
            if len(self.psi) < 4:
                self.psi.append(line[len(PSI_PREFIX):])
        elif line.startswith(BUDDY_PREFIX):
            zone = parse_buddy_line(line[len(BUDDY_PREFIX):])
            if zone is not None and len(self.buddy) < MAX_BUDDY_ZONES:
                self.buddy.append(zone)
        elif line.startswith(RAIL_PREFIX):
            rail = parse_rail_line(line[len(RAIL_PREFIX):])
            if rail is not None and len(self.rails) < MAX_RAILS:
                self.rails.append(rail)
        elif line.startswith(BOOT_PREFIX):
            self.boot_id = parse_boot_id(line[len(BOOT_PREFIX):])
        elif line.startswith(PROCHOT_PREFIX):
            self.prochot = parse_prochot(line[len(PROCHOT_PREFIX):])
        else:
            return False
        return True


# ------------------------------------------------------------------------ samples


@dataclass(frozen=True, slots=True)
class HostSample:
    """Figures for the UI, computed from two consecutive snapshots."""

    t: float
    cpu_pct: float | None
    per_core_pct: tuple[float | None, ...]
    load1: float | None
    load5: float | None
    load15: float | None
    mem_total: int | None
    mem_used: int | None
    mem_available: int | None
    page_cache: int | None
    swap_used: int | None
    hottest_zone: ThermalZone | None
    mem: MemInfo | None = None  # every /proc/meminfo figure sparktui reads
    uptime_s: float | None = None  # the device's uptime, from the block header
    boot_id: str | None = None
    pressure: Pressure | None = None
    buddy: tuple[BuddyZone, ...] = ()
    rails: tuple[Rail, ...] = ()
    prochot: bool | None = None
    #: every thermal zone of the block (hottest_zone is the hottest plausible one)
    thermal: tuple[ThermalZone, ...] = ()

    @property
    def mem_free(self) -> int | None:
        return None if self.mem is None else self.mem.free

    @property
    def hottest_c(self) -> float | None:
        return None if self.hottest_zone is None else self.hottest_zone.celsius


class HostSampler:
    """Turns consecutive snapshots into samples; the first has no CPU figures."""

    def __init__(self) -> None:
        self._prev: HostSnapshot | None = None

    def reset(self) -> None:
        self._prev = None

    def update(self, snap: HostSnapshot, t: float | None = None) -> HostSample:
        """The sample of `snap`, timed `t` (the receiver's clock; default the block's)."""
        prev, self._prev = self._prev, snap
        prev_cores = prev.cores if prev is not None else ()
        per_core = tuple(
            cpu_utilisation(prev_cores[i] if i < len(prev_cores) else None, core)
            for i, core in enumerate(snap.cores)
        )
        load = snap.load
        return HostSample(
            t=snap.t if t is None else t,
            cpu_pct=cpu_utilisation(prev.cpu if prev is not None else None, snap.cpu),
            per_core_pct=per_core,
            load1=load.load1 if load else None,
            load5=load.load5 if load else None,
            load15=load.load15 if load else None,
            mem_total=snap.mem.total,
            mem_used=snap.mem.used,
            mem_available=snap.mem.available,
            page_cache=snap.mem.page_cache,
            swap_used=snap.mem.swap_used,
            hottest_zone=hottest(snap.thermal),
            mem=snap.mem,
            uptime_s=snap.t,
            boot_id=snap.boot_id,
            pressure=snap.pressure,
            buddy=snap.buddy,
            rails=snap.rails,
            prochot=snap.prochot,
            thermal=snap.thermal,
        )
