"""The GB10's memory truth: what CUDA can get now, what reclaim would give, and the
signs that come before a livelock.

On a GB10 the GPU allocates from the same LPDDR5x pool as the CPU, and CUDA's
"free" (`cudaMemGetInfo`) follows MemFree, not MemAvailable: page cache counts
as used until the kernel drops it. So the two figures are shown side by side,
with what sits between them (cache, shared memory, locked pages). Before the
`NV_ERR_NO_MEMORY` livelocks owners report, the high-order free blocks in
/proc/buddyinfo run out and memory pressure (PSI) climbs.

Pure parsers for the `psi`, `buddy`, `rail`, `prochot` and `boot` lines of the
host stream (sparktui.core.hostscript). Text comes from another machine: every
parser takes any string and returns None rather than raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hoststat parses the stream with this module's parsers
    from sparktui.core.hoststat import MemInfo

__all__ = [
    "HIGH_ORDER",
    "BuddyZone",
    "Fragmentation",
    "MemoryTruth",
    "Pressure",
    "PressureLine",
    "Rail",
    "fragmentation",
    "memory_truth",
    "parse_boot_id",
    "parse_buddy_line",
    "parse_pressure",
    "parse_pressure_line",
    "parse_prochot",
    "parse_rail_line",
]

GIB = 1024**3
#: blocks of order 10 (4 MiB with 4 KiB pages) and up: what ran out before the livelocks
HIGH_ORDER = 10
# Zones too small to matter for a model's allocations; they keep a few high-order
# blocks forever and would hide the Normal zone running out.
_SMALL_ZONES = frozenset({"DMA", "DMA32"})
MAX_ORDERS = 16  # kernels have 11 (4 KiB pages) to 14 orders; more is damage
MAX_ZONES = 64


# ----------------------------------------------------------------------------- PSI

@dataclass(frozen=True, slots=True)
class PressureLine:
    """One line of /proc/pressure/memory: the share of time tasks stalled on memory."""

    avg10: float
    avg60: float
    avg300: float
    total_us: int | None = None


@dataclass(frozen=True, slots=True)
class Pressure:
    """`some`: at least one task stalled; `full`: every runnable task stalled."""

    some: PressureLine | None = None
    full: PressureLine | None = None


_PSI = re.compile(
    r"(some|full)[ \t]+avg10=(\d{1,3}(?:\.\d{1,4})?)[ \t]+avg60=(\d{1,3}(?:\.\d{1,4})?)"
    r"[ \t]+avg300=(\d{1,3}(?:\.\d{1,4})?)(?:[ \t]+total=(\d{1,20}))?[ \t]*", re.ASCII)


def parse_pressure_line(line: str) -> tuple[str, PressureLine] | None:
    """`some avg10=1.00 avg60=0.50 avg300=0.10 total=123` -> ("some", PressureLine)."""
    if not isinstance(line, str):
        return None
    match = _PSI.fullmatch(line.strip())
    if not match:
        return None
    values = [float(match.group(i)) for i in (2, 3, 4)]
    if any(not 0.0 <= v <= 100.0 for v in values):
        return None  # a share of time: anything else is damage
    total = int(match.group(5)) if match.group(5) else None
    return match.group(1), PressureLine(*values, total_us=total)


def parse_pressure(lines: Iterable[str]) -> Pressure | None:
    """The lines of /proc/pressure/memory -> Pressure; None when none parse."""
    found: dict[str, PressureLine] = {}
    for line in lines:
        parsed = parse_pressure_line(line)
        if parsed is not None:
            found[parsed[0]] = parsed[1]
    if not found:
        return None
    return Pressure(some=found.get("some"), full=found.get("full"))


# ------------------------------------------------------------------------ buddyinfo

@dataclass(frozen=True, slots=True)
class BuddyZone:
    """One /proc/buddyinfo line: free blocks of each order (2^order pages) in a zone."""

    node: int
    zone: str
    free_blocks: tuple[int, ...]  # index = order

    def high_order_blocks(self, order: int = HIGH_ORDER) -> int:
        return sum(self.free_blocks[order:])


_BUDDY = re.compile(r"Node[ \t]+(\d{1,4}),[ \t]*zone[ \t]+([A-Za-z0-9_]{1,32})"
                    r"((?:[ \t]+\d{1,20}){1,16})[ \t]*", re.ASCII)  # 16: MAX_ORDERS


def parse_buddy_line(line: str) -> BuddyZone | None:
    """`Node 0, zone   Normal  216 118 ... 20` -> BuddyZone."""
    if not isinstance(line, str):
        return None
    match = _BUDDY.fullmatch(line.strip())
    if not match:
        return None
    counts = tuple(int(x) for x in match.group(3).split())
    return BuddyZone(int(match.group(1)), match.group(2), counts)


@dataclass(frozen=True, slots=True)
class Fragmentation:
    """High-order free blocks in the zones a model's memory comes from."""

    order: int  # the order counted from (HIGH_ORDER, or the top order on a small kernel)
    blocks: int  # free blocks at that order and above
    zones: tuple[str, ...]  # the zones counted

    @property
    def exhausted(self) -> bool:
        return self.blocks == 0

    @property
    def warning(self) -> str | None:
        if not self.exhausted:
            return None
        return (f"no free blocks of order {self.order} or more left: memory is fragmented, "
                "and large GPU allocations can stall the box (compact memory)")


