"""The simulated Spark's memory beyond its steady state: model loads, reclaim, wedges.

A container deployed on the simulated engine reads its weights (page cache grows)
and places them in unified memory (anonymous memory grows) at `rate_gib_s`. On a
GB10 the cache counts against what CUDA can get, so MemFree falls while
MemAvailable holds, as owners report; a cache drop gives it back. With nobody
stopping a model bigger than the box, MemAvailable stays near zero until the box
wedges (its SSH server stops answering) and comes back with a new boot id and
NVRM lines in the previous boot's kernel log, as a real Spark does after
NV_ERR_NO_MEMORY.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable

GIB_KB = 1024 * 1024
WEDGE_AVAILABLE_KB = 600 * 1024  # below this the box livelocks ...
WEDGE_AFTER_S = 4.0  # ... once it stayed there this long


def model_gib(model: str) -> float:
    """A model's bf16 weight size from its name: `...-70b...` -> 70e9 params * 2 bytes."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model or "")
    return float(match.group(1)) * 2e9 / 1024**3 if match else 8.0


#: the tail of the kernel log (`journalctl -k -b -1`) that a reboot after a wedge leaves
PREVIOUS_BOOT = (
    "kernel: Linux version 6.17.0-1029-nvidia (buildd@bos03-arm64-042)",
    "kernel: nvidia: module license 'NVIDIA' taints kernel.",
    "kernel: NVRM: loading NVIDIA UNIX Open Kernel Module for aarch64  580.126.09",
    "kernel: NVRM: nvAssertOkFailedNoLog: Assertion failed: Out of memory "
    "[NV_ERR_NO_MEMORY] (0x00000051) returned from _memdescAllocInternal",
    "kernel: NVRM: GPU0 RmInitAdapter: ... NV_ERR_NO_MEMORY (0x00000051)",
    "kernel: NVRM: Xid (PCI:000f:01:00): 31, pid=4242, name=python3, "
    "Ch 00000008, intr 10000000. MMU Fault",
    "kernel: INFO: task python3:4242 blocked for more than 122 seconds.")


class SimMemory:
    """Page cache and anonymous memory of model loads, what reclaim does to them, and
    the wedge and reboot a load too big for the box ends in."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self.clock = clock
        self.rate_gib_s = 10.0  # weights read and placed per second (a fast NVMe)
        self.down_s = 12.0  # how long a wedged box stays silent before it is back
        self.loads: dict[str, tuple[float, int]] = {}  # key -> (start, size in kB)
        self.extra_cache_kb = 0  # read by loads that ended, until a drop
        digest = hashlib.sha256(f"boot{seed}".encode()).digest()
        self.boot_id = str(uuid.UUID(bytes=digest[:16], version=4))
        self.booted_at: float | None = None  # clock reading of the last simulated boot
        self.previous: list[str] = []  # the previous boot's kernel log
        self.on_reboot: list[Callable[[], None]] = []
        self._starved_since: float | None = None

    def start_load(self, key: str, size_gib: float) -> float:
        """A container starts loading `size_gib` of weights; returns its load time (s)."""
        self.loads[key] = (self.clock(), int(size_gib * GIB_KB))
        return size_gib / self.rate_gib_s

    def end_load(self, key: str) -> None:
        """The container stopped: its anonymous memory is freed (what it read stays cached)."""
        if key in self.loads:
            self.extra_cache_kb += self.placed_kb(key)
            del self.loads[key]

    def placed_kb(self, key: str) -> int:
        """What one load has placed in memory so far (0 when there is no such load)."""
        start, size_kb = self.loads.get(key, (0.0, 0))
        return min(size_kb, int((self.clock() - start) * self.rate_gib_s * GIB_KB))

    def anon_kb(self) -> int:
        return sum(self.placed_kb(key) for key in self.loads)

    def cache_kb(self) -> int:
        return self.extra_cache_kb + self.anon_kb()  # every byte placed was read first

    def drop_caches(self) -> None:
        self.extra_cache_kb = -self.anon_kb()  # cache_kb() becomes 0

    def pressure(self, available_kb: int, total_kb: int) -> tuple[float, float]:
        """(some, full) avg10 of /proc/pressure/memory, in percent: rises as MemAvailable
        runs out."""
        share = available_kb / max(1, total_kb)
        some = 0.0 if share > 0.15 else min(99.0, (0.15 - share) / 0.15 * 90.0)
        return round(some, 2), round(some * 0.6, 2)

    def buddyinfo(self, free_kb: int) -> list[str]:
        """Free blocks per order: the high orders empty out as MemFree does."""
        normal = [0 if order >= 9 and free_kb < 2 * GIB_KB else
                  int(free_kb * (0.08 if order < 10 else 0.5) / (4 << order))
                  for order in range(11)]
        rows = [("DMA", [1, 1, 0, 1, 2, 1, 1, 0, 1, 1, 3]),
                ("DMA32", [4, 3, 5, 4, 2, 3, 3, 2, 3, 2, 480]), ("Normal", normal)]
        return [f"Node 0, zone {name:>8} " + " ".join(f"{c:6d}" for c in counts)
                for name, counts in rows]

    def check_wedge(self, available_kb: int) -> None:
        """Called on each refresh: wedge the box once MemAvailable stayed too low too long."""
        now = self.clock()
        if self.down or available_kb >= WEDGE_AVAILABLE_KB:
            self._starved_since = None
        elif self._starved_since is None:
            self._starved_since = now
        elif now - self._starved_since >= WEDGE_AFTER_S:
            self.wedge()

    @property
    def down(self) -> bool:
        return self.booted_at is not None and self.clock() < self.booted_at

    def wedge(self) -> None:
        """The box freezes now (NV_ERR_NO_MEMORY) and is back `down_s` later, leaving the
        evidence in the previous boot's kernel log."""
        self.previous = list(PREVIOUS_BOOT)
        self.booted_at = self.clock() + self.down_s
        self.boot_id = str(uuid.uuid4())
        self.loads.clear()
        self.extra_cache_kb = 0
        self._starved_since = None
        for callback in list(self.on_reboot):
            callback()
