"""What the fleet features cost: the exporter per device, and the Prometheus fleet view.

(a) exporter   `sparktui exporter --interval 1 --no-containers spark-1..N` on N real
               sshds (stand-in nvidia-smi, gb10), scraped every 5 s like a Prometheus
               job would: CPU % of a core of the exporter process over the window, per
               device, and the devices' CPU (cgroup per sshd, see benchlib.CpuMeter).
(b) fleet view a real Prometheus (Debian's) scraping, every 5 s, an endpoint serving 64 devices
               through sparktui's own collector (FleetCollector, every metric family a
               real GB10 device has, values moving); then PrometheusFleet's
               refresh (the four instant queries and their parsing into DeviceTelemetry)
               and the history load (one range query, 10 min): wall time, this process's
               CPU and the Prometheus server's CPU per refresh, and bytes received.

    python bench/fleet_cost.py                 # 60 s windows, 1 and 4 devices; 64 in Prometheus
    python bench/fleet_cost.py --quick         # 20 s windows
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import benchlib

from sparktui.core.device import LinkState, LinkStatus
from sparktui.core.hoststat import HostSample, ThermalZone
from sparktui.core.nvsmi import GpuSample
from sparktui.services.exporter import FleetCollector
from sparktui.services.fleet import CollectorHealth
from sparktui.services.telemetry import DeviceTelemetry, GpuProcess

GIB = 1024**3


# ------------------------------------------------------------------------ (a) exporter

def exporter_window(count: int, duration: float) -> dict[str, object]:
    with benchlib.sshd_rig(count) as rig:
        port = _free_port()
        proc = subprocess.Popen(
            [*benchlib.sparktui_command(), "exporter", "--listen", f"127.0.0.1:{port}",
             "--interval", "1", "--no-containers", *rig.aliases],
            env=rig.env(SPARKTUI_CONFIG=os.devnull + ".none"), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            def all_up() -> bool:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        body = response.read().decode()
                except OSError:
                    return False
                return body.count("sparktui_gpu_power_watts{") == count
            benchlib.wait_for(all_up, 60, what=f"{count} devices on /metrics")
            time.sleep(3)  # past the first ticks and the driver-version query
            benchlib.wait_quiet()
            cpu0, dev0, t0 = benchlib.proc_cpu_seconds(proc.pid), rig.device_seconds(), \
                time.monotonic()
            scraped = 0
            next_scrape = t0
            while time.monotonic() - t0 < duration:
                if time.monotonic() >= next_scrape:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        scraped += len(response.read())
                    next_scrape += 5
                time.sleep(0.2)
            wall = time.monotonic() - t0
            cpu = benchlib.proc_cpu_seconds(proc.pid) - cpu0
            device = rig.device_seconds() - dev0
        finally:
            benchlib.terminate(proc)
        return {"devices": count, "window_s": round(wall, 1),
                "exporter_cpu_pct": round(100 * cpu / wall, 2),
                "exporter_cpu_pct_per_device": round(100 * cpu / wall / count, 2),
                "device_cpu_pct_per_device": round(100 * device / wall / count, 2),
                "scrape_bytes": scraped // max(1, int(duration // 5)),
                "device_meter": rig.meter_method}


def _free_port() -> int:
    from tests.infra.sshd import free_port

    return free_port()


# ---------------------------------------------------------------------- (b) fleet view

class MovingFleet:
    """64 GB10s as FleetCollector sees them, with figures that move every call."""

    def __init__(self, count: int) -> None:
        self.names = [f"spark-{n:02d}" for n in range(1, count + 1)]

    def devices(self):
        now = time.time()
        out = []
        for i, name in enumerate(self.names):
            wave = math.sin(now / 7 + i)
            gpu = GpuSample(index=0, t=now, uuid=f"GPU-{i:04d}", name="NVIDIA GB10",
                            util_gpu=50 + 40 * wave, util_mem=0.0, temp_c=55 + 10 * wave,
                            power_w=30 + 20 * wave, sm_clock_mhz=2400 + 100 * wave,
                            sm_clock_max_mhz=3003.0, pstate="P0", event_reasons=0)
            host = HostSample(t=now, cpu_pct=20 + 10 * wave,
                              per_core_pct=tuple(20 + wave for _ in range(20)), load1=2.0,
                              load5=1.5, load15=1.0, mem_total=128 * GIB,
                              mem_used=int((40 + 10 * wave) * GIB),
                              mem_available=int((88 - 10 * wave) * GIB),
                              page_cache=10 * GIB, swap_used=0,
                              hottest_zone=ThermalZone("cpu-x925-0", 50 + 5 * wave))
            telemetry = DeviceTelemetry(device=name, gpus=(gpu,), host=host,
                                        driver_version="580.126.09",
                                        processes=(GpuProcess(1, f"GPU-{i:04d}", 0, "vllm",
                                                              40_000.0),))
            out.append(SimpleNamespace(
                name=name, telemetry=SimpleNamespace(latest=telemetry),
                link=SimpleNamespace(status=LinkStatus(LinkState.CONNECTED), generation=1),
                health=CollectorHealth(gpu_samples=100, host_samples=100, connects=1,
                                       last_gpu_sample=time.monotonic(),
                                       last_host_sample=time.monotonic()),
                containers=None, serving=None))
        return out

    def __iter__(self):
        return iter(self.devices())


async def refresh_costs(prom_url: str, prom_pid: int, count: int, rounds: int,
                        fill_s: float) -> dict[str, object]:
    import httpx

    from sparktui.services.config import Settings
    from sparktui.services.promsource import PrometheusFleet, PrometheusSource

    received = 0

    async def count_bytes(response: httpx.Response) -> None:
        nonlocal received
        await response.aread()
        received += len(response.content)

    source = PrometheusSource(prom_url, Settings())
    source._client.event_hooks["response"] = [count_bytes]  # measuring only
    view = PrometheusFleet(source, period=5.0, history_seconds=600)
    try:
        deadline = time.monotonic() + 90
        while len(view.devices) < count:  # Prometheus's first scrapes
            assert time.monotonic() < deadline, f"Prometheus has {len(view.devices)} devices"
            await asyncio.sleep(1)
            await view.refresh()
        await asyncio.sleep(fill_s)  # history to read back (a scrape every 5 s)
        await view.refresh()  # warm the connection
        await asyncio.to_thread(benchlib.wait_quiet)
        walls, cpus, server = [], [], []
        received = 0
        for _ in range(rounds):
            p0, s0, w0 = time.process_time(), benchlib.proc_cpu_seconds(prom_pid), \
                time.perf_counter()
            await view.refresh()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - p0)
            server.append(benchlib.proc_cpu_seconds(prom_pid) - s0)
        latest_bytes = received // rounds
        assert len(view.devices) == count, f"saw {len(view.devices)} devices: {view.problem}"
        received = 0
        p0, s0, w0 = time.process_time(), benchlib.proc_cpu_seconds(prom_pid), \
            time.perf_counter()
        await view.refresh(with_history=True)
        history = {"wall_ms": round(1000 * (time.perf_counter() - w0), 1),
                   "client_cpu_ms": round(1000 * (time.process_time() - p0), 1),
                   "prometheus_cpu_ms": round(1000 * (benchlib.proc_cpu_seconds(prom_pid)
                                                      - s0), 1),
                   "bytes": received}
        received = 0
        p0, s0, w0 = time.process_time(), benchlib.proc_cpu_seconds(prom_pid), \
            time.perf_counter()
        await view.load_history("spark-01")  # what the Telemetry tab asks for, per device
        one_device = {"wall_ms": round(1000 * (time.perf_counter() - w0), 1),
                      "client_cpu_ms": round(1000 * (time.process_time() - p0), 1),
                      "prometheus_cpu_ms": round(1000 * (benchlib.proc_cpu_seconds(prom_pid)
                                                         - s0), 1),
                      "bytes": received}
    finally:
        await view.close()
    return {
        "history_10min_one_device": one_device,
        "devices": count, "rounds": rounds,
        "refresh_wall_ms": benchlib.summary([1000 * w for w in walls]),
        "refresh_client_cpu_ms": round(1000 * statistics.median(cpus), 1),
        "refresh_prometheus_cpu_ms": round(1000 * statistics.median(server), 1),
        "refresh_bytes": latest_bytes,
        "history_10min": history,
    }


def fleet_view(count: int, fill_s: float, rounds: int) -> dict[str, object]:
    from prometheus_client import CollectorRegistry, start_http_server

    from tests.infra.prometheus import start_prometheus

    registry = CollectorRegistry()
    registry.register(FleetCollector(MovingFleet(count)))
    httpd, _ = start_http_server(0, "127.0.0.1", registry=registry)
    with tempfile.TemporaryDirectory(prefix="sparktui-bench-prom-") as tmp:
        prom = start_prometheus(Path(tmp), [f"127.0.0.1:{httpd.server_port}"],
                                scrape_interval="5s")  # as the example scrape config
        try:
            return asyncio.run(refresh_costs(prom.url, prom.proc.pid, count, rounds, fill_s))
        finally:
            prom.close()
            httpd.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,4", help="exporter device counts (1,4)")
    parser.add_argument("--duration", type=float, default=60.0, help="exporter window (s)")
    parser.add_argument("--fleet", type=int, default=64, help="devices in Prometheus (64)")
    parser.add_argument("--fill", type=float, default=60.0,
                        help="seconds of scrapes before the fleet view is measured")
    parser.add_argument("--rounds", type=int, default=20, help="refreshes measured")
    parser.add_argument("--quick", action="store_true", help="20 s windows, 20 s fill")
    parser.add_argument("--skip-exporter", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.fill = 20.0, 20.0
    results: dict[str, object] = {"machine": benchlib.machine_info()}
    previous = benchlib.RESULTS_DIR / "fleet_cost.json"
    if args.skip_exporter and previous.exists():  # keep the last exporter figures
        import json

        results["exporter"] = json.loads(previous.read_text()).get("exporter")
    if not args.skip_exporter:
        rows = [exporter_window(int(n), args.duration) for n in args.devices.split(",")]
        results["exporter"] = rows
        benchlib.print_table(
            ["devices", "exporter CPU %", "per device %", "device CPU % / device",
             "scrape bytes"],
            [[r["devices"], r["exporter_cpu_pct"], r["exporter_cpu_pct_per_device"],
              r["device_cpu_pct_per_device"], r["scrape_bytes"]] for r in rows])
    view = fleet_view(args.fleet, args.fill, args.rounds)
    results["fleet_view"] = view
    wall = view["refresh_wall_ms"]
    benchlib.print_table(
        ["devices", "refresh wall ms (median/p95)", "client CPU ms", "Prometheus CPU ms",
         "bytes", "history 10 min: wall ms / client CPU ms / bytes"],
        [[view["devices"], f"{wall['median']:.1f} / {wall['p95']:.1f}",
          view["refresh_client_cpu_ms"], view["refresh_prometheus_cpu_ms"],
          view["refresh_bytes"],
          f"{view['history_10min']['wall_ms']} / {view['history_10min']['client_cpu_ms']}"
          f" / {view['history_10min']['bytes']}"]])
    one = view["history_10min_one_device"]
    print(f"history of one device (10 min): {one['wall_ms']} ms wall, "
          f"{one['client_cpu_ms']} ms client CPU, {one['bytes']} bytes")
    print(benchlib.write_results("fleet_cost", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
