"""`/metrics` for a fleet, through prometheus-client (no hand-written exposition).

FleetCollector is a custom prometheus-client collector: at scrape time it
reads each device's latest DeviceTelemetry (immutable snapshots, so reading
them from the HTTP server's thread is safe) and builds the metric families.
Built per scrape rather than kept in Gauges, so a value that went missing is
simply absent (never a stale number, never 0), and a device's series go with
the device. Names and units: sparktui/core/metric_names.py.

MetricsServer runs prometheus-client's own HTTP server (a daemon thread).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from sparktui.core import nvsmi
from sparktui.core.device import LinkState
from sparktui.core.memtruth import fragmentation
from sparktui.core.metric_names import GPU_METRICS, HOST_METRICS, MEMINFO_METRICS
from sparktui.services.fleet import FleetDevice
from sparktui.services.telemetry import DeviceTelemetry

log = logging.getLogger(__name__)

GPU_LABELS = ("device", "gpu", "uuid", "name")
CONTAINER_STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
DEFAULT_LISTEN = "127.0.0.1:9835"


def _pstate_number(pstate: str | None) -> int | None:
    if pstate and len(pstate) <= 3 and pstate[0] in "Pp" and pstate[1:].isdigit():
        return int(pstate[1:])
    return None


class FleetCollector(Collector):
    """Every device's figures as metric families, built at scrape time."""

    def __init__(self, devices: Iterable[FleetDevice] | None = None, *,
                 clock=time.monotonic) -> None:
        self._devices = devices if devices is not None else []
        self._clock = clock

    def set_devices(self, devices: Iterable[FleetDevice]) -> None:
        self._devices = devices

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        devices = list(self._devices)
        yield from self._gpu_families(devices)
        yield from self._host_families(devices)
        yield from self._container_families(devices)
        yield from serving_families(devices)
        yield from self._link_families(devices)

    # -- GPUs ----------------------------------------------------------------------
    def _gpu_families(self, devices: list[FleetDevice]) -> Iterator[GaugeMetricFamily]:
        families = {m.metric: GaugeMetricFamily(m.metric, m.help, labels=GPU_LABELS)
                    for m in GPU_METRICS}
        pstate = GaugeMetricFamily("sparktui_gpu_performance_state",
                                   "performance state: 0 is P0 (full speed)", labels=GPU_LABELS)
        reasons = GaugeMetricFamily(
            "sparktui_gpu_clocks_event_active",
            "1 while this reason holds the clocks back, else 0",
            labels=(*GPU_LABELS, "reason"))
        info = GaugeMetricFamily("sparktui_gpu_info", "one series per GPU with its driver",
                                 labels=(*GPU_LABELS, "driver_version"))
        procs = GaugeMetricFamily("sparktui_gpu_processes", "compute processes on the GPU",
                                  labels=GPU_LABELS)
        procs_mem = GaugeMetricFamily(
            "sparktui_gpu_processes_memory_bytes",
            "memory held by the GPU's compute processes (on a GB10: their share of the "
            "unified pool)", labels=GPU_LABELS)
        for device in devices:
            telemetry = device.telemetry.latest
            for gpu in telemetry.gpus:
                labels = [device.name, str(gpu.index), gpu.uuid or "", gpu.name or ""]
                for metric in GPU_METRICS:
                    value = getattr(gpu, metric.attr)
                    if value is not None:
                        families[metric.metric].add_metric(labels, value * metric.to_metric)
                number = _pstate_number(gpu.pstate)
                if number is not None:
                    pstate.add_metric(labels, number)
                if gpu.event_reasons is not None:
                    for bit, name in nvsmi.EVENT_REASONS.items():
                        reasons.add_metric([*labels, name], 1 if gpu.event_reasons & bit else 0)
                info.add_metric([*labels, telemetry.driver_version or ""], 1)
                mine = [p for p in telemetry.processes
                        if p.gpu_uuid == gpu.uuid or (p.gpu_index == gpu.index and not p.gpu_uuid)]
                view = telemetry.memory_view(gpu)
                if telemetry.processes or mine:
                    procs.add_metric(labels, len(mine))
                if view.gpu_processes_bytes is not None:
                    procs_mem.add_metric(labels, view.gpu_processes_bytes)
        yield from families.values()
        yield from (pstate, reasons, info, procs, procs_mem)

    # -- host ----------------------------------------------------------------------
    def _host_families(self, devices: list[FleetDevice]) -> Iterator[GaugeMetricFamily]:
        families = {m.metric: GaugeMetricFamily(m.metric, m.help, labels=("device",))
                    for m in (*HOST_METRICS, *MEMINFO_METRICS)}
        cores = GaugeMetricFamily("sparktui_host_cpu_core_utilization_percent",
                                  "CPU busy, per core", labels=("device", "core"))
        zones = GaugeMetricFamily("sparktui_host_thermal_zone_celsius",
                                  "thermal zone temperature (/sys/class/thermal)",
                                  labels=("device", "zone"))
        shares = GaugeMetricFamily(
            "sparktui_memory_gpu_processes_bytes",
            "memory held by all GPU compute processes (their share of the unified pool)",
            labels=("device",))
        unified = GaugeMetricFamily("sparktui_memory_unified",
                                    "1 when the GPU shares host memory (a GB10), else 0",
                                    labels=("device",))
        gb10 = _Gb10Families()
        for device in devices:
            telemetry = device.telemetry.latest
            host = telemetry.host
            if telemetry.gpus:
                unified.add_metric([device.name], 1 if telemetry.unified_memory else 0)
            held = [p.used_memory_mib for p in telemetry.processes
                    if p.used_memory_mib is not None]
            if held:
                shares.add_metric([device.name], sum(held) * 1024**2)
            if host is None:
                continue
            for metric in HOST_METRICS:
                value = getattr(host, metric.attr)
                if value is not None:
                    families[metric.metric].add_metric([device.name], value * metric.to_metric)
            if host.mem is not None:
                for metric in MEMINFO_METRICS:
                    value = getattr(host.mem, metric.attr)
                    if value is not None:
                        families[metric.metric].add_metric([device.name], value)
            gb10.add(device.name, host)
            for index, pct in enumerate(host.per_core_pct):
                if pct is not None:
                    cores.add_metric([device.name, str(index)], pct)
            seen: set[str] = set()
            for zone in (*host.thermal, *((host.hottest_zone,) if host.hottest_zone else ())):
                # a sensor fault (-273 °C, 255 °C) is no reading; two zones of one type
                # (acpitz, acpitz) would be one series twice: the first is kept
                if zone.plausible and zone.name not in seen:
                    seen.add(zone.name)
                    zones.add_metric([device.name, zone.name], zone.celsius)
        yield from families.values()
        yield from (cores, zones, shares, unified)
        yield from gb10.families()

    # -- containers ----------------------------------------------------------------
    def _container_families(self, devices: list[FleetDevice]) -> Iterator[GaugeMetricFamily]:
        from sparktui.services.containers import ServiceState

        counts = GaugeMetricFamily("sparktui_containers", "containers by state",
                                   labels=("device", "state"))
        docker_up = GaugeMetricFamily("sparktui_docker_up",
                                      "1 while the device's Docker daemon answers, else 0",
                                      labels=("device",))
        for device in devices:
            service = device.containers
            if service is None:
                continue
            ready = service.state is ServiceState.READY  # type: ignore[attr-defined]
            docker_up.add_metric([device.name], 1 if ready else 0)
            if not ready:
                continue  # unknown is absent, not zero containers
            rows = list(service.containers.values())  # type: ignore[attr-defined]
            by_state = Counter(row.state for row in rows)
            for state in sorted({*CONTAINER_STATES, *by_state}):
                counts.add_metric([device.name, state], by_state.get(state, 0))
        yield counts
        yield docker_up

    # -- connection and collector health ---------------------------------------------
    def _link_families(self, devices: list[FleetDevice]) -> Iterator[GaugeMetricFamily
                                                                      | CounterMetricFamily]:
        up = GaugeMetricFamily("sparktui_device_up",
                               "1 while the device's connection is up, else 0",
                               labels=("device",))
        state = GaugeMetricFamily("sparktui_device_connection_state",
                                  "1 for the connection's current state",
                                  labels=("device", "state"))
        samples = CounterMetricFamily("sparktui_collector_samples",
                                      "samples received, per stream",
                                      labels=("device", "stream"))
        reconnects = CounterMetricFamily("sparktui_collector_reconnects",
                                         "connections made again after the first",
                                         labels=("device",))
        age = GaugeMetricFamily("sparktui_collector_last_sample_age_seconds",
                                "seconds since the stream's last sample",
                                labels=("device", "stream"))
        problem = GaugeMetricFamily(
            "sparktui_collector_stream_problem",
            "1 while a stream reports a problem (nvidia-smi failing, host loop stopped)",
            labels=("device", "stream"))
        now = self._clock()
        for device in devices:
            name = device.name
            current = device.link.status.state
            up.add_metric([name], 1 if current is LinkState.CONNECTED else 0)
            for option in LinkState:
                state.add_metric([name, option.value], 1 if option is current else 0)
            health = device.health
            samples.add_metric([name, "gpu"], health.gpu_samples)
            samples.add_metric([name, "host"], health.host_samples)
            reconnects.add_metric([name], health.reconnects)
            for stream, last in (("gpu", health.last_gpu_sample),
                                 ("host", health.last_host_sample)):
                if last is not None:
                    age.add_metric([name, stream], max(0.0, now - last))
            telemetry: DeviceTelemetry = device.telemetry.latest
            if device.link.generation > 0:
                problem.add_metric([name, "gpu"], 1 if telemetry.gpu_problem else 0)
                problem.add_metric([name, "host"], 1 if telemetry.host_problem else 0)
        yield from (up, state, samples, reconnects, age, problem)


