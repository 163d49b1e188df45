"""The real SparkApp on the other telemetry sources: a replayed recording, and Prometheus.

Pilot drives the app; the recording is written with the real writer, the
Prometheus is Debian's, scraping an endpoint in sparktui's exporter format.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.core.hoststat import HostSample
from sparktui.core.nvsmi import GpuSample
from sparktui.core.recording import gpus_record, host_record
from sparktui.services.config import Config, Settings
from sparktui.services.external_hubs import PrometheusHub, ReplayHub
from sparktui.services.promsource import PrometheusSource
from sparktui.services.recordings import RecordingWriter
from sparktui.services.replay import ReplayPlayer
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.telemetry.gpu_card import GpuCard
from tests.infra.pilot import wait_until
from tests.infra.prometheus import start_prometheus

GIB = 1024**3
SETTINGS = Settings(refresh_interval=0.5)
POWERS = [12.0 + i for i in range(20)]


def write_recording(path: Path) -> None:
    writer = RecordingWriter(path)
    for i, power in enumerate(POWERS):
        t = 1_764_000_000.0 + 0.5 * i
        writer.write(gpus_record("spark-rec", t, [GpuSample(
            index=0, t=0, uuid="GPU-r", name="NVIDIA GB10", util_gpu=50.0, power_w=power,
            temp_c=60.0)]))
        writer.write(host_record("spark-rec", t, HostSample(
            t=0, cpu_pct=10.0, per_core_pct=(), load1=1.0, load5=1.0, load15=1.0,
            mem_total=128 * GIB, mem_used=30 * GIB, mem_available=98 * GIB, page_cache=None,
            swap_used=None, hottest_zone=None)))
    writer.close()


async def test_replay_plays_in_the_telemetry_tab_without_connecting(tmp_path) -> None:
    path = tmp_path / "run.jsonl.gz"
    write_recording(path)
    player = ReplayPlayer(path, SETTINGS, speed=20)
    player.scan()
    hub = ReplayHub(player, SETTINGS)
    app = SparkApp(Config(path=tmp_path / "none.toml", settings=SETTINGS),
                   [DeviceSpec.parse("spark-rec")], telemetry=hub, link_policy="never")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, player.finished.is_set, 30, "the replay's end")
        state = app.telemetry_states["spark-rec"]
        assert state.gpus[0].power_w == POWERS[-1] and state.unified_memory
        history = hub.get("spark-rec").history.series(("gpu0", "power_w"))
        assert [v for _, v in history] == POWERS  # every tick, in order
        await pilot.press("2")  # the Telemetry tab draws it like a live device
        await wait_until(pilot, lambda: bool(app.query(GpuCard)), 10, "a GPU card")
        link = app.fleet.get("spark-rec")
        assert link.generation == 0 and link.status.state is LinkState.CLOSED
        await pilot.press("1")  # and the Devices tab says why it is not connected
        assert "replay" in str(app.query_one(DevicesPane).table.get_cell("0", "state"))
        assert hub.settings.read_only  # nothing recorded can be killed


class TwoSparks(Collector):
    """An endpoint in sparktui exporter's format with two devices (a watcher's); a third
    joins when `late` is set, as a Spark added to the lab while the TUI runs."""

    def __init__(self) -> None:
        self.late = False

    def collect(self):
        powers = [("sparktui_gpu_power_watts", 41.5, {"device": "lab-a"}),
                  ("sparktui_gpu_power_watts", 23.0, {"device": "lab-b"})]
        if self.late:
            powers.append(("sparktui_gpu_power_watts", 17.0, {"device": "lab-c"}))
        for name, value, labels in powers:
            family = GaugeMetricFamily(name, name, labels=["device", "gpu", "uuid", "name"])
            family.add_metric([labels["device"], "0", "GPU-x", "NVIDIA GB10"], value)
            yield family
        memory = GaugeMetricFamily("sparktui_memory_available_bytes", "m", labels=["device"])
        memory.add_metric(["lab-a"], 90 * GIB)
        memory.add_metric(["lab-b"], 5 * GIB)
        yield memory


async def test_prometheus_fleet_in_the_app_connects_only_the_selected_device(tmp_path) -> None:
    registry = CollectorRegistry()
    sparks = TwoSparks()
    registry.register(sparks)
    httpd, _ = start_http_server(0, "127.0.0.1", registry=registry)
    prom = start_prometheus(tmp_path / "prom", [f"127.0.0.1:{httpd.server_port}"])
    source = PrometheusSource(prom.url, SETTINGS)
    try:
        while len(await source.latest()) < 2:  # Prometheus has scraped once
            await asyncio.sleep(0.2)
        hub = PrometheusHub(source, SETTINGS, period=0.5)
        app = SparkApp(Config(path=tmp_path / "none.toml", settings=SETTINGS),
                       [DeviceSpec.parse("lab-a"), DeviceSpec.parse("lab-b")],
                       telemetry=hub, link_policy="on_select")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: {"lab-a", "lab-b"} <= set(app.telemetry_states),
                             30, "both devices from Prometheus")
            assert app.telemetry_states["lab-a"].gpus[0].power_w == 41.5
            assert any("lab-b" in line and "memory" in line
                       for line in app.telemetry_states["lab-b"].alerts)  # below the floor
            # the focused device connects (for containers, tunnels, chat); the other not
            assert app.fleet.get("lab-a").generation > 0 or \
                app.fleet.get("lab-a").status.state is not LinkState.CLOSED
            assert app.fleet.get("lab-b").status.state is LinkState.CLOSED
            assert "Prometheus" in str(app.query_one(DevicesPane).table.get_cell("1", "state"))
            # the history of a device is read from Prometheus when a chart first asks
            await pilot.press("2")
            await wait_until(pilot, lambda: len(hub.fleet_view.histories["lab-a"].series(
                ("gpu0", "power_w")) or ()) >= 2, 30, "lab-a's history from a range query")
            app.focused_device = "lab-b"
            await wait_until(pilot, lambda: app.fleet.get("lab-b").status.state
                             is not LinkState.CLOSED, 10, "lab-b's link to start")
            # a Spark Prometheus starts to scrape later joins the fleet, unconnected
            sparks.late = True
            await wait_until(pilot, lambda: "lab-c" in app.telemetry_states, 30,
                             "lab-c, scraped after the app started")
            assert app.telemetry_states["lab-c"].gpus[0].power_w == 17.0
            assert app.fleet.get("lab-c").status.state is LinkState.CLOSED
    finally:
        prom.close()
        httpd.shutdown()
        httpd.server_close()
