"""A model of a DGX Spark's GPU and host state over time, for the simulator.

Everything that is not integrated over time (load phases, jitter) is a pure
function of (seed, time), so two processes with the same seed and clock agree:
the stand-in `nvidia-smi` is a fresh process per call and must still look like
one machine across calls. Quantities that accumulate (temperatures lag load,
/proc/stat jiffies, load averages) are integrated on a fixed time grid, so a
seeded device with a fake clock gives the same numbers for the same clock
readings no matter how often it was queried in between.

No I/O and no asyncio here: `nvsmi`, `shell` and the stand-in script render it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparktui.sim.device.memory_model import SimMemory

KINDS = ("gb10", "discrete")
NCPU = 20
USER_HZ = 100
# About 121.6 GiB: what a Spark's kernel reports after firmware/GPU carve-outs.
MEM_TOTAL_KB = 127_526_904
DRIVER_VERSION = "580.126.09"
CUDA_VERSION = "13.0"
HOSTNAME = "spark-demo"

_STEP = 0.5  # integration grid (s)
_EPOCH = 120.0  # one slot of the automatic load schedule (s)
_MASK64 = (1 << 64) - 1


def _mix(*parts: int) -> int:
    """splitmix64 over the parts: a stable hash (Python's hash() is salted per process)."""
    x = 0x9E3779B97F4A7C15
    for part in parts:
        x = (x ^ (part & _MASK64)) & _MASK64
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x


def _u(*parts: int) -> float:
    """Uniform [0, 1) from the parts."""
    return _mix(*parts) / 2.0**64


def _smooth(seed: int, key: int, t: float, period: float) -> float:
    """Value noise in [0, 1): random knots every `period` seconds, eased between."""
    i = math.floor(t / period)
    f = t / period - i
    f = f * f * (3 - 2 * f)
    a, b = _u(seed, key, i), _u(seed, key, i + 1)
    return a + (b - a) * f


@dataclass(frozen=True)
class SimProcess:
    """One simulated host process; `gpu` set means it is a CUDA compute process."""

    pid: int
    user: str
    args: str
    gpu: int | None = None
    used_memory_mib: int | None = None
    start: float = 0.0  # device time it started
    container_id: str | None = None  # set: it runs in this (simulated Docker) container
    #: its memory is not in SimMemory's loads (a seeded container): counted as resident here
    resident_mib: int = 0

    @property
    def exe(self) -> str:
        return self.args.split(" ", 1)[0]


@dataclass(frozen=True)
class GpuReading:
    """One GPU sample; None means the driver reports it as [N/A]."""

    index: int
    uuid: str
    name: str
    pci_bus_id: str
    pstate: str
    utilization_gpu: int
    utilization_memory: int
    memory_total: int | None
    memory_used: int | None
    memory_free: int | None
    temperature: int
    power_draw: float
    power_limit: float | None
    power_default_limit: float | None
    clocks_sm: int
    clocks_max_sm: int
    clocks_mem: int | None
    clocks_max_mem: int | None
    fan_speed: int | None
    event_reasons: int
    pcie_gen_current: int
    compute_cap: str


@dataclass(frozen=True)
class _Job:
    """An automatic workload: a model loads, serves bursts, then idles before exiting."""

    pid: int
    start: float
    load_s: float
    compute_s: float
    linger_s: float
    peak: float
    mem_mib: int
    user: str
    args: str

    @property
    def end(self) -> float:
        return self.start + self.load_s + self.compute_s + self.linger_s


_GB10_JOBS = (
    ("ollama", "/usr/local/bin/ollama runner --model "
     "/usr/share/ollama/.ollama/models/blobs/sha256-6a0746a1ec1a --port {port}"),
    ("spark", "/usr/bin/python3 -m vllm.entrypoints.openai.api_server "
     "--model Qwen/Qwen2.5-7B-Instruct --port 8000"),
    ("spark", "/usr/local/bin/llama-server -m /home/spark/models/gpt-oss-20b-mxfp4.gguf "
     "--port 8080 -ngl 99"),
    ("spark", "/usr/bin/python3 train.py --config configs/lora.yaml"),
)

# Long-lived host processes, present from boot; pid 1 cannot be killed.
_HOST_PROCS = (
    (1, "root", "/sbin/init splash"),
    (742, "root", "/usr/lib/systemd/systemd-journald"),
    (1018, "root", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
    (1102, "root", "/usr/bin/containerd"),
    (1187, "nvidia-persistenced", "/usr/bin/nvidia-persistenced --user nvidia-persistenced"),
    (1263, "ollama", "/usr/local/bin/ollama serve"),
    (1420, "root", "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock"),
    (2311, "root", "/opt/nvidia/dgx-dashboard-service/dgx-dashboard-service"),
)

# Simulated thermal zones: (type, offset from the CPU temperature in C).
# The names are invented; real Sparks expose several zones, some of them ACPI.
THERMAL_ZONES = (
    ("cpu-x925-0", 1.0),
    ("cpu-x925-1", 0.5),
    ("cpu-a725-0", -2.0),
    ("cpu-a725-1", -2.5),
    ("soc", -1.0),
    ("gpu", None),  # follows GPU 0
    ("nvme", -6.0),
)


class SimDevice:
    """GPU and host state of one simulated machine.

    `clock` is the time axis (seconds); `origin` is the clock reading that counts
    as the start of the load schedule (default: now). The stand-in nvidia-smi uses
    `clock=time.time, origin=0` so separate processes share one schedule.
    With `auto=False` the machine idles unless `set_load`/`add_load_burst` lift it.
    """

    def __init__(self, gpus: int = 1, kind: str = "gb10", seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic, *,
                 origin: float | None = None, auto: bool = True,
                 hostname: str = HOSTNAME) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if gpus < 1:
            raise ValueError("gpus must be at least 1")
        self.gpus = gpus
        self.kind = kind
        self.hostname = hostname
        self.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed)
        self.clock = clock
        self.auto = auto
        now = clock()
        self.origin = now if origin is None else origin
        # Wall time follows the model clock, so a fake clock gives matching timestamps.
        self._wall_offset = time.time() - now
        self._manual = [0.0] * gpus
        self._manual_pid: list[int | None] = [None] * gpus
        self._bursts: list[list[tuple[float, float, float]]] = [[] for _ in range(gpus)]
        self._killed: set[int] = set()
        self._killed_at: dict[int, float] = {}
        self._next_pid = 40_000 + int(_u(self.seed, 7) * 20_000)
        # Boot some days ago; jiffies and loadavg start from a typical steady state.
        self.uptime0 = 86_400 * (1 + 6 * _u(self.seed, 11))
        self._grid_t = self._t(now)
        self._gpu_temp = [self._temp_target(g, self._grid_t) for g in range(gpus)]
        self._cpu_temp = self._cpu_temp_target(self._grid_t, self._host_util(self._grid_t))
        share = self.uptime0 * USER_HZ
        self._jiffies = [[share * 0.035 * w, 0.0, share * 0.008 * w, share * (1 - 0.045 * w),
                          share * 0.001, 0.0, share * 0.001, 0.0]
                         for w in self._cpu_weights()]
        base = self._host_util(self._grid_t) * NCPU + 0.2
        self._loadavg = [base, base, base]
        self.memory = SimMemory(clock, self.seed)  # loads, reclaim, wedges and reboots
        self.cx7_peer: SimDevice | None = None  # the Spark cabled to our first CX-7 port
        #: the CUDA processes of running containers (set by the simulated Docker engine)
        self.container_processes: Callable[[], list[SimProcess]] = list
        #: the SimDockerEngine serving this device, once attached (the docker stand-in asks it)
        self.docker_engine: Any = None

    # --- time ------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def _t(self, now: float | None) -> float:
        return (self.clock() if now is None else now) - self.origin

    def wall_time(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) + self._wall_offset

    # --- load control ------------------------------------------------------------
    def _gpu_list(self, gpu: int | None) -> range | list[int]:
        return range(self.gpus) if gpu is None else [gpu]

    def set_load(self, fraction: float, gpu: int | None = None) -> None:
        """Hold utilisation at least at `fraction` (0..1) until changed; 0 releases it."""
        fraction = min(1.0, max(0.0, float(fraction)))
        for g in self._gpu_list(gpu):
            self._manual[g] = fraction
            if fraction > 0 and self._manual_pid[g] is None:
                self._manual_pid[g] = self._new_pid()
            elif fraction == 0:
                self._manual_pid[g] = None

    def add_load_burst(self, seconds: float, level: float = 0.9, gpu: int | None = None,
                       now: float | None = None) -> None:
        """Lift utilisation to `level` for the next `seconds` (e.g. one chat answer)."""
        t = self._t(now)
        for g in self._gpu_list(gpu):
            self._bursts[g] = [b for b in self._bursts[g] if b[1] > t]
            self._bursts[g].append((t, t + max(0.0, seconds), min(1.0, max(0.0, level))))

    def _new_pid(self) -> int:
        self._next_pid += 1 + int(_u(self.seed, 13, self._next_pid) * 40)
        return self._next_pid

    # --- the automatic schedule --------------------------------------------------
    def _job(self, gpu: int, epoch: int) -> _Job | None:
        s = self.seed
        # The first slot always has a job soon after start, so a demo is never dull.
        if epoch != 0 and _u(s, 1, gpu, epoch) >= 0.6:
            return None
        start = epoch * _EPOCH + (3.0 + gpu * 1.5 if epoch == 0 else 2 + 18 * _u(s, 2, gpu, epoch))
        kinds = _GB10_JOBS
        user, args = kinds[int(_u(s, 3, gpu, epoch) * len(kinds))]
        port = 30_000 + int(_u(s, 4, gpu, epoch) * 30_000)
        if self.kind == "gb10":
            mem = 4_000 + int(36_000 * _u(s, 5, gpu, epoch))
        else:
            mem = 9_000 + int(60_000 * _u(s, 5, gpu, epoch))
        pid = 100_000 + _mix(s, 6, gpu, epoch) % 3_900_000
        return _Job(pid=pid, start=start, load_s=4 + 8 * _u(s, 8, gpu, epoch),
                    compute_s=20 + 60 * _u(s, 9, gpu, epoch),
                    linger_s=3 + 12 * _u(s, 10, gpu, epoch),
                    peak=0.72 + 0.24 * _u(s, 12, gpu, epoch), mem_mib=mem,
                    user=user, args=args.format(port=port))

    def _active_job(self, gpu: int, t: float) -> _Job | None:
        if not self.auto or t < 0:
            return None
        job = self._job(gpu, math.floor(t / _EPOCH))
        if job is None or not job.start <= t < job.end:
            return None
        killed = self._killed_at.get(job.pid)
        if killed is not None and killed <= t:
            return None
        return job

    def _gpu_load(self, gpu: int, t: float) -> tuple[float, float]:
        """(utilisation 0..1, resident model MiB) of one GPU at model time t."""
        util, mem = 0.0, 0.0
        job = self._active_job(gpu, t)
        if job is not None:
            into = t - job.start
            if into < job.load_s:  # loading: memory ramps, little compute
                mem = job.mem_mib * into / job.load_s
                util = 0.04 + 0.1 * _smooth(self.seed, 20 + gpu, t, 1.0)
            elif into < job.load_s + job.compute_s:  # serving: bursts of requests
                mem = job.mem_mib
                slot = math.floor(t / 3.0)
                if _u(self.seed, 21, gpu, slot) < 0.8:
                    util = job.peak * (0.88 + 0.12 * _smooth(self.seed, 22 + gpu, t, 0.7))
                else:
                    util = 0.05 * _smooth(self.seed, 23 + gpu, t, 0.5)
            else:  # keep-alive: model stays resident, GPU idle
                mem = job.mem_mib
        util = max(util, self._manual[gpu])
        for start, end, level in self._bursts[gpu]:
            if start <= t < end:
                util = max(util, level)
        return min(util, 1.0), mem

    # --- GPUs ------------------------------------------------------------------------
    def _temp_target(self, gpu: int, t: float) -> float:
        util, _ = self._gpu_load(gpu, t)
        idle = 36.0 if self.kind == "gb10" else 31.0
        span = 47.0 if self.kind == "gb10" else 40.0
        return idle + 4.0 * _smooth(self.seed, 30 + gpu, t, 20.0) + span * util

    def _host_util(self, t: float) -> float:
        total = 0.025 + 0.02 * _smooth(self.seed, 40, t, 5.0)
        for g in range(self.gpus):
            job = self._active_job(g, t)
            if job is not None and t - job.start < job.load_s:
                total += 0.22  # reading weights: several cores busy
            util, _ = self._gpu_load(g, t)
            total += 0.05 * util  # one host thread feeds each busy GPU
        return min(total, 1.0)

    def _cpu_temp_target(self, t: float, host: float) -> float:
        return 40.0 + 3.0 * _smooth(self.seed, 41, t, 25.0) + 45.0 * host

    def _cpu_weights(self) -> list[float]:
        # The X925 cores (cpu0-9) take most work; weights average 1.
        return [1.4 - 0.06 * i if i < 10 else 0.6 - 0.02 * (i - 10) + 0.27
                for i in range(NCPU)]

    def _advance(self, now: float | None) -> float:
        """Integrate lagging state up to the grid point at or before now; return t."""
        t = self._t(now)
        steps = math.floor((t - self._grid_t) / _STEP)
        if steps <= 0:
            return t
        # A clock that jumped far ahead: take coarser steps, the end state is what matters.
        dt = _STEP if steps <= 4000 else (t - self._grid_t) / 4000
        steps = min(steps, 4000)
        weights = self._cpu_weights()
        for _ in range(steps):
            self._grid_t += dt
            gt = self._grid_t
            for g in range(self.gpus):
                target = self._temp_target(g, gt)
                tau = 25.0 if target > self._gpu_temp[g] else 45.0
                self._gpu_temp[g] += (target - self._gpu_temp[g]) * (1 - math.exp(-dt / tau))
            host = self._host_util(gt)
            self._cpu_temp += (self._cpu_temp_target(gt, host) - self._cpu_temp) * (
                1 - math.exp(-dt / 30.0))
            ticks = dt * USER_HZ
            for i, w in enumerate(weights):
                busy = min(1.0, host * w * (0.9 + 0.2 * _smooth(self.seed, 50 + i, gt, 2.0)))
                row = self._jiffies[i]
                row[0] += ticks * busy * 0.84  # user
                row[2] += ticks * busy * 0.13  # system
                row[6] += ticks * busy * 0.03  # softirq
                row[3] += ticks * (1 - busy) * 0.995  # idle
                row[4] += ticks * (1 - busy) * 0.005  # iowait
            runnable = host * NCPU + 0.1
            for k, period in enumerate((60.0, 300.0, 900.0)):
                self._loadavg[k] += (runnable - self._loadavg[k]) * (1 - math.exp(-dt / period))
        return t

    def _uuid(self, gpu: int) -> str:
        h = f"{_mix(self.seed, 99, gpu):016x}{_mix(self.seed, 98, gpu):016x}"
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def gpu(self, index: int, now: float | None = None) -> GpuReading:
        """One sample of GPU `index` at clock reading `now` (default: the clock)."""
        t = self._advance(now)
        util, mem = self._gpu_load(index, t)
        temp = self._gpu_temp[index]
        jitter = _smooth(self.seed, 60 + index, t, 0.9)
        busy = util > 0.02
        reasons = 0
        if self.kind == "gb10":
            power = 11.0 + 6.0 * jitter + 46.0 * util
            clock = (2385 + int(104 * util * jitter) if busy
                     else 2400 + int(10 * jitter))
            if util > 0.88 and power > 53:
                reasons |= 0x4  # SW power cap
            if temp > 83:
                reasons |= 0x20  # SW thermal slowdown
            return GpuReading(
                index=index, uuid=self._uuid(index), name="NVIDIA GB10",
                pci_bus_id="0000000F:01:00.0",
                pstate="P0" if busy else "P8", utilization_gpu=round(100 * util),
                utilization_memory=0, memory_total=None, memory_used=None, memory_free=None,
                temperature=round(temp), power_draw=round(power, 2), power_limit=None,
                power_default_limit=None, clocks_sm=clock,
                clocks_max_sm=3003, clocks_mem=None, clocks_max_mem=None, fan_speed=None,
                event_reasons=reasons, pcie_gen_current=1, compute_cap="12.1")
        total = 81_559
        used = min(total - 600, 1 + int(mem) + (500 if mem else 0))
        power = 70.0 + 10.0 * jitter + 610.0 * util
        if util > 0.9 and power > 660:
            reasons |= 0x4
        bus = f"00000000:{0x18 + 0x10 * index:02X}:00.0"
        return GpuReading(
            index=index, uuid=self._uuid(index), name="NVIDIA H100 80GB HBM3", pci_bus_id=bus,
            pstate="P0" if busy or mem else "P5",
            utilization_gpu=round(100 * util), utilization_memory=round(60 * util),
            memory_total=total, memory_used=used, memory_free=total - used - 527,
            temperature=round(temp), power_draw=round(power, 2), power_limit=700.0,
            power_default_limit=700.0,
            clocks_sm=(1755 + int(225 * jitter)) if busy else 345, clocks_max_sm=1980,
            clocks_mem=2619, clocks_max_mem=2619, fan_speed=None, event_reasons=reasons,
            pcie_gen_current=5 if busy else 1, compute_cap="9.0")

    def readings(self, now: float | None = None) -> list[GpuReading]:
        now = self.clock() if now is None else now
        return [self.gpu(i, now) for i in range(self.gpus)]

    # --- processes -----------------------------------------------------------------
    def processes(self, now: float | None = None) -> list[SimProcess]:
        """Every simulated host process, compute processes included, by pid."""
        t = self._t(now)
        procs = [SimProcess(pid, user, args, start=-self.uptime0 + pid / 100)
                 for pid, user, args in _HOST_PROCS if pid not in self._killed]
        for g in range(self.gpus):
            job = self._active_job(g, t)
            if job is not None:
                _, mem = self._gpu_load(g, t)
                procs.append(SimProcess(job.pid, job.user, job.args, gpu=g,
                                        used_memory_mib=max(1, int(mem)), start=job.start))
            pid = self._manual_pid[g]
            if pid is not None:
                procs.append(SimProcess(pid, "spark", "/usr/bin/python3 serve.py --port 8000",
                                        gpu=g, used_memory_mib=6_144))
        procs.extend(self.container_processes())
        return sorted(procs, key=lambda p: p.pid)

    def compute_apps(self, now: float | None = None) -> list[SimProcess]:
        return [p for p in self.processes(now) if p.gpu is not None]

    def kill(self, pid: int, now: float | None = None) -> None:
        """End a simulated process, as os.kill would: ProcessLookupError / PermissionError."""
        t = self._t(now)
        alive = {p.pid: p for p in self.processes(now)}
        if pid not in alive:
            raise ProcessLookupError(pid)
        if pid == 1 or alive[pid].container_id:  # a container's process is root's
            raise PermissionError(pid)
        for g in range(self.gpus):
            if self._manual_pid[g] == pid:
                self._manual[g] = 0.0
                self._manual_pid[g] = None
                return
        self._killed.add(pid)
        self._killed_at[pid] = t

    # --- host files --------------------------------------------------------------------
    def _resident_mib(self, t: float) -> float:
        """GPU processes' memory that lives in host RAM (all of it on a unified GB10)."""
        if self.kind != "gb10":
            return 0.0
        total = sum(self._gpu_load(g, t)[1] for g in range(self.gpus))
        total += sum(6_144 for pid in self._manual_pid if pid is not None)
        return total + sum(p.resident_mib for p in self.container_processes())

    def meminfo(self, now: float | None = None) -> str:
        t = self._t(now)
        kb = 1024
        resident = int(self._resident_mib(t) * kb)
        # Model files read while loading stay in the page cache.
        cache_models = 0
        for g in range(self.gpus):
            job = self._job(g, math.floor(max(t, 0) / _EPOCH)) if self.auto else None
            if job is not None and job.start <= t:
                cache_models += int(min(1.0, (t - job.start) / job.load_s) * job.mem_mib * kb)
        cached = 7_800_000 + int(900_000 * _smooth(self.seed, 70, t, 30.0)) + cache_models
        buffers = 412_000 + int(30_000 * _smooth(self.seed, 71, t, 40.0))
        apps = 5_600_000 + int(400_000 * _smooth(self.seed, 72, t, 15.0)) + resident
        slab_r, slab_u = 610_000, 402_000
        apps += self.memory.anon_kb()
        cached += self.memory.cache_kb()
        # the kernel reclaims cache only once free memory hits its watermark
        room = MEM_TOTAL_KB - apps - buffers - slab_r - slab_u - 180_000
        cached = max(0, min(cached, room))
        free = max(180_000, MEM_TOTAL_KB - apps - cached - buffers - slab_r - slab_u)
        available = min(MEM_TOTAL_KB, free + int(cached * 0.82) + buffers + slab_r // 2)
        available = max(0, min(available, MEM_TOTAL_KB - apps))
        # what the product's host and memory-truth scripts read, in /proc/meminfo's order
        rows = [("MemTotal", MEM_TOTAL_KB), ("MemFree", free), ("MemAvailable", available),
                ("Buffers", buffers), ("Cached", cached), ("Unevictable", 30_712),
                ("Mlocked", 30_712), ("SwapTotal", 16_777_212), ("SwapFree", 16_777_212),
                ("AnonPages", apps), ("Shmem", 146_000), ("Slab", slab_r + slab_u),
                ("SReclaimable", slab_r), ("SUnreclaim", slab_u),
                ("Committed_AS", 14_200_000 + resident)]
        lines = [f"{(name + ':'):<16}{value:>8} kB" for name, value in rows]
        return "\n".join(lines) + "\n"

    def cpu_stat_lines(self, now: float | None = None) -> list[str]:
        """The `cpu` and `cpuN` lines of /proc/stat; the total is the sum of the rows."""
        t = self._advance(now)
        frac = (t - self._grid_t) / _STEP  # share of the running step, for smoothness
        host = self._host_util(t)
        rows = []
        for i, w in enumerate(self._cpu_weights()):
            busy = min(1.0, host * w)
            extra = frac * _STEP * USER_HZ
            add = [extra * busy * 0.84, 0, extra * busy * 0.13, extra * (1 - busy) * 0.995,
                   extra * (1 - busy) * 0.005, 0, extra * busy * 0.03, 0]
            rows.append([int(v + a) for v, a in zip(self._jiffies[i], add, strict=True)])
        total = [sum(col) for col in zip(*rows, strict=True)]
        lines = ["cpu  " + " ".join(str(v) for v in [*total, 0, 0])]
        lines += [f"cpu{i} " + " ".join(str(v) for v in [*row, 0, 0])
                  for i, row in enumerate(rows)]
        return lines

    def proc_stat(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        t = self._t(now)
        up = self.uptime0 + t
        btime = int(self.wall_time(now) - up)
        forks = 40_000 + int(up * 2.1)
        lines = self.cpu_stat_lines(now)
        lines += [f"intr {int(up * 9_800)} 0 0 0", f"ctxt {int(up * 21_000)}",
                  f"btime {btime}", f"processes {forks}",
                  f"procs_running {max(1, round(self._host_util(t) * NCPU))}",
                  "procs_blocked 0", f"softirq {int(up * 3_100)} 0 0 0 0 0 0 0 0 0 0"]
        return "\n".join(lines) + "\n"

    def loadavg(self, now: float | None = None) -> str:
        t = self._advance(now)
        up = self.uptime0 + t
        running = max(1, round(self._host_util(t) * NCPU))
        threads = 1_180 + 12 * len(self.compute_apps(now))
        la = " ".join(f"{v:.2f}" for v in self._loadavg)
        return f"{la} {running}/{threads} {40_000 + int(up * 2.1)}\n"

    def uptime_s(self, now: float | None = None) -> float:
        booted = self.memory.booted_at
        if booted is not None:  # rebooted in the simulation: counts from then
            return 20.0 + max(0.0, (self.clock() if now is None else now) - booted)
        return self.uptime0 + self._t(now)

    def uptime(self, now: float | None = None) -> str:
        up = self.uptime_s(now)
        return f"{up:.2f} {up * NCPU * 0.93:.2f}\n"

    def thermal(self, now: float | None = None) -> list[tuple[str, int]]:
        """(type, millidegrees C) of each simulated thermal zone, in zone order."""
        t = self._advance(now)
        out = []
        for i, (name, offset) in enumerate(THERMAL_ZONES):
            jitter = 0.6 * _smooth(self.seed, 80 + i, t, 3.0)
            value = self._gpu_temp[0] if offset is None else self._cpu_temp + offset
            # Real zones step in units of 50-100 m C.
            out.append((name, round((value + jitter) * 20) * 50))
        return out