class _Gb10Families:
    """Memory pressure, fragmentation, power rails, PROCHOT and boot id (GB10 signals)."""

    def __init__(self) -> None:
        self.psi = GaugeMetricFamily(
            "sparktui_memory_pressure_percent",
            "share of time tasks stalled on memory (/proc/pressure/memory)",
            labels=("device", "kind", "window"))
        self.stall = CounterMetricFamily(
            "sparktui_memory_pressure_stall_seconds",
            "time tasks stalled on memory since boot", labels=("device", "kind"))
        self.high_order = GaugeMetricFamily(
            "sparktui_memory_high_order_free_blocks",
            "free blocks of order 10 and above (/proc/buddyinfo); 0 comes before NVRM "
            "NO_MEMORY livelocks", labels=("device",))
        self.rails = GaugeMetricFamily("sparktui_power_rail_watts",
                                       "spbm hwmon power rails (sys_total, gpu, ...)",
                                       labels=("device", "rail"))
        self.prochot = GaugeMetricFamily("sparktui_prochot",
                                         "1 while the platform asserts PROCHOT, else 0",
                                         labels=("device",))
        self.boot = GaugeMetricFamily("sparktui_boot_info", "the device's current boot id",
                                      labels=("device", "boot_id"))

    def add(self, device: str, host) -> None:
        pressure = host.pressure
        if pressure is not None:
            for kind, line in (("some", pressure.some), ("full", pressure.full)):
                if line is None:
                    continue
                for window, value in (("10s", line.avg10), ("60s", line.avg60),
                                      ("300s", line.avg300)):
                    self.psi.add_metric([device, kind, window], value)
                if line.total_us is not None:
                    self.stall.add_metric([device, kind], line.total_us / 1e6)
        frag = fragmentation(host.buddy) if host.buddy else None
        if frag is not None:
            self.high_order.add_metric([device], frag.blocks)
        for rail in host.rails:
            self.rails.add_metric([device, rail.label], rail.watts)
        if host.prochot is not None:
            self.prochot.add_metric([device], 1 if host.prochot else 0)
        if host.boot_id:
            self.boot.add_metric([device, host.boot_id], 1)

    def families(self):
        return (self.psi, self.stall, self.high_order, self.rails, self.prochot, self.boot)


