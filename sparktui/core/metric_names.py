"""Prometheus metric names: what sparktui exports, and what it reads back.

One catalogue for both directions, so the exporter (services/exporter.py)
and the Prometheus source (services/promsource.py) cannot drift apart:
- sparktui's own exporter names (`sparktui_*`, label `device`, and per GPU
  `gpu`, `uuid`, `name`);
- NVIDIA's DCGM exporter (`DCGM_FI_DEV_*`, labels `gpu`, `UUID`,
  `modelName`, `Hostname`). On a GB10 its framebuffer fields (FB_*) are
  dead: memory then comes from the host figures (unified memory);
- node_exporter's memory, load and CPU (`node_*`, label `instance`).

Each entry maps a metric to a sample attribute and the factor that turns
the metric's unit into the attribute's (bytes to MiB, hertz to MHz). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DCGM_GPU",
    "DCGM_PREFIX",
    "GPU_METRICS",
    "HOST_METRICS",
    "NODE_HOST",
    "PREFIX",
    "MetricName",
    "gpu_attr_for",
    "host_attr_for",
    "instance_host",
]

PREFIX = "sparktui_"
DCGM_PREFIX = "DCGM_FI_"
MIB = 1024**2


@dataclass(frozen=True, slots=True)
class MetricName:
    metric: str  # the Prometheus name
    attr: str  # GpuSample / HostSample attribute
    help: str
    # attribute value = metric value / to_metric; metric value = attribute * to_metric
    to_metric: float = 1.0


_M = MetricName
# Per GPU; labels device, gpu, uuid, name.
GPU_METRICS: tuple[MetricName, ...] = (
    _M("sparktui_gpu_utilization_percent", "util_gpu", "GPU utilisation (utilization.gpu)"),
    _M("sparktui_gpu_memory_utilization_percent", "util_mem",
       "memory controller utilisation (utilization.memory)"),
    _M("sparktui_gpu_memory_used_bytes", "mem_used_mib",
       "framebuffer in use; absent on a GB10 (unified memory: see sparktui_memory_*)", MIB),
    _M("sparktui_gpu_memory_total_bytes", "mem_total_mib",
       "framebuffer size; absent on a GB10 (unified memory: see sparktui_memory_*)", MIB),
    _M("sparktui_gpu_temperature_celsius", "temp_c", "GPU temperature"),
    _M("sparktui_gpu_power_watts", "power_w", "board power draw"),
    _M("sparktui_gpu_power_limit_watts", "power_limit_w", "enforced power limit"),
    _M("sparktui_gpu_sm_clock_hertz", "sm_clock_mhz", "SM clock", 1e6),
    _M("sparktui_gpu_sm_clock_max_hertz", "sm_clock_max_mhz", "maximum SM clock", 1e6),
    _M("sparktui_gpu_memory_clock_hertz", "mem_clock_mhz", "memory clock", 1e6),
    _M("sparktui_gpu_fan_speed_percent", "fan_pct", "fan speed"),
    _M("sparktui_gpu_clocks_event_reasons", "event_reasons",
       "bitmask of clocks_event_reasons.active (see sparktui_gpu_clocks_event_active)"),
)

# Per device (the host of a GB10 holds the GPU's memory too); label device.
HOST_METRICS: tuple[MetricName, ...] = (
    _M("sparktui_host_cpu_utilization_percent", "cpu_pct", "CPU busy, all cores"),
    _M("sparktui_host_load1", "load1", "1-minute load average"),
    _M("sparktui_host_load5", "load5", "5-minute load average"),
    _M("sparktui_host_load15", "load15", "15-minute load average"),
    _M("sparktui_memory_total_bytes", "mem_total", "MemTotal: the unified pool on a GB10"),
    _M("sparktui_memory_used_bytes", "mem_used", "MemTotal - MemAvailable"),
    _M("sparktui_memory_available_bytes", "mem_available",
       "MemAvailable: what a new process could get after reclaim"),
    _M("sparktui_memory_page_cache_bytes", "page_cache",
       "reclaimable page cache (counts as used for CUDA on a GB10)"),
    _M("sparktui_memory_swap_used_bytes", "swap_used", "swap in use"),
    _M("sparktui_memory_free_bytes", "mem_free",
       "MemFree: what CUDA reports free on a GB10 (page cache counts as used)"),
    _M("sparktui_host_uptime_seconds", "uptime_s", "the device's uptime"),
)
# /proc/meminfo figures beyond the HostSample's own (HostSample.mem), per device
MEMINFO_METRICS: tuple[MetricName, ...] = (
    _M("sparktui_memory_shared_bytes", "shmem",
       "Shmem: /dev/shm and tmpfs, taken from the same pool as models"),
    _M("sparktui_memory_unevictable_bytes", "unevictable", "Unevictable: never reclaimed"),
    _M("sparktui_memory_cached_bytes", "cached", "Cached"),
    _M("sparktui_memory_buffers_bytes", "buffers", "Buffers"),
    _M("sparktui_memory_swap_total_bytes", "swap_total", "SwapTotal"),
)

_GPU_BY_NAME = {m.metric: m for m in GPU_METRICS}
_HOST_BY_NAME = {m.metric: m for m in (*HOST_METRICS, *MEMINFO_METRICS)}

# NVIDIA's DCGM exporter, per GPU. FB_* are dead on a GB10: absent, never 0.
DCGM_GPU: tuple[MetricName, ...] = (
    _M("DCGM_FI_DEV_GPU_UTIL", "util_gpu", ""),
    _M("DCGM_FI_DEV_MEM_COPY_UTIL", "util_mem", ""),
    _M("DCGM_FI_DEV_GPU_TEMP", "temp_c", ""),
    _M("DCGM_FI_DEV_POWER_USAGE", "power_w", ""),
    _M("DCGM_FI_DEV_SM_CLOCK", "sm_clock_mhz", ""),
    _M("DCGM_FI_DEV_MEM_CLOCK", "mem_clock_mhz", ""),
    _M("DCGM_FI_DEV_FB_USED", "mem_used_mib", ""),
)
# FB_USED + FB_FREE is the framebuffer's size
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
# mJ since the driver loaded: its rate is the power when POWER_USAGE is missing
DCGM_ENERGY = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
_DCGM_BY_NAME = {m.metric: m for m in DCGM_GPU}

# node_exporter: memory (bytes), load. CPU comes from a rate() over node_cpu_seconds_total.
NODE_HOST: tuple[MetricName, ...] = (
    _M("node_memory_MemTotal_bytes", "mem_total", ""),
    _M("node_memory_MemAvailable_bytes", "mem_available", ""),
    _M("node_memory_MemFree_bytes", "mem_free", ""),
    _M("node_memory_Cached_bytes", "cached", ""),
    _M("node_memory_Buffers_bytes", "buffers", ""),
    _M("node_memory_SReclaimable_bytes", "sreclaimable", ""),
    _M("node_memory_Shmem_bytes", "shmem", ""),
    _M("node_memory_SwapTotal_bytes", "swap_total", ""),
    _M("node_memory_SwapFree_bytes", "swap_free", ""),
    _M("node_load1", "load1", ""),
    _M("node_load5", "load5", ""),
    _M("node_load15", "load15", ""),
)
_NODE_BY_NAME = {m.metric: m for m in NODE_HOST}


def gpu_attr_for(metric: str) -> MetricName | None:
    """The GpuSample attribute a sparktui or DCGM metric fills, if any."""
    return _GPU_BY_NAME.get(metric) or _DCGM_BY_NAME.get(metric)


def host_attr_for(metric: str) -> MetricName | None:
    """The host attribute a sparktui or node_exporter metric fills, if any."""
    return _HOST_BY_NAME.get(metric) or _NODE_BY_NAME.get(metric)


def instance_host(instance: str) -> str:
    """`spark-1:9100` -> `spark-1`; `[::1]:9400` -> `::1`: one device per host."""
    text = instance.strip()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and host and ":" not in host:
        return host
    return text
