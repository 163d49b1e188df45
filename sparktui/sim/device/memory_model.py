"""The simulated Spark's memory beyond gpu_model's steady state: model loads, reclaim, wedges.

A container deployed on the simulated engine reads its weights (page cache
grows) and copies them into unified memory (anonymous memory grows), at
LOAD_GIB_S. On a GB10 the cache counts against what CUDA can get, so MemFree
falls while MemAvailable holds, exactly as owners report; a cache drop gives it
back. A model bigger than the box drives MemAvailable towards zero: with nobody
stopping it, the box "wedges" (its SSH server stops answering) and comes back
with a new boot id, leaving NVRM lines in the previous boot's kernel log, as
a real Spark does after `NV_ERR_NO_MEMORY`.

Also here: PSI and buddyinfo that follow the memory state, the spbm power
rails, the boot id, and the previous boot's journal and pstore.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

GIB_KB = 1024 * 1024
LOAD_GIB_S = 10.0  # weights read and placed per second (a fast NVMe; quick for the demo)
DEFAULT_MODEL_GIB = 8.0
BYTES_PER_PARAM = 2.0  # bf16 weights
WEDGE_AVAILABLE_KB = 600 * 1024  # below this the box livelocks
WEDGE_AFTER_S = 4.0  # ... once it stayed there this long
DOWN_S = 12.0  # how long a wedged box stays silent before it is back


@dataclass
class _Load:
    start: float
    size_kb: int
    done_kb: int = 0  # anon placed so far (updated on each look)


def model_gib(model: str) -> float:
    """A model's weight size from its name: `...-70b...` -> 70e9 params * 2 bytes."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", model or "")
    if not match:
        return DEFAULT_MODEL_GIB
    return float(match.group(1)) * 1e9 * BYTES_PER_PARAM / 1024**3


@dataclass
class PreviousBoot:
    """What a reboot leaves behind for the post-mortem to read."""

    journal: list[str] = field(default_factory=list)  # `journalctl -k -b -1` lines
    pstore: dict[str, str] = field(default_factory=dict)  # file name -> text