#: ServingFigures attribute -> (metric, help); latencies are (attribute, percentile)
SERVING_METRICS = (
    ("running", "sparktui_endpoint_requests_running", "requests being served"),
    ("waiting", "sparktui_endpoint_requests_waiting", "requests queued"),
    ("kv_cache_pct", "sparktui_endpoint_kv_cache_percent", "KV cache in use"),
    ("prompt_tps", "sparktui_endpoint_prompt_tokens_per_second", "prompt tokens per second"),
    ("generation_tps", "sparktui_endpoint_generation_tokens_per_second",
     "generated tokens per second"),
    ("prefix_hit_pct", "sparktui_endpoint_prefix_cache_hit_percent", "prefix cache hits"),
    ("preemptions", "sparktui_endpoint_preemptions", "preemptions since the server started"),
)
LATENCY_METRICS = (
    ("ttft", "sparktui_endpoint_time_to_first_token_seconds", "time to first token"),
    ("itl", "sparktui_endpoint_inter_token_latency_seconds", "time between tokens"),
    ("e2e", "sparktui_endpoint_request_latency_seconds", "whole-request latency"),
)


def serving_families(devices: list[FleetDevice]) -> Iterator[GaugeMetricFamily]:
    """Each known model endpoint's engine figures (sparktui.services.serving)."""
    labels = ("device", "endpoint", "engine", "model")
    up = GaugeMetricFamily("sparktui_endpoint_up",
                           "1 while the model endpoint answers its metrics, else 0",
                           labels=labels)
    figures = {attr: GaugeMetricFamily(name, text, labels=labels)
               for attr, name, text in SERVING_METRICS}
    latencies = {attr: GaugeMetricFamily(name, f"{text}: stat is p50, p95 or mean",
                                         labels=(*labels, "stat"))
                 for attr, name, text in LATENCY_METRICS}
    for device in devices:
        monitor = device.serving
        if monitor is None:
            continue
        for reading in monitor.latest:  # type: ignore[attr-defined]
            found = reading.figures
            engine = found.engine if found is not None else ""
            models = found.models if found is not None and found.models \
                else reading.endpoint.models
            row = [device.name, reading.endpoint.spec.url, engine, models[0] if models else ""]
            up.add_metric(row, 0 if found is None else 1)
            if found is None:
                continue
            for attr, _, _ in SERVING_METRICS:
                value = getattr(found, attr)
                if value is not None:
                    figures[attr].add_metric(row, value)
            for attr, _, _ in LATENCY_METRICS:
                latency = getattr(found, attr)
                if latency is None:
                    continue
                for stat, value in (("p50", latency.p50), ("p95", latency.p95),
                                    ("mean", latency.mean)):
                    if value is not None:
                        latencies[attr].add_metric([*row, stat], value)
    yield up
    yield from figures.values()
    yield from latencies.values()


def parse_listen(text: str) -> tuple[str, int]:
    """`127.0.0.1:9835`, `:9835` (loopback), `[::1]:9835` -> (address, port)."""
    address, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN}")
    address = address.strip("[]") or "127.0.0.1"
    return address, int(port_text)


class MetricsServer:
    """prometheus-client's HTTP server for one registry, in its daemon thread."""

    def __init__(self, collector: Collector, address: str, port: int) -> None:
        from prometheus_client import start_http_server

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._server, self._thread = start_http_server(port, address, registry=self.registry)
        self.address = address
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (blocks until the server thread has left its loop)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
