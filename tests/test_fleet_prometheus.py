"""Exporter -> real Prometheus -> sparktui's Prometheus source, with real sshds.

The exporter runs the same Fleet and collector `sparktui exporter` runs, on
two real OpenSSH servers with the stand-in nvidia-smi; Prometheus (Debian's)
scrapes it every second; the values read back through PrometheusSource must
be values the devices sent. Also: promtool on the exporter's output, the
CLI exporter and `status --prometheus`, and a DCGM-exporter-format endpoint
whose GB10 memory falls back to node_exporter's host figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import httpx
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sparktui.core.device import DeviceSpec
from sparktui.core.metric_names import GPU_METRICS
from sparktui.services.config import Settings
from sparktui.services.exporter import FleetCollector, MetricsServer
from sparktui.services.fleet import Fleet
from sparktui.services.promsource import PrometheusSource
from tests.infra import REPO_ROOT, ClientSetup
from tests.infra.prometheus import promtool, start_prometheus
from tests.infra.sshd import free_port

pytestmark = pytest.mark.sshd

FAST = Settings(refresh_interval=0.5, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=1.0)
GIB = 1024**3


async def wait_until(predicate, what: str, timeout: float = 40.0, *, every: float = 0.2):
    """Poll an async predicate until it returns something truthy (Prometheus has no push)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await asyncio.sleep(every)


def close_to(value: float, sent: set[float | None]) -> bool:
    # the first host sample has no CPU figure yet: a None among the sent values is no match
    return any(s is not None and math.isclose(value, s, rel_tol=1e-9, abs_tol=1e-9)
               for s in sent)


async def test_exporter_to_prometheus_and_back(ssh_client: ClientSetup, sshd_factory,
                                               fake_gpu, tmp_path) -> None:
    fake_gpu("gb10")
    ssh_client.add_server("spark-two", sshd_factory())
    specs = [DeviceSpec.parse("spark-test"), DeviceSpec.parse("spark-two")]
    fleet = Fleet(FAST, specs)
    sent: dict[tuple[str, str], set] = defaultdict(set)  # (device, attr) -> values sent

    def remember(device, telemetry) -> None:
        for gpu in telemetry.gpus:
            for metric in GPU_METRICS:
                sent[(device.name, metric.attr)].add(getattr(gpu, metric.attr))
            sent[(device.name, "uuid")].add(gpu.uuid)
        if telemetry.host is not None:
            for attr in ("mem_total", "mem_available", "cpu_pct", "load1"):
                sent[(device.name, attr)].add(getattr(telemetry.host, attr))
        sent[(device.name, "driver")].add(telemetry.driver_version)

    fleet.subscribe(remember)
    server = MetricsServer(FleetCollector(fleet.devices), "127.0.0.1", 0)
    prom = start_prometheus(tmp_path / "prom", [f"127.0.0.1:{server.port}"])
    source = PrometheusSource(prom.url, FAST)
    try:
        await fleet.open()

        async def both_seen():
            devices = await source.latest()
            ready = [d for d in devices.values()
                     if d.telemetry.gpus and d.telemetry.host is not None
                     and d.telemetry.host.cpu_pct is not None]
            return devices if len(ready) == 2 else None

        devices = await wait_until(both_seen, "both devices in Prometheus")
        assert set(devices) == {"spark-test", "spark-two"}
        for name, device in devices.items():
            assert device.up is True and device.sources == {"sparktui"}
            telemetry = device.telemetry
            assert telemetry.driver_version in sent[(name, "driver")]
            (gpu,) = telemetry.gpus
            assert gpu.uuid in sent[(name, "uuid")] and gpu.name == "NVIDIA GB10"
            for metric in GPU_METRICS:
                value = getattr(gpu, metric.attr)
                if None in sent[(name, metric.attr)] and value is None:
                    continue  # a GB10's [N/A]: absent in Prometheus too, never 0
                assert value is not None, metric.attr
                assert close_to(value, sent[(name, metric.attr)]), (metric.attr, value)
            assert gpu.mem_total_mib is None and telemetry.unified_memory
            host = telemetry.host
            assert host.mem_total in sent[(name, "mem_total")]
            assert host.mem_available in sent[(name, "mem_available")]
            assert close_to(host.cpu_pct, sent[(name, "cpu_pct")])
            view = telemetry.memory_view(gpu)
            assert view.label == "unified" and view.total_bytes == host.mem_total

        one = await source.history(60, device="spark-two")  # the device on screen only
        assert set(one) == {"spark-two"} and one["spark-two"].series(("gpu0", "power_w"))
        histories = await source.history(60)
        for name in ("spark-test", "spark-two"):
            points = [v for _, v in histories[name].series(("gpu0", "power_w"))]
            assert points and all(close_to(v, sent[(name, "power_w")])
                                  for v in points if v is not None)

        # the exposition itself passes promtool's checks
        body = httpx.get(server.url, timeout=10).text
        checked = promtool("check", "metrics", stdin=body)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # the CLI reads the same source
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "sparktui", "status", "--prometheus",
                             prom.url, "--json"],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr
        rows = {row["name"]: row for row in json.loads(proc.stdout)}
        assert set(rows) == {"spark-test", "spark-two"}
        assert all(row["state"] == "connected" and row["unified_memory"]
                   for row in rows.values())
    finally:
        await source.close()
        prom.close()
        await fleet.close()
        await asyncio.to_thread(server.close)


