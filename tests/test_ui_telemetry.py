"""The Telemetry tab, the Devices tab's live columns and the alert banner.

Live tests run the real demo (a simulated Spark over real SSH, in process);
the rest feed hand-built DeviceTelemetry through the app's own message path,
so what they show is exact.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from sparktui.core.history import History
from sparktui.core.hoststat import HostSample, ThermalZone
from sparktui.core.nvsmi import GpuSample
from sparktui.core.units import NO_VALUE
from sparktui.services.config import Config
from sparktui.services.telemetry import DeviceTelemetry, GpuProcess
from sparktui.ui import readings
from sparktui.ui.app import SparkApp
from sparktui.ui.messages import TelemetryUpdated
from sparktui.ui.panes import TelemetryPane
from sparktui.ui.screens import ConfirmScreen
from sparktui.ui.telemetry.chart import Chart, downsample
from sparktui.ui.telemetry.gauge import Gauge
from sparktui.ui.telemetry.processes import ProcessTable
from tests.infra.pilot import wait_until
from tests.test_ui_shell import (
    REPO_THEMES,
    LocalConnector,
    _never_connects,
    active_tab,
    link,
    make_app,
)

GIB = 1024**3
GB10_UUID = "GPU-be607c84-0ddb-29e1-9537-145d70632ba2"


# -- hand-built telemetry ------------------------------------------------------------------
def gb10(t: float = 100.0, **changes) -> GpuSample:
    values = dict(index=0, t=t, uuid=GB10_UUID, name="NVIDIA GB10", util_gpu=62.0,
                  util_mem=0.0, temp_c=58.0, power_w=41.3, sm_clock_mhz=2405.0,
                  sm_clock_max_mhz=3003.0, pstate="P0", event_reasons=0x4)
    values.update(changes)
    return GpuSample(**values)  # type: ignore[arg-type]


def h100(index: int = 0, t: float = 100.0, **changes) -> GpuSample:
    values = dict(index=index, t=t, uuid=f"GPU-h100-{index}", name="NVIDIA H100 80GB HBM3",
                  util_gpu=90.0, mem_used_mib=40_960.0, mem_total_mib=81_559.0, temp_c=70.0,
                  power_w=600.0, power_limit_w=700.0, sm_clock_mhz=1900.0,
                  sm_clock_max_mhz=1980.0, pstate="P0", event_reasons=0)
    values.update(changes)
    return GpuSample(**values)  # type: ignore[arg-type]


def host(t: float = 100.0, available_gib: float = 80.0, total_gib: float = 121.6,
         cache_gib: float = 20.0) -> HostSample:
    total = int(total_gib * GIB)
    available = int(available_gib * GIB)
    return HostSample(t=t, cpu_pct=12.0, per_core_pct=(), load1=1.5, load5=1.2, load15=0.9,
                      mem_total=total, mem_used=total - available, mem_available=available,
                      page_cache=int(cache_gib * GIB), swap_used=0,
                      hottest_zone=ThermalZone("cpu-x925-0", 51.0))


def process(pid: int, mib: float, command: str, user: str = "spark") -> GpuProcess:
    return GpuProcess(pid=pid, gpu_uuid=GB10_UUID, gpu_index=0, name=command.split()[0],
                      used_memory_mib=mib, user=user, command=command)


PROCESSES = (
    process(114687, 19_135.0, "/usr/bin/python3 -m vllm.entrypoints.openai.api_server "
            "--model Qwen/Qwen2.5-7B-Instruct"),
    process(2311, 512.0, "[bold red]llama-server\x1b[2J --port 8080", user="ollama"),
)


def state(device: str = "spark-01", t: float = 100.0, **changes) -> DeviceTelemetry:
    values: dict[str, object] = dict(device=device, t=t, gpus=(gb10(t),), host=host(t),
                                     processes=PROCESSES, driver_version="580.126.09")
    values.update(changes)
    return DeviceTelemetry(**values)  # type: ignore[arg-type]


def fill_history(history: History, t_end: float, seconds: int = 60) -> None:
    """A deterministic minute: a load that rises and falls, temperatures lagging it."""
    for i in range(seconds):
        t = t_end - seconds + 1 + i
        load = 0.5 + 0.45 * math.sin(i / 7)
        history.record_gpu(gb10(t, util_gpu=round(100 * load), temp_c=40 + 25 * load,
                                power_w=12 + 45 * load))
        history.record_host(host(t, available_gib=100 - 30 * load))


async def settle_cards(pilot: Pilot, pane: TelemetryPane, charts: int = 1) -> None:
    await wait_until(pilot, lambda: bool(pane._cards)
                     and all(c.is_mounted for c in pane._cards.values())
                     and pane.chart_render_count >= charts
                     and pane.query_one("#gauge-util", Gauge).reading.text != "")


def quiet_app(devices: tuple[str, ...] = ("spark-01",), **kwargs) -> SparkApp:
    return make_app([link(name, _never_connects) for name in devices], **kwargs)


def screen_text(app: SparkApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def demo_app(**kwargs) -> SparkApp:
    app = SparkApp(Config(path=Path("/nonexistent/sparktui.toml")), [], demo=True,
                   demo_port=0, theme_dirs=[REPO_THEMES], **kwargs)
    app.title = "sparktui"
    return app


async def wait_for_demo_process(pilot: Pilot, app: SparkApp) -> TelemetryPane:
    pane = app.query_one(TelemetryPane)
    # the simulated Spark starts its first workload a few seconds in
    await wait_until(pilot, lambda: (s := pane.focused_state) is not None and bool(s.gpus)
                     and s.host is not None and bool(s.processes), timeout=30)
    return pane


# -- live: the demo ----------------------------------------------------------------------
async def test_demo_gauges_charts_processes_and_kill() -> None:
    app = demo_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = await wait_for_demo_process(pilot, app)
        await settle_cards(pilot, pane, charts=3)

        util = app.query_one("#gauge-util", Gauge).reading
        assert re.fullmatch(r"\d+%", util.text) and util.fraction is not None
        memory = app.query_one("#gauge-memory", Gauge)
        assert memory.heading == "Unified memory (host RAM shared with GPU)"
        total = float(re.search(r"/ ([\d.]+) GiB$", memory.reading.text)[1])  # type: ignore[index]
        assert 115 < total < 128  # MemTotal of a Spark, from /proc/meminfo
        assert re.fullmatch(r"GPU processes: [\d.]+ [MG]iB", memory.aside)
        assert "°C" in app.query_one("#gauge-temp", Gauge).reading.text
        power = app.query_one("#gauge-power", Gauge).reading
        assert power.text.endswith(" W") and power.fraction is None  # no fake limit on GB10
        assert app.query_one("#gauge-clock", Gauge).reading.text.endswith("/ 3003 MHz")
        shown = screen_text(app)
        assert "Unified memory (host RAM shared with GPU)" in shown and "driver 580" in shown
        assert_chart_margins_blank(app)

        status = app.query_one("#tel-status", Static)

        await pilot.press("w")
        assert pane.window_s == 600 and "window 10 min" in str(status.render())
        chart = app.query_one("#chart-util", Chart)
        await wait_until(pilot, lambda: chart.data is not None and chart.data.window_s == 600)
        assert "-10m" in str(chart.render())

        await pilot.press("p")
        assert pane.paused and "PAUSED" in str(status.render())
        service = app.telemetry.get("spark-demo")
        assert service is not None
        series = service.history.series(("gpu0", "util_gpu"))
        assert series is not None
        frozen, collected = pane.chart_render_count, len(series)
        await wait_until(pilot, lambda: len(series) >= collected + 2, timeout=10)
        assert pane.chart_render_count == frozen  # data still collected, nothing redrawn
        await pilot.press("p")
        assert not pane.paused and "PAUSED" not in str(status.render())
        await wait_until(pilot, lambda: pane.chart_render_count > frozen, timeout=10)

        # hidden: ticks only mark the pane stale
        await pilot.press("1")
        hidden_at, seen = pane.chart_render_count, len(series)
        await wait_until(pilot, lambda: len(series) >= seen + 2, timeout=10)
        assert pane.chart_render_count == hidden_at
        assert pane._stale
        await pilot.press("2")
        await wait_until(pilot, lambda: pane.chart_render_count > hidden_at)
        assert not pane._stale

        # x, then y: the simulated process gets SIGTERM and leaves the table (the
        # user's own workload: the demo's vLLM container runs as root, out of reach)
        table = app.query_one(ProcessTable)

        def own_process():
            state = pane.focused_state
            return next((p for p in state.processes if p.container_id is None), None) \
                if state is not None else None

        await wait_until(pilot, lambda: own_process() is not None, timeout=30)
        victim = own_process()
        assert victim is not None
        await wait_until(pilot, lambda: str(victim.pid) in table.rows)
        table.move_cursor(row=table.get_row_index(str(victim.pid)))
        assert table.selected is not None and table.selected.pid == victim.pid  # its memory moves
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        assert str(victim.pid) in str(app.screen.question)
        await pilot.press("y")
        # The notice comes with the kill's exit; the row goes with the device's next sample,
        # which for the last process is the loop's quiet timeout (1.5 periods + 0.5 s) later,
        # after the notice may have timed out: note it when it shows.
        noticed: list[bool] = []

        def killed() -> bool:
            if any(f"Sent SIGTERM to {victim.pid}" in n.message for n in app._notifications):
                noticed.append(True)
            return bool(noticed) and all(p.pid != victim.pid for p in table.processes)

        await wait_until(pilot, killed, timeout=15)
        assert str(victim.pid) not in table.rows

        # at 80x24 the cut layer beneath the charts lies under their margins too
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: all(
            chart.region.width == chart.content_size.width and chart.region.width < 20
            for chart in app.query(Chart) if chart.region.width), what="charts at 80x24")
        assert_chart_margins_blank(app)


def assert_chart_margins_blank(app: SparkApp) -> None:
    """The margin after each chart is blank: the CutGrid beneath the charts shows there,
    and must show nothing (a bare Widget there printed its CSS name, "Widget.cut")."""
    rows = screen_text(app).split("\n")
    charts = [chart for chart in app.query(Chart) if chart.region.width]
    assert len(charts) == 4
    for chart in charts:
        # the rows of it on screen (at 80x24 the card scrolls, and the chart's lower rows
        # lie under the processes)
        shown_rows = [y for y in range(chart.region.y, chart.region.bottom)
                      if app.screen.get_widget_at(chart.region.x, y)[0] is chart]
        assert shown_rows
        column = [rows[y][chart.region.right] for y in shown_rows]
        assert column == [" "] * len(column), f"after {chart.id}: {column}"


async def test_demo_read_only_refuses_kills() -> None:
    app = demo_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = await wait_for_demo_process(pilot, app)
        table = app.query_one(ProcessTable)
        await wait_until(pilot, lambda: table.row_count > 0)
        bindings = app.screen.active_bindings
        assert bindings["x"].enabled is False and bindings["X"].enabled is False  # dimmed
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("read-only" in n.message for n in app._notifications)
        assert "read-only" in str(app.query_one("#tel-proc-title", Static).render())

        # the service refuses too, and the pane says so rather than failing
        victim = pane.focused_state.processes[0]  # type: ignore[union-attr]
        service = app.telemetry.get("spark-demo")
        assert service is not None
        app.clear_notifications()
        await pane._kill(service, victim, force=True)
        await pilot.pause()
        assert any("read-only mode: not sending a signal" in n.message
                   for n in app._notifications)
        assert any(p.pid == victim.pid for p in service.latest.processes)


# -- fed: exact figures --------------------------------------------------------------------
async def test_gb10_card_reads_right_and_never_zero_for_missing() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        gpu = gb10(util_gpu=None, sm_clock_max_mhz=None, event_reasons=0x24)
        app.post_message(TelemetryUpdated(state(gpus=(gpu,),
                                                dropped_fields=("clocks.max.sm",))))
        await settle_cards(pilot, pane, charts=0)
        util = app.query_one("#gauge-util", Gauge)
        assert util.reading.text == NO_VALUE and util.reading.fraction is None
        assert util.tooltip == "nvidia-smi reports [N/A] for utilization.gpu on this GPU"
        clock = app.query_one("#gauge-clock", Gauge)
        assert clock.reading.text == "2405 MHz"
        assert clock.tooltip == "nvidia-smi on this driver rejected clocks.max.sm; not shown"
        memory = app.query_one("#gauge-memory", Gauge).reading
        assert memory.text == "41.6 GiB / 121.6 GiB"
        assert app.query_one("#gauge-memory", Gauge).aside == "GPU processes: 19.2 GiB"
        title = str(app.query_one("#gpu-title", Static).render())
        assert "GPU 0 · NVIDIA GB10" in title
        assert "clock events: SW power cap, SW thermal slowdown" in title
        notice = app.query_one("#tel-notice", Static)
        assert notice.display
        assert "nvidia-smi on this driver rejected clocks.max.sm; not shown" in str(
            notice.render())
        # device text: no markup, no escapes
        table = app.query_one(ProcessTable)
        cell = table.get_cell("2311", "command")
        assert isinstance(cell, Text) and cell.plain == "[bold red]llama-server --port 8080"


async def test_discrete_gpus_show_gpu_memory_and_power_limit() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        app.post_message(TelemetryUpdated(state(gpus=(h100(0), h100(1, util_gpu=10.0)),
                                                processes=())))
        await wait_until(pilot, lambda: len(pane._cards) == 2
                         and all(c.is_mounted for c in pane._cards.values()))
        await pilot.pause()
        card = pane._cards[0]
        memory = card.query_one("#gauge-memory", Gauge)
        assert memory.heading == "GPU memory"
        assert memory.reading.text == "40.0 GiB / 79.6 GiB"
        assert card.query_one("#gauge-power", Gauge).reading.text == "600.0 W / 700 W"
        assert pane._cards[1].query_one("#gauge-util", Gauge).reading.text == "10%"


async def test_gpu_problem_replaces_the_cards() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        problem = "nvidia-smi is not installed or not on the PATH of this device"
        app.post_message(TelemetryUpdated(state(gpus=(), processes=(), gpu_problem=problem)))
        box = app.query_one("#tel-problem", Static)
        await wait_until(pilot, lambda: box.display)
        assert f"No GPU figures from spark-01: {problem}" in str(box.render())
        assert not app.query_one("#tel-cards").display


async def test_memory_pressure_banner_on_every_tab() -> None:
    app = quiet_app(("spark-1", "spark-2"))
    async with app.run_test(size=(120, 40)) as pilot:
        banner = app.query_one("#alert-banner", Static)
        assert not banner.display
        app.post_message(TelemetryUpdated(state("spark-1", host=host(available_gib=6.2))))
        await wait_until(pilot, lambda: banner.display)
        assert active_tab(app) == "devices"
        expected = ("spark-1: only 6.2 GiB memory available (floor 8 GiB) — a model load "
                    "may freeze the box")
        assert app.banner_text == expected
        assert expected in str(banner.render())
        lines = screen_text(app).splitlines()
        assert "sparktui" in lines[0] and lines[1].strip() == f"⚠ {expected}"  # under the header
        await pilot.press("4")
        assert banner.display and expected in screen_text(app)

        hot = gb10(temp_c=91.0, event_reasons=0x40)
        app.post_message(TelemetryUpdated(state("spark-2", gpus=(hot,))))
        await wait_until(pilot, lambda: "91 °C" in app.banner_text)
        lines = app.banner_text.splitlines()
        assert lines[0] == expected  # the one that can freeze the box comes first
        assert "spark-2 GPU 0: clocks held back by HW thermal slowdown" in lines

        app.post_message(TelemetryUpdated(state("spark-1")))
        app.post_message(TelemetryUpdated(state("spark-2")))
        await wait_until(pilot, lambda: not banner.display)
        assert app.banner_text == ""


async def test_devices_tab_live_columns_and_fleet_total() -> None:
    app = quiet_app(("spark-1", "spark-2"))
    async with app.run_test(size=(140, 40)) as pilot:
        table = app.query_one("#devices-table", DataTable)
        assert "util" not in [str(c.value) for c in table.columns]  # nothing reported yet
        app.post_message(TelemetryUpdated(state("spark-1")))
        app.post_message(TelemetryUpdated(state(
            "spark-2", gpus=(gb10(util_gpu=20.0, temp_c=71.0, power_w=30.0),))))
        # the total row follows within a second (it is redrawn once a second at most)
        await wait_until(pilot, lambda: "total" in table.rows
                         and table.get_cell("1", "util").plain == "20%"
                         and table.get_cell("total", "util").plain == "41%")
        assert table.get_cell("0", "gpus").plain == "1"
        assert table.get_cell("0", "memory").plain == "42 / 122 GiB unified"
        assert table.get_cell("0", "temp").plain == "58 °C"
        assert table.get_cell("0", "power").plain == "41 W"
        assert table.get_cell("0", "state").plain == "connecting…"  # kept
        assert table.get_cell("total", "gpus").plain == "2"
        assert table.get_cell("total", "util").plain == "41%"  # mean of 62 and 20
        assert table.get_cell("total", "power").plain == "71 W"  # 41.3 + 30
        assert table.get_cell("total", "temp").plain == "71 °C"  # the hottest
        assert table.get_cell("total", "state").plain == "0 of 2 connected"

        # hidden tab: a tick changes nothing until the tab is shown again
        await pilot.press("2")
        app.post_message(TelemetryUpdated(state("spark-1", gpus=(gb10(util_gpu=5.0),))))
        await wait_until(pilot, lambda: app.query_one("#devices-pane")._stale)
        assert table.get_cell("0", "util").plain == "62%"
        await pilot.press("1")
        await wait_until(pilot, lambda: table.get_cell("0", "util").plain == "5%")


async def test_device_keys_cycle_between_devices() -> None:
    app = quiet_app(("spark-1", "spark-2"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        assert pane.device == "spark-1"
        assert "right_square_bracket" in app.screen.active_bindings
        await pilot.press("right_square_bracket")
        assert pane.device == "spark-2"
        assert "spark-2 (2/2" in str(app.query_one("#tel-status", Static).render())
        await pilot.press("right_square_bracket")
        assert pane.device == "spark-1"
        await pilot.press("left_square_bracket")
        assert pane.device == "spark-2"
        await pilot.press("left_square_bracket")
        assert pane.device == "spark-1"

    single = quiet_app()
    async with single.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        assert "right_square_bracket" not in single.screen.active_bindings  # implicit


async def test_processes_sort_by_key_and_header() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        table = app.query_one(ProcessTable)
        app.post_message(TelemetryUpdated(state()))
        await wait_until(pilot, lambda: table.row_count == 2)

        def pids() -> list[str]:
            return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]

        assert table.sort_key == "memory" and pids() == ["114687", "2311"]
        await pilot.press("o")  # memory -> process name
        assert table.sort_key == "command" and pids() == ["114687", "2311"]
        await pilot.press("O")  # the same column, the other way
        assert table.sort_key == "command" and pids() == ["2311", "114687"]
        await pilot.press("o")  # wraps to the pid
        assert table.sort_key == "pid" and pids() == ["2311", "114687"]
        columns = list(table.columns.values())
        x = sum(c.get_render_width(table) for c in columns[:3]) + 2  # into the Memory header
        await pilot.click("#tel-processes", offset=(x, 0))
        await wait_until(pilot, lambda: table.sort_key == "memory")
        assert pids() == ["114687", "2311"]


async def test_compact_side_pane_drops_columns() -> None:
    app = quiet_app()
    async with app.run_test(size=(50, 40)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        service = app.telemetry.get("spark-01")
        assert service is not None
        fill_history(service.history, 100.0)
        app.post_message(TelemetryUpdated(state()))
        await settle_cards(pilot, pane)
        table = app.query_one(ProcessTable)
        assert [str(c.value) for c in table.columns] == ["pid", "memory", "command"]
        charts = [c for c in pane._cards[0].charts if c.display and c.size.width]
        assert [c.id for c in charts] == ["chart-util"]  # one small chart
        for line in screen_text(app).splitlines():
            assert len(line.rstrip()) <= 50


async def test_quit_closes_telemetry_before_the_links() -> None:
    links = [link("spark-01", LocalConnector("spark-01"))]
    app = make_app(links, live_telemetry=True)
    seen: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "spark-01" in app.telemetry_states)
        close = app.telemetry.close

        async def closing() -> None:
            seen.append(links[0].status.state.value)
            await close()

        app.telemetry.close = closing  # type: ignore[method-assign]
        await pilot.press("q")
        await wait_until(pilot, lambda: not app.is_running)
    assert seen == ["connected"]
    assert all(not service._tasks for service in app.telemetry.services.values())


# -- pieces ----------------------------------------------------------------------------------
def test_ticks_coalesce_per_device() -> None:
    older = TelemetryUpdated(state("a"))
    assert older.can_replace(TelemetryUpdated(state("a", t=101.0)))
    assert not older.can_replace(TelemetryUpdated(state("b")))


def test_downsample_keeps_peaks_and_gaps() -> None:
    points = [(float(t), None if 30 <= t < 50 else float(t % 7)) for t in range(100)]
    segments = downsample(points, now=99.0, window_s=100.0, buckets=10)
    assert len(segments) == 2  # the gap splits the line
    assert max(y for s in segments for _, y in s) == 6.0
    raw = downsample(points[:10], now=9.0, window_s=60.0, buckets=50)
    assert [x for x, _ in raw[0]] == [float(t - 9) for t in range(10)]


def test_alerts_put_memory_pressure_first() -> None:
    lines = readings.alert_lines([state("a", gpus=(gb10(temp_c=90.0),)),
                                  state("b", host=host(available_gib=2.0))])
    assert lines[0][0].startswith("b: only 2.0 GiB memory available")
    assert lines[0][1] is readings.Level.ERROR
    assert lines[1][0] == "a GPU 0: 90 °C (alert at 85)"


def test_the_alert_board_keeps_each_devices_alerts_until_it_changes() -> None:
    """The banner reads one device's alerts per tick (AlertBoard), with the same lines
    and order as reading every device's (alert_lines)."""
    hot, low = state("a", gpus=(gb10(temp_c=90.0),)), state("b", host=host(available_gib=2.0))
    board = readings.AlertBoard()
    board.update(hot)
    assert board.update(low) == readings.alert_lines([hot, low])
    cool = state("a", gpus=(gb10(temp_c=40.0),))
    assert board.update(cool) == readings.alert_lines([cool, low])
    assert [line for line, _ in board.update(cool)] == [readings.alert_lines([low])[0][0]]