def fragmentation(zones: Iterable[BuddyZone]) -> Fragmentation | None:
    """Free blocks at order >= HIGH_ORDER in the big zones; None with no zone to count."""
    chosen = [z for z in zones if z.zone not in _SMALL_ZONES and z.free_blocks]
    if not chosen:
        return None
    top = min(len(z.free_blocks) for z in chosen) - 1
    order = min(HIGH_ORDER, top)
    return Fragmentation(order=order, blocks=sum(z.high_order_blocks(order) for z in chosen),
                         zones=tuple(dict.fromkeys(f"{z.zone}@{z.node}" for z in chosen)))


# --------------------------------------------------------------- rails, prochot, boot

@dataclass(frozen=True, slots=True)
class Rail:
    """One spbm hwmon power rail (sys_total, soc_pkg, cpu_gpu, gpu, dc_input, pl1...)."""

    label: str  # raw from the device: sanitise before display
    watts: float


_RAIL = re.compile(r"([A-Za-z0-9_.:-]{1,48})[ \t]+(\d{1,15})[ \t]*", re.ASCII)


def parse_rail_line(text: str) -> Rail | None:
    """`sys_total 45123000` (µW, after the `rail ` prefix) -> Rail("sys_total", 45.123)."""
    if not isinstance(text, str):
        return None
    match = _RAIL.fullmatch(text.strip())
    if not match:
        return None
    return Rail(match.group(1), int(match.group(2)) / 1e6)


def parse_prochot(text: str) -> bool | None:
    """The platform device's prochot value: `0`/`1` (some drivers print words)."""
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    if value in ("1", "yes", "on", "active", "asserted", "true"):
        return True
    if value in ("0", "no", "off", "inactive", "deasserted", "false"):
        return False
    return None


_BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_boot_id(text: str) -> str | None:
    """The kernel's boot id (a UUID, lower case), or None."""
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    return value if _BOOT_ID.fullmatch(value) else None


# ----------------------------------------------------------------------- the truth