def test_exporter_cli_serves_and_stops_on_sigterm(ssh_client: ClientSetup, fake_gpu,
                                                  tmp_path) -> None:
    fake_gpu("gb10")
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text("[settings]\nrefresh_interval = 0.5\n", encoding="utf-8")
    env = dict(os.environ, HOME=ssh_client.home, SPARKTUI_CONFIG=str(config))
    env.pop("SSH_AUTH_SOCK", None)
    proc = subprocess.Popen([sys.executable, "-m", "sparktui", "exporter", "--listen",
                             f"127.0.0.1:{port}", "--no-containers", "spark-test"],
                            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # "serving N device(s) on URL": it listens now
        assert f"127.0.0.1:{port}/metrics" in line, line
        deadline = time.monotonic() + 30
        body = ""
        while 'sparktui_gpu_power_watts{device="spark-test"' not in body:
            assert time.monotonic() < deadline, body[-2000:]
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'sparktui_device_up{device="spark-test"} 1.0' in body
        assert "sparktui_gpu_memory_total_bytes{" not in body  # GB10: absent, never 0
        assert promtool("check", "metrics", stdin=body).returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


# ------------------------------------------------------------------ DCGM


class DcgmAndNode(Collector):
    """What DCGM's exporter and node_exporter print for a GB10 (FB_* absent: dead)."""

    labels = {"gpu": "0", "UUID": "GPU-dcgm-0001", "device": "nvidia0",
              "modelName": "NVIDIA GB10", "Hostname": "spark-dcgm",
              "DCGM_FI_DRIVER_VERSION": "580.95.05"}

    def collect(self):
        names = list(self.labels)
        values = list(self.labels.values())
        for name, value in (("DCGM_FI_DEV_GPU_UTIL", 87), ("DCGM_FI_DEV_GPU_TEMP", 64),
                            ("DCGM_FI_DEV_POWER_USAGE", 38.5), ("DCGM_FI_DEV_SM_CLOCK", 2405)):
            family = GaugeMetricFamily(name, name, labels=names)
            family.add_metric(values, value)
            yield family
        energy = CounterMetricFamily("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "mJ",
                                     labels=names)
        energy.add_metric(values, 123456789)
        yield energy
        for name, value in (("node_memory_MemTotal_bytes", 128 * GIB),
                            ("node_memory_MemAvailable_bytes", 100 * GIB),
                            ("node_memory_MemFree_bytes", 60 * GIB),
                            ("node_load1", 2.5)):
            yield GaugeMetricFamily(name, name, value=value)


async def test_dcgm_format_maps_and_gb10_memory_falls_back_to_host(tmp_path) -> None:
    registry = CollectorRegistry()
    registry.register(DcgmAndNode())
    httpd, _ = start_http_server(0, "127.0.0.1", registry=registry)  # the device's endpoint
    target = f"127.0.0.1:{httpd.server_port}"
    prom = start_prometheus(tmp_path / "prom", [target], job="dcgm")
    source = PrometheusSource(prom.url)
    try:
        async def seen():
            devices = await source.latest()
            device = devices.get("127.0.0.1")
            ready = device and device.telemetry.gpus and device.telemetry.host
            return device if ready and device.telemetry.host.load1 is not None else None

        device = await wait_until(seen, "the DCGM device")
        telemetry = device.telemetry
        (gpu,) = telemetry.gpus
        assert (gpu.uuid, gpu.name, gpu.util_gpu, gpu.temp_c, gpu.power_w, gpu.sm_clock_mhz) \
            == ("GPU-dcgm-0001", "NVIDIA GB10", 87.0, 64.0, 38.5, 2405.0)
        assert telemetry.driver_version == "580.95.05"
        assert gpu.mem_used_mib is None and gpu.mem_total_mib is None  # FB_* dead, not 0
        view = telemetry.memory_view(gpu)
        assert view.label == "unified"
        assert (view.total_bytes, view.used_bytes) == (128 * GIB, 28 * GIB)
        assert device.sources == {"dcgm", "node"} and device.up is True
    finally:
        await source.close()
        prom.close()
        httpd.shutdown()
        httpd.server_close()


async def test_exporter_serves_the_model_endpoints_figures() -> None:
    """The demo Spark's model server (vLLM's metrics) appears as sparktui_endpoint_*."""
    from prometheus_client import generate_latest

    fleet = Fleet(FAST, [], demo=True, containers=True, serving=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet.devices))
    try:
        await fleet.open()

        async def endpoint_seen():
            text = generate_latest(registry).decode()
            return text if 'sparktui_endpoint_generation_tokens_per_second{' in text else None

        text = await wait_until(endpoint_seen, "the demo's endpoint figures", 120)
        assert 'sparktui_endpoint_up{device="spark-demo"' in text and 'engine="vllm"' in text
        assert 'stat="p95"' in text
        assert 'sparktui_containers{device="spark-demo",state="running"}' in text
        checked = promtool("check", "metrics", stdin=text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        await fleet.close()