class SimMemory:
    """Extra page cache and anonymous memory of loads, and what reclaim does to them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, seed: int = 0) -> None:
        self.clock = clock
        self.rate_gib_s = LOAD_GIB_S  # tests load faster
        self.down_s = DOWN_S  # ... and reboot faster
        self.loads: dict[str, _Load] = {}
        self.extra_cache_kb = 0  # read by loads, until a drop
        self._cache_since: dict[str, float] = {}
        self.fragmented = False
        digest = hashlib.sha256(f"boot{seed}".encode()).digest()
        self.boot_id = str(uuid.UUID(bytes=digest[:16], version=4))
        self.boots = 0
        self.down_until: float | None = None
        self.booted_at: float | None = None  # clock reading of the last simulated boot
        self.previous = PreviousBoot()
        self.on_reboot: list[Callable[[], None]] = []
        self._starved_since: float | None = None

    # --- loads ---------------------------------------------------------------------------
    def start_load(self, key: str, size_gib: float) -> float:
        """A container starts loading `size_gib` of weights; returns its load time (s)."""
        size_kb = int(size_gib * GIB_KB)
        self.loads[key] = _Load(self.clock(), size_kb)
        return size_gib / self.rate_gib_s

    def end_load(self, key: str) -> None:
        """The container stopped: its anonymous memory is freed (the cache stays)."""
        load = self.loads.pop(key, None)
        if load is not None:
            self.extra_cache_kb += self._read_kb(load)

    def _read_kb(self, load: _Load) -> int:
        return min(load.size_kb, int((self.clock() - load.start) * self.rate_gib_s * GIB_KB))

    def placed_kb(self, key: str) -> int:
        """What one load has placed in memory so far (0 when there is no such load)."""
        load = self.loads.get(key)
        return self._read_kb(load) if load is not None else 0

    def anon_kb(self) -> int:
        return sum(self._read_kb(load) for load in self.loads.values())

    def cache_kb(self) -> int:
        return self.extra_cache_kb + self.anon_kb()  # every byte placed was read first

    # --- reclaim -----------------------------------------------------------------------
    def drop_caches(self) -> None:
        self.extra_cache_kb = -self.anon_kb()  # cache_kb() becomes 0
        self.fragmented = False

    def compact(self) -> None:
        self.fragmented = False

    # --- derived figures -------------------------------------------------------------------
    def pressure(self, available_kb: int, total_kb: int) -> tuple[float, float]:
        """(some, full) avg10 in percent: rises as MemAvailable runs out."""
        share = available_kb / max(1, total_kb)
        if share > 0.15:
            return 0.0, 0.0
        some = min(99.0, (0.15 - share) / 0.15 * 90.0)
        return round(some, 2), round(some * 0.6, 2)

    def buddyinfo(self, free_kb: int) -> list[str]:
        """Free blocks per order: the high orders empty out as MemFree does."""
        normal = []
        for order in range(11):
            block_kb = 4 << order
            share = 0.08 if order < 10 else 0.5
            count = int(free_kb * share / block_kb)
            if order >= 9 and (self.fragmented or free_kb < 2 * GIB_KB):
                count = 0
            normal.append(count)
        rows = [("DMA", [1, 1, 0, 1, 2, 1, 1, 0, 1, 1, 3]),
                ("DMA32", [4, 3, 5, 4, 2, 3, 3, 2, 3, 2, 480]),
                ("Normal", normal)]
        return [f"Node 0, zone {name:>8} " + " ".join(f"{c:6d}" for c in counts)
                for name, counts in rows]

    def check_wedge(self, available_kb: int) -> bool:
        """Called on each meminfo: True when the box just wedged (and will reboot)."""
        now = self.clock()
        if self.down:
            return False
        if available_kb >= WEDGE_AVAILABLE_KB:
            self._starved_since = None
            return False
        if self._starved_since is None:
            self._starved_since = now
            return False
        if now - self._starved_since < WEDGE_AFTER_S:
            return False
        self.wedge("NV_ERR_NO_MEMORY")
        return True

    # --- wedge and reboot ---------------------------------------------------------------------
    @property
    def down(self) -> bool:
        if self.down_until is None:
            return False
        if self.clock() < self.down_until:
            return True
        self.down_until = None
        return False

    def wedge(self, cause: str = "NV_ERR_NO_MEMORY") -> None:
        """The box freezes now and reboots DOWN_S later, leaving evidence of `cause`."""
        self.previous = previous_boot(cause)
        self.down_until = self.clock() + self.down_s
        self.reboot(at=self.down_until)

    def reboot(self, at: float | None = None) -> None:
        self.booted_at = self.clock() if at is None else at
        self.boots += 1
        self.boot_id = str(uuid.uuid4())
        self.loads.clear()
        self.extra_cache_kb = 0
        self.fragmented = False
        self._starved_since = None
        for callback in list(self.on_reboot):
            callback()


def previous_boot(cause: str) -> PreviousBoot:
    """The kernel log tail and pstore a reboot after `cause` leaves."""
    base = ["kernel: Linux version 6.17.0-1029-nvidia (buildd@bos03-arm64-042)",
            "kernel: nvidia: module license 'NVIDIA' taints kernel.",
            "kernel: NVRM: loading NVIDIA UNIX Open Kernel Module for aarch64  580.126.09"]
    if cause == "NV_ERR_NO_MEMORY":
        tail = ["kernel: NVRM: nvAssertOkFailedNoLog: Assertion failed: Out of memory "
                "[NV_ERR_NO_MEMORY] (0x00000051) returned from _memdescAllocInternal",
                "kernel: NVRM: GPU0 RmInitAdapter: ... NV_ERR_NO_MEMORY (0x00000051)",
                "kernel: NVRM: Xid (PCI:000f:01:00): 31, pid=4242, name=python3, "
                "Ch 00000008, intr 10000000. MMU Fault",
                "kernel: INFO: task python3:4242 blocked for more than 122 seconds."]
        return PreviousBoot([*base, *tail])
    if cause == "oom":
        return PreviousBoot([*base,
            "kernel: python3 invoked oom-killer: gfp_mask=0x140dca, order=0, oom_score_adj=0",
            "kernel: Out of memory: Killed process 4242 (python3) total-vm:130000000kB, "
            "anon-rss:120000000kB"])
    if cause == "panic":
        return PreviousBoot(base, {"dmesg-ramoops-0": "Panic#1 Part1\n<0>Kernel panic - "
                                   "not syncing: Fatal exception\n"})
    return PreviousBoot(base)