@dataclass(frozen=True, slots=True)
class MemoryTruth:
    """Every memory figure of a GB10, each one labelled in words. Bytes; None: unknown."""

    total: int | None
    free_for_cuda: int | None  # MemFree: what cudaMemGetInfo reports as free on a GB10
    available_after_reclaim: int | None  # MemAvailable
    reclaimable_cache: int | None  # page cache + buffers + reclaimable slab, less Shmem
    shared: int | None  # Shmem: /dev/shm and tmpfs, taken from the same pool
    locked: int | None  # Unevictable (Mlocked is inside it): never reclaimed
    swap_used: int | None
    swap_total: int | None
    gpu_processes: int | None  # what the GPU processes hold (--query-compute-apps)
    pressure: Pressure | None
    fragmentation: Fragmentation | None

    #: (attribute, label in words) in display order
    LABELS = (
        ("free_for_cuda", "Free for CUDA now (MemFree)"),
        ("available_after_reclaim", "Available after reclaim (MemAvailable)"),
        ("total", "Total memory (MemTotal)"),
        ("reclaimable_cache", "Page cache + buffers, reclaimable"),
        ("shared", "Shared memory, /dev/shm (Shmem)"),
        ("locked", "Locked, never reclaimed (Unevictable)"),
        ("gpu_processes", "Held by GPU processes"),
        ("swap_used", "Swap used"),
    )

    @property
    def cache_gap(self) -> int | None:
        """What a cache drop would hand CUDA: MemAvailable - MemFree."""
        if self.free_for_cuda is None or self.available_after_reclaim is None:
            return None
        return max(0, self.available_after_reclaim - self.free_for_cuda)

    def rows(self) -> list[tuple[str, int | None]]:
        return [(label, getattr(self, attr)) for attr, label in self.LABELS]

    def warnings(self, free_floor_bytes: int | None = None) -> list[str]:
        """Plain sentences for what needs attention now."""
        out: list[str] = []
        if (free_floor_bytes is not None and self.free_for_cuda is not None
                and self.free_for_cuda < free_floor_bytes):
            gap = self.cache_gap
            more = (f"; dropping caches would free about {gap / GIB:.1f} GiB"
                    if gap else "")
            out.append(f"only {self.free_for_cuda / GIB:.1f} GiB free for CUDA{more}")
        if self.fragmentation is not None and self.fragmentation.warning:
            out.append(self.fragmentation.warning)
        some = self.pressure.some if self.pressure else None
        if some is not None and some.avg10 >= 10.0:
            out.append(f"tasks stalled on memory {some.avg10:.0f} % of the last 10 s")
        return out

    def as_json(self) -> dict:
        psi = self.pressure
        frag = self.fragmentation

        def line(p: PressureLine | None) -> dict | None:
            return None if p is None else {"avg10": p.avg10, "avg60": p.avg60,
                                           "avg300": p.avg300}

        return {
            "total_bytes": self.total,
            "free_for_cuda_bytes": self.free_for_cuda,
            "available_after_reclaim_bytes": self.available_after_reclaim,
            "reclaimable_cache_bytes": self.reclaimable_cache,
            "shmem_bytes": self.shared,
            "unevictable_bytes": self.locked,
            "gpu_processes_bytes": self.gpu_processes,
            "swap_used_bytes": self.swap_used,
            "swap_total_bytes": self.swap_total,
            "pressure": None if psi is None else {"some": line(psi.some), "full": line(psi.full)},
            "high_order_free_blocks": None if frag is None else frag.blocks,
            "high_order": None if frag is None else frag.order,
            "fragmentation_warning": None if frag is None else frag.warning,
        }


def memory_truth(mem: MemInfo, *, pressure: Pressure | None = None,
                 buddy: Iterable[BuddyZone] = (),
                 gpu_processes_bytes: int | None = None) -> MemoryTruth:
    locked = mem.unevictable if mem.unevictable is not None else mem.mlocked
    gpu = gpu_processes_bytes
    if gpu is not None and (gpu < 0 or not math.isfinite(gpu)):
        gpu = None
    return MemoryTruth(
        total=mem.total, free_for_cuda=mem.free, available_after_reclaim=mem.available,
        reclaimable_cache=mem.page_cache, shared=mem.shmem, locked=locked,
        swap_used=mem.swap_used, swap_total=mem.swap_total, gpu_processes=gpu,
        pressure=pressure, fragmentation=fragmentation(buddy))
