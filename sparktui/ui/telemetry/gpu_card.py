"""One GPU's card: title and clock events, five gauges, four history charts.

Built once per GPU and kept: a tick only hands it new readings (the gauges'
reactives) and, when its charts are drawn, new chart data.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from sparktui.core.history import History, RingBuffer
from sparktui.core.nvsmi import GpuSample
from sparktui.core.units import NO_VALUE, fmt_bytes, fmt_celsius, fmt_percent, fmt_watts
from sparktui.services.telemetry import GIB, DeviceTelemetry
from sparktui.ui import readings
from sparktui.ui.readings import Level
from sparktui.ui.telemetry.chart import Chart, ChartData
from sparktui.ui.telemetry.gauge import Gauge
from sparktui.ui.widgets import ComponentStyles
from sparktui.ui.widgets.repaint import CutGrid, LiveStatic

MIB = 1024**2


def _series(history: History | None, key: tuple[str, str]) -> RingBuffer | None:
    return None if history is None else history.series(key)


class GpuCard(ComponentStyles, Vertical):
    """Everything about one GPU of the focused device."""

    COMPONENT_CLASSES = {"gpu-card--title", "gpu-card--dim", "gpu-card--warning",
                         "gpu-card--error"}

    def __init__(self, index: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index
        #: the narrow layout's shorter labels (set by the Telemetry pane, which follows the app)
        self.compact = False
        self._title_text: Text | None = None
        self._widths_of: str | None = None  # the device whose values set _value_width
        self._value_width = 0

    def compose(self) -> ComposeResult:
        yield LiveStatic(id="gpu-title", classes="gpu-title")
        with Vertical(classes="gauges"):
            yield Gauge("Util", id="gauge-util")
            yield Gauge("Used", heading=readings.UNIFIED_LABEL, id="gauge-memory")
            yield Gauge("Temp", id="gauge-temp")
            yield Gauge("Power", id="gauge-power")
            yield Gauge("SM clock", id="gauge-clock")
        with Horizontal(classes="charts"):
            # beneath the charts' title line, cut before each title's figure: the figure
            # follows every tick, and is written without the title before it
            yield CutGrid(classes="chart-heads")
            yield Chart("Utilisation", id="chart-util", classes="chart")
            yield Chart("Memory", id="chart-memory", classes="chart secondary")
            yield Chart("Temperature", id="chart-temp", classes="chart secondary")
            yield Chart("Power", id="chart-power", classes="chart secondary")

    @property
    def charts(self) -> list[Chart]:
        return list(self.query(Chart))

    # -- numbers ------------------------------------------------------------------------
    def show_numbers(self, telemetry: DeviceTelemetry, gpu: GpuSample) -> None:
        self._show_title(telemetry, gpu)
        shown = {
            "#gauge-util": readings.utilisation(telemetry, gpu),
            "#gauge-memory": readings.memory(telemetry, gpu),
            "#gauge-temp": readings.temperature(telemetry, gpu),
            "#gauge-power": readings.power(telemetry, gpu),
            "#gauge-clock": readings.sm_clock(telemetry, gpu),
        }
        memory = self.query_one("#gauge-memory", Gauge)
        memory.heading = readings.memory_label(telemetry.memory_view(gpu))
        memory.aside = readings.gpu_processes_memory(telemetry, gpu)
        # the widest value so far on this device: a width following each tick's figures
        # would resize all five bars whenever one value gained or lost a digit
        if self._widths_of != telemetry.device:
            self._widths_of, self._value_width = telemetry.device, 0
        value_width = self._value_width = max(
            self._value_width, *(len(reading.text) for reading in shown.values()))
        for selector, reading in shown.items():
            gauge = self.query_one(selector, Gauge)
            gauge.value_width = value_width
            gauge.show(reading)

    def _show_title(self, telemetry: DeviceTelemetry, gpu: GpuSample) -> None:
        events, level, reason = readings.event_reasons(telemetry, gpu)
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(readings.gpu_title(gpu), self.component_style("gpu-card--title"))
        if gpu.pstate:
            text.append(f"  {gpu.pstate}", self.component_style("gpu-card--dim"))
        text.append("  events: " if self.compact else "  clock events: ",
                    self.component_style("gpu-card--dim"))
        style = {Level.ERROR: "gpu-card--error", Level.WARNING: "gpu-card--warning"}.get(level)
        text.append(events, self.component_style(style) if style else "")
        if text != self._title_text:
            self._title_text = text
            title = self.query_one("#gpu-title", LiveStatic)
            title.show(text)
            title.tooltip = reason

    # -- charts --------------------------------------------------------------------------
    def show_charts(self, telemetry: DeviceTelemetry, gpu: GpuSample, history: History | None,
                    window_s: float, frozen_at: float | None, *, at_once: bool = False) -> None:
        """Hand each chart its window of history; a chart redraws only if that changed,
        and a tick's at most every MIN_REDRAW_S unless `at_once`."""
        source = f"gpu{gpu.index}"
        util = _series(history, (source, "util_gpu"))
        temp = _series(history, (source, "temp_c"))
        power = _series(history, (source, "power_w"))
        self._plot("#chart-util", util, window_s, frozen_at, (0.0, 100.0),
                   fmt_percent(gpu.util_gpu), at_once=at_once)
        self._plot("#chart-temp", temp, window_s, frozen_at,
                   self._temp_range(telemetry, temp, window_s), fmt_celsius(gpu.temp_c),
                   at_once=at_once)
        self._plot("#chart-power", power, window_s, frozen_at,
                   self._power_range(gpu, power, window_s), fmt_watts(gpu.power_w),
                   at_once=at_once)
        self._plot_memory(telemetry, gpu, history, window_s, frozen_at, at_once=at_once)
        self._cut_heads()

    def _cut_heads(self) -> None:
        """Cut the title line before each chart's figure (the CutGrid beneath it)."""
        grid = self.query_one(".chart-heads", CutGrid)
        if not grid.is_mounted or not grid.region:
            return
        grid.cut_at([chart.content_region.x - grid.region.x + chart.figure_offset
                     for chart in self.charts if chart.display and chart.region.width])

    def _plot_memory(self, telemetry: DeviceTelemetry, gpu: GpuSample,
                     history: History | None, window_s: float,
                     frozen_at: float | None, *, at_once: bool) -> None:
        view = telemetry.memory_view(gpu)
        if view.unified:
            series = _series(history, ("host", "mem_used"))
            scale = 1 / GIB
        else:
            series = _series(history, (f"gpu{gpu.index}", "mem_used_mib"))
            scale = MIB / GIB
        total = view.total_bytes / GIB if view.total_bytes else None
        value = NO_VALUE if view.used_bytes is None else fmt_bytes(view.used_bytes)
        chart = self.query_one("#chart-memory", Chart)
        chart.title = "Unified memory" if view.unified else "GPU memory"
        self._plot("#chart-memory", series, window_s, frozen_at, (0.0, total or 1.0), value,
                   scale=scale, at_once=at_once)

    def _plot(self, selector: str, series: RingBuffer | None, window_s: float,
              frozen_at: float | None, y_range: tuple[float, float], value_text: str,
              scale: float = 1.0, *, at_once: bool = False) -> None:
        chart = self.query_one(selector, Chart)
        if series is None or not series:
            chart.plot(ChartData((), 0.0, window_s, y_range, value_text), at_once=at_once)
            return
        # "now" is this series' newest sample: another series' tick does not redraw it
        now = frozen_at if frozen_at is not None else series.last[0]  # type: ignore[index]
        points = series.window(window_s, now)
        if scale != 1.0:
            points = [(t, None if v is None else v * scale) for t, v in points]
        empty = ("no value from nvidia-smi ([N/A])" if points else "no data in this window")
        chart.plot(ChartData(tuple(points), now, window_s, y_range, value_text, empty),
                   at_once=at_once)

    @staticmethod
    def _temp_range(telemetry: DeviceTelemetry, series: RingBuffer | None,
                    window_s: float) -> tuple[float, float]:
        high = telemetry.temperature_alert_c + 5
        if series is not None and series.last is not None:
            span = series.span(window_s, series.last[0])
            if span is not None:
                return (min(20.0, span[0]), max(high, span[1]))
        return (20.0, high)

    @staticmethod
    def _power_range(gpu: GpuSample, series: RingBuffer | None,
                     window_s: float) -> tuple[float, float]:
        if gpu.power_limit_w:
            return (0.0, gpu.power_limit_w)
        peak = 0.0
        if series is not None and series.last is not None:
            span = series.span(window_s, series.last[0])
            peak = span[1] if span else 0.0
        # no limit to scale against: round the peak up to a tidy step
        step = 10.0 if peak < 100 else 100.0
        return (0.0, max(step, (int(peak // step) + 1) * step))
