"""A model of one DGX Spark over time, for the simulator: its GPU, CPUs, memory and processes.

Load phases and jitter are pure functions of (seed, time), so two processes with
the same seed and clock agree: the tests' stand-in nvidia-smi is a fresh process
per call and still looks like one machine across calls. What lags (temperatures,
load averages, /proc/stat's jiffies) moves on from one reading to the next.
No I/O here: sim.device.root writes these figures as files, sim.device.nvsmi
prints them as nvidia-smi does.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparktui.sim.device.memory_model import SimMemory

NCPU = 20
USER_HZ = 100
MEM_TOTAL_KB = 127_526_904  # about 121.6 GiB: what a Spark's kernel reports after carve-outs
DRIVER_VERSION = "580.126.09"
CUDA_VERSION = "13.0"
HOSTNAME = "spark-demo"
EPOCH = 120.0  # one slot of the automatic load schedule (s)
MANUAL_MIB = 6_144  # what the process that set_load starts holds
# The X925 cores (cpu0-9) take most work; the weights average 1.
_CPU_WEIGHTS = tuple(1.4 - 0.06 * i if i < 10 else 0.87 - 0.02 * (i - 10) for i in range(NCPU))


def _u(*parts: int) -> float:
    """Uniform [0, 1) from the parts: a stable hash (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def _smooth(seed: int, key: int, t: float, period: float) -> float:
    """Value noise in [0, 1): random knots every `period` seconds, eased between."""
    i = math.floor(t / period)
    f = t / period - i
    a, b = _u(seed, key, i), _u(seed, key, i + 1)
    return a + (b - a) * f * f * (3 - 2 * f)


@dataclass(frozen=True)
class SimProcess:
    """One simulated CUDA compute process, on GPU `gpu`."""

    pid: int
    user: str
    args: str
    gpu: int = 0
    used_memory_mib: int | None = None
    container_id: str | None = None  # set: it runs in this (simulated Docker) container
    #: its memory is not in SimMemory's loads (a seeded container): counted as resident here
    resident_mib: int = 0

    @property
    def exe(self) -> str:
        return self.args.split(" ", 1)[0]


@dataclass(frozen=True)
class _Job:
    """An automatic workload: a model loads, serves bursts, then idles before exiting."""

    pid: int
    start: float
    load_s: float
    serve_end: float
    peak: float
    mem_mib: int
    user: str
    args: str


_JOBS = (
    ("ollama", "/usr/local/bin/ollama runner --model "
     "/usr/share/ollama/.ollama/models/blobs/sha256-6a0746a1ec1a --port {port}"),
    ("spark", "/usr/bin/python3 -m vllm.entrypoints.openai.api_server "
     "--model Qwen/Qwen2.5-7B-Instruct --port 8000"),
    ("spark", "/usr/local/bin/llama-server -m /home/spark/models/gpt-oss-20b-mxfp4.gguf "
     "--port 8080 -ngl 99"),
    ("spark", "/usr/bin/python3 train.py --config configs/lora.yaml"),
)
# Simulated thermal zones: (type, offset from the CPU temperature in C; None: GPU 0's).
# The names are invented; real Sparks expose several zones, some of them ACPI.
THERMAL_ZONES = (("cpu-x925-0", 1.0), ("cpu-x925-1", 0.5), ("cpu-a725-0", -2.0),
                 ("cpu-a725-1", -2.5), ("soc", -1.0), ("gpu", None), ("nvme", -6.0))


class SimDevice:
    """GPU and host state of one simulated machine.

    `clock` is the time axis (seconds); `origin` is the clock reading where the load
    schedule starts (default: now). The tests' stand-in nvidia-smi uses
    `clock=time.time, origin=0` so that separate processes share one schedule.
    With `auto=False` the machine idles unless `set_load` lifts it.
    """

    def __init__(self, gpus: int = 1, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic, *,
                 origin: float | None = None, auto: bool = True,
                 hostname: str = HOSTNAME) -> None:
        self.gpus, self.hostname, self.clock, self.auto = gpus, hostname, clock, auto
        self.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed)
        now = clock()
        self.origin = now if origin is None else origin
        self._wall_offset = time.time() - now  # wall time follows the model clock
        self._manual = [0.0] * gpus
        self._manual_pid: list[int | None] = [None] * gpus
        self._killed: dict[int, float] = {}  # pid -> the model time it was killed at
        self._next_pid = 40_000 + int(_u(self.seed, 7) * 20_000)
        self.uptime0 = 86_400 * (1 + 6 * _u(self.seed, 11))  # booted some days ago
        t = self._at = self._t(now)
        self._gpu_temp, self._cpu_temp = self._temp_targets(t)
        host = self._host_util(t)
        # [busy, idle] jiffies per CPU, from a typical steady state since boot
        self._jiffies = [[self.uptime0 * USER_HZ * 0.045 * w,
                          self.uptime0 * USER_HZ * (1 - 0.045 * w)] for w in _CPU_WEIGHTS]
        self._loadavg = [host * NCPU + 0.2] * 3
        self.memory = SimMemory(clock, self.seed)  # loads, reclaim, wedges and reboots
        self.cx7_peer: SimDevice | None = None  # the Spark cabled to our first CX-7 port
        #: the CUDA processes of running containers (set by the simulated Docker engine)
        self.container_processes: Callable[[], list[SimProcess]] = list

    def _t(self, now: float | None) -> float:
        return (self.clock() if now is None else now) - self.origin

    def wall_time(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) + self._wall_offset

    def set_load(self, fraction: float, gpu: int | None = None) -> None:
        """Hold utilisation at least at `fraction` (0..1), as a process of its own; 0 ends it."""
        for g in range(self.gpus) if gpu is None else [gpu]:
            self._manual[g] = min(1.0, max(0.0, float(fraction)))
            if not self._manual[g]:
                self._manual_pid[g] = None
            elif self._manual_pid[g] is None:
                self._next_pid += 1 + int(_u(self.seed, 13, self._next_pid) * 40)
                self._manual_pid[g] = self._next_pid

    # --- the load -----------------------------------------------------------------------
    def _job(self, gpu: int, t: float) -> _Job | None:
        """The automatic workload on `gpu` at model time t, if one runs then."""
        epoch = math.floor(t / EPOCH)

        def u(key: int) -> float:
            return _u(self.seed, key, gpu, epoch)

        # The first slot always has a job soon after start, so a demo is never dull.
        if not self.auto or t < 0 or (epoch and u(1) >= 0.6):
            return None
        start = epoch * EPOCH + (3.0 + gpu * 1.5 if epoch == 0 else 2 + 18 * u(2))
        load_s, serve_end = 4 + 8 * u(8), start + 4 + 8 * u(8) + 20 + 60 * u(9)
        pid = 100_000 + int(u(6) * 3_900_000)
        if not start <= t < serve_end + 3 + 12 * u(10) or self._killed.get(pid, math.inf) <= t:
            return None
        user, args = _JOBS[int(u(3) * len(_JOBS))]
        return _Job(pid, start, load_s, serve_end, 0.72 + 0.24 * u(12), 4_000 + int(36_000 * u(5)),
                    user, args.format(port=30_000 + int(u(4) * 30_000)))

    def _gpu_load(self, gpu: int, t: float) -> tuple[float, float]:
        """(utilisation 0..1, resident model MiB) of one GPU at model time t."""
        util, mem = 0.0, 0.0
        job = self._job(gpu, t)
        if job is not None:
            mem = job.mem_mib * min(1.0, (t - job.start) / job.load_s)
            if t - job.start < job.load_s:  # loading: memory ramps, little compute
                util = 0.04 + 0.1 * _smooth(self.seed, 20 + gpu, t, 1.0)
            elif t < job.serve_end and _u(self.seed, 21, gpu, math.floor(t / 3.0)) < 0.8:
                util = job.peak * (0.88 + 0.12 * _smooth(self.seed, 22 + gpu, t, 0.7))
            elif t < job.serve_end:  # between bursts of requests
                util = 0.05 * _smooth(self.seed, 23 + gpu, t, 0.5)
        return min(1.0, max(util, self._manual[gpu])), mem

    def _host_util(self, t: float) -> float:
        total = 0.025 + 0.02 * _smooth(self.seed, 40, t, 5.0)
        for g in range(self.gpus):
            job = self._job(g, t)
            if job is not None and t - job.start < job.load_s:
                total += 0.22  # reading weights: several cores busy
            total += 0.05 * self._gpu_load(g, t)[0]  # one host thread feeds each busy GPU
        return min(total, 1.0)

    def _temp_targets(self, t: float) -> tuple[list[float], float]:
        """Where the GPUs' and the CPU's temperatures head at model time t."""
        return ([36.0 + 4.0 * _smooth(self.seed, 30 + g, t, 20.0) + 47.0 * self._gpu_load(g, t)[0]
                 for g in range(self.gpus)],
                40.0 + 3.0 * _smooth(self.seed, 41, t, 25.0) + 45.0 * self._host_util(t))

    def _advance(self, now: float | None) -> float:
        """Move what lags on to model time t (a reading of the past leaves it be); return t."""
        t = self._t(now)
        dt, self._at = t - self._at, max(t, self._at)
        if dt <= 0:
            return t
        host, (gpu_targets, cpu_target) = self._host_util(t), self._temp_targets(t)
        for g, target in enumerate(gpu_targets):
            tau = 25.0 if target > self._gpu_temp[g] else 45.0  # heats faster than it cools
            self._gpu_temp[g] += (target - self._gpu_temp[g]) * (1 - math.exp(-dt / tau))
        self._cpu_temp += (cpu_target - self._cpu_temp) * (1 - math.exp(-dt / 30.0))
        for i, (weight, row) in enumerate(zip(_CPU_WEIGHTS, self._jiffies, strict=True)):
            busy = min(1.0, host * weight * (0.9 + 0.2 * _smooth(self.seed, 50 + i, t, 2.0)))
            row[0] += dt * USER_HZ * busy
            row[1] += dt * USER_HZ * (1 - busy)
        for k, period in enumerate((60.0, 300.0, 900.0)):
            self._loadavg[k] += (host * NCPU + 0.1 - self._loadavg[k]) * (
                1 - math.exp(-dt / period))
        return t

    # --- the GPU ---------------------------------------------------------------------------
    def gpu(self, index: int, now: float | None = None) -> dict[str, Any]:
        """GPU `index` at clock reading `now`, by nvidia-smi's query field names (None: [N/A])."""
        t = self._advance(now)
        util = self._gpu_load(index, t)[0]
        jitter = _smooth(self.seed, 60 + index, t, 0.9)
        temp, power, busy = self._gpu_temp[index], 11.0 + 6.0 * jitter + 46.0 * util, util > 0.02
        reasons = (0x4 if util > 0.88 and power > 53 else 0) | (0x20 if temp > 83 else 0)
        h = hashlib.blake2b(repr((self.seed, "uuid", index)).encode(), digest_size=16).hexdigest()
        wall = self.wall_time(now)
        # what a GB10 on driver 580 reports (shared/reference): no framebuffer, no limits
        return {
            "timestamp": time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(wall))
            + f".{int(wall * 1000) % 1000:03d}",
            "driver_version": DRIVER_VERSION, "index": index, "name": "NVIDIA GB10",
            "uuid": f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
            "pci.bus_id": "0000000F:01:00.0", "compute_cap": "12.1",
            "pstate": "P0" if busy else "P8", "pcie.link.gen.current": 1,
            "temperature.gpu": round(temp), "utilization.gpu": round(100 * util),
            "utilization.memory": 0, "memory.total": None, "memory.used": None,
            "memory.free": None, "power.draw": f"{power:.2f}", "power.limit": None,
            "power.default_limit": None, "enforced.power.limit": None, "fan.speed": None,
            "clocks.current.sm": (2385 + int(104 * util * jitter)) if busy
            else 2400 + int(10 * jitter),
            "clocks.max.sm": 3003, "clocks.current.memory": None, "clocks.max.memory": None,
            "clocks_event_reasons.active": f"0x{reasons:016X}"}

    def nvidia_smi_reading(self, now: float | None = None) -> dict[str, Any]:
        """What nvidia-smi shows at clock reading `now`, as JSON (sim.device.nvsmi prints it):
        the GPUs by query field name, the compute processes, the wall time."""
        now = self.clock() if now is None else now
        return {"wall": self.wall_time(now), "driver_version": DRIVER_VERSION,
                "cuda_version": CUDA_VERSION, "gpus": [self.gpu(g, now) for g in range(self.gpus)],
                "apps": [vars(p) for p in self.compute_apps(now)]}

    # --- processes --------------------------------------------------------------------------
    def compute_apps(self, now: float | None = None) -> list[SimProcess]:
        """The CUDA processes, by pid: the automatic jobs', set_load's and the containers'."""
        t = self._t(now)
        procs = []
        for g in range(self.gpus):
            job = self._job(g, t)
            if job is not None:
                procs.append(SimProcess(job.pid, job.user, job.args, gpu=g,
                                        used_memory_mib=max(1, int(self._gpu_load(g, t)[1]))))
            if self._manual_pid[g] is not None:
                procs.append(SimProcess(self._manual_pid[g], "spark",
                                        "/usr/bin/python3 serve.py --port 8000", gpu=g,
                                        used_memory_mib=MANUAL_MIB))
        return sorted([*procs, *self.container_processes()], key=lambda p: p.pid)

    def kill(self, pid: int, now: float | None = None) -> None:
        """End a simulated process (the kill stand-in checked that it runs and is the user's)."""
        if pid in self._manual_pid:
            self.set_load(0, self._manual_pid.index(pid))
        else:
            self._killed[pid] = self._t(now)

    # --- the host's /proc figures -------------------------------------------------------------
    def meminfo(self, now: float | None = None) -> str:
        t = self._t(now)
        models_kb = int(sum(self._gpu_load(g, t)[1] for g in range(self.gpus)) * 1024)
        resident_kb = models_kb + 1024 * (  # a GB10's GPU memory is all in host RAM
            MANUAL_MIB * sum(pid is not None for pid in self._manual_pid)
            + sum(p.resident_mib for p in self.container_processes()))
        # model files read while loading stay in the page cache
        cached = (7_800_000 + int(900_000 * _smooth(self.seed, 70, t, 30.0)) + models_kb
                  + self.memory.cache_kb())
        buffers = 412_000 + int(30_000 * _smooth(self.seed, 71, t, 40.0))
        apps = (5_600_000 + int(400_000 * _smooth(self.seed, 72, t, 15.0)) + resident_kb
                + self.memory.anon_kb())
        slab_r, slab_u = 610_000, 402_000
        # the kernel reclaims cache only once free memory hits its watermark
        cached = max(0, min(cached, MEM_TOTAL_KB - apps - buffers - slab_r - slab_u - 180_000))
        free = max(180_000, MEM_TOTAL_KB - apps - cached - buffers - slab_r - slab_u)
        available = max(0, min(free + int(cached * 0.82) + buffers + slab_r // 2,
                               MEM_TOTAL_KB - apps))
        # what the product's host and memory-truth scripts read, in /proc/meminfo's order
        rows = [("MemTotal", MEM_TOTAL_KB), ("MemFree", free), ("MemAvailable", available),
                ("Buffers", buffers), ("Cached", cached), ("Unevictable", 30_712),
                ("Mlocked", 30_712), ("SwapTotal", 16_777_212), ("SwapFree", 16_777_212),
                ("AnonPages", apps), ("Shmem", 146_000), ("Slab", slab_r + slab_u),
                ("SReclaimable", slab_r), ("SUnreclaim", slab_u),
                ("Committed_AS", 14_200_000 + resident_kb)]
        return "".join(f"{name + ':':<16}{value:>8} kB\n" for name, value in rows)

    def proc_stat(self, now: float | None = None) -> str:
        """/proc/stat: the `cpu` line is the sum of the `cpuN` lines, as the kernel's is."""
        t = self._advance(now)
        rows = [[int(busy * 0.84), 0, int(busy * 0.13), int(idle * 0.995), int(idle * 0.005), 0,
                 int(busy * 0.03), 0, 0, 0] for busy, idle in self._jiffies]
        total = [sum(column) for column in zip(*rows, strict=True)]
        btime = int(self.wall_time(now) - self.uptime0 - t)
        return "".join(f"{name} {' '.join(map(str, row))}\n" for name, row in
                       [("cpu ", total), *((f"cpu{n}", row) for n, row in enumerate(rows))]) + \
            f"btime {btime}\nprocs_running {max(1, round(self._host_util(t) * NCPU))}\n"

    def loadavg(self, now: float | None = None) -> str:
        t = self._advance(now)
        threads = 1_180 + 12 * len(self.compute_apps(now))
        running = max(1, round(self._host_util(t) * NCPU))
        return (" ".join(f"{v:.2f}" for v in self._loadavg) + f" {running}/{threads} "
                f"{40_000 + int((self.uptime0 + t) * 2.1)}\n")

    def uptime_s(self, now: float | None = None) -> float:
        booted = self.memory.booted_at
        if booted is not None:  # rebooted in the simulation: counts from then
            return 20.0 + max(0.0, (self.clock() if now is None else now) - booted)
        return self.uptime0 + self._t(now)

    def thermal(self, now: float | None = None) -> list[tuple[str, int]]:
        """(type, millidegrees C) of each simulated thermal zone, in zone order."""
        t = self._advance(now)
        zones = []
        for i, (name, offset) in enumerate(THERMAL_ZONES):
            value = self._gpu_temp[0] if offset is None else self._cpu_temp + offset
            value += 0.6 * _smooth(self.seed, 80 + i, t, 3.0)
            zones.append((name, round(value * 20) * 50))  # real zones step 50-100 m C
        return zones
