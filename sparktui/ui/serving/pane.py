"""The Serving tab: what every inference engine on the devices is doing, and which is which.

A tab of its own (key 6) because it is where a k9s or nvitop user looks for
"what is my server doing": one row per endpoint (engine, model, queue, KV
cache, tokens/s, TTFT), the selected one's every figure with the scope of
its percentiles, history charts like the Telemetry tab's, and the rows that
tie GPU processes to containers, ports, endpoints and models.

Endpoints are found when the tab is first shown (and on `r`), as the Chat tab
finds them; they are scraped through the device connection every
SCRAPE_PERIOD_S only while the tab is on screen (a GET on a forward: no
process on the device). `m` opens the models on disk (delete, fit).

An endpoint whose device dropped keeps its last figures, dimmed and struck,
with their age ("STALE: last scrape 14 s ago, ..."), as Containers and Chat show
theirs; its charts move on past the last scrape, and `m` on it is refused with
the reason. A rediscovery keeps the endpoints of devices not connected now.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Callable

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer

from sparktui.core.sanitize import strip_control
from sparktui.core.serving_text import (
    MISSING,
    count,
    engine_name,
    figure_lines,
    missing_line,
    number,
    seconds,
)
from sparktui.services.endpoints import DeviceDiscovery, Endpoint, EndpointConnector
from sparktui.services.link import DeviceLink
from sparktui.services.model_directory import ModelRow
from sparktui.services.model_map import model_rows
from sparktui.services.serving import EndpointServing, ServingMonitor
from sparktui.services.session import Session
from sparktui.services.telemetry import DeviceTelemetry, TelemetryHub
from sparktui.ui import readings
from sparktui.ui.keys import key_hint
from sparktui.ui.telemetry.chart import Chart, ChartData
from sparktui.ui.widgets.pane_common import STALE_CELL, PaneIntro, RediscoveringPane
from sparktui.ui.widgets.repaint import LiveStatic, LiveTable

PURPOSE = ("What every inference engine on the devices is doing: queue, KV cache, "
           "tokens/s and latency percentiles from vLLM, SGLang, llama.cpp, TRT-LLM and Ollama, "
           "and which GPU process, container and port serve which model.")
DETAILS = ("No model endpoint found yet: start one (Containers, n deploys a preset), or r "
           "to look again once a device is connected. m lists the models on disk.")
SCRAPE_PERIOD_S = 2.0
CHART_WINDOW_S = 300.0

COLUMNS = (("device", "Device"), ("port", "Port"), ("engine", "Engine"), ("model", "Model"),
           ("run", "Run"), ("wait", "Wait"), ("kv", "KV %"), ("gen", "Gen t/s"),
           ("ttft", "TTFT p95"), ("who", "Container / PID"))
COMPACT_COLUMNS = (("port", "Port"), ("engine", "Engine"), ("run", "Run"), ("wait", "Wait"),
                   ("kv", "KV %"))
#: (chart id, title, history metric, y range (None: from the data), value format)
CHARTS: tuple[tuple[str, str, str, tuple[float, float] | None,
                    Callable[[float | None], str]], ...] = (
    ("chart-queue", "Running", "running", None, count),
    ("chart-kv", "KV cache %", "kv_cache_pct", (0.0, 100.0), lambda v: number(v, 1, "%")),
    ("chart-gen", "Gen tok/s", "generation_tps", None, lambda v: number(v, 1)),
    ("chart-ttft", "TTFT p95", "ttft_p95", None, seconds),
)


class ServingPane(RediscoveringPane):
    """Engines' figures per endpoint, charts of the selected one, and the model rows."""

    HELP_SCOPE = "Serving tab"

    BINDINGS = [
        Binding("r", "rediscover", "Rediscover", id="serving.rediscover",
                tooltip="Look for model endpoints on every device again"),
        Binding("m", "models", "Models", id="serving.models",
                tooltip="Models on the selected device's disk: size, last use, delete, fit"),
    ]

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.hub: TelemetryHub | None = session.telemetry
        self.connector = EndpointConnector(self.fleet.get)
        self.monitor = ServingMonitor(self.connector, period_s=SCRAPE_PERIOD_S)
        self.discoveries: dict[str, DeviceDiscovery] = {}
        self.results: list[EndpointServing] = []
        #: each endpoint's last reading with figures: what a dropped device's row keeps
        self._last_read: dict[str, EndpointServing] = {}
        self.rows: list[ModelRow] = []
        self._row_ids: list[str] = []
        self._ticker: Timer | None = None
        self._status = "looking for model endpoints when first shown"

    def compose(self) -> ComposeResult:
        yield PaneIntro("Serving", PURPOSE, DETAILS, classes="pane-intro")
        yield LiveStatic(id="serving-status")
        yield LiveTable(id="serving-table", cursor_type="row")
        with Horizontal(id="serving-body"):
            yield LiveStatic(id="serving-detail")
            with Vertical(id="serving-charts"):
                for chart_id, title, *_rest in CHARTS:
                    yield Chart(title, id=chart_id, classes="serving-chart")

    def on_mount(self) -> None:
        self._rebuild_columns()
        self._show_intro()
        self._say_status()

    async def on_unmount(self) -> None:
        self._stop()
        await self.monitor.close()
        await self.connector.close()

    # -- when it runs ----------------------------------------------------------------------
    def on_show(self, _event: events.Show) -> None:
        # (the first show also starts the search: RediscoveringPane)
        if self._ticker is None:
            self._ticker = self.set_interval(SCRAPE_PERIOD_S, self._scrape)

    def on_hide(self, _event: events.Hide) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def action_rediscover(self) -> None:
        self.discover()

    @work(group="serving-discover", exclusive=True, exit_on_error=False)
    async def discover(self) -> None:
        self._status = "looking for model endpoints…"
        self._say_status()
        links = [link for link in self.fleet.links
                 if link.transport is not None and link.transport.is_alive()]
        found = await asyncio.gather(*(self.connector.discover_device(link) for link in links))
        # a device not connected now keeps what was found on it: shown stale, not dropped
        searched_names = {link.name for link in links}
        kept = {name: d for name, d in self.discoveries.items()
                if name not in searched_names and self.fleet.get(name)}
        self.discoveries = kept | {d.device: d for d in found}
        found = list(self.discoveries.values())
        endpoints = [e for d in found for e in d.endpoints]
        self.monitor.set_endpoints(endpoints)
        searched = ", ".join(link.name for link in links) or "no connected device"
        notes = [f"{d.device}: {note}" for d in found for note in d.notes]
        self._status = (f"{len(endpoints)} endpoint{'s' * (len(endpoints) != 1)} "
                        f"({searched})" + (f" · {'; '.join(notes)}" if notes else ""))
        self._say_status()
        self._show_intro()
        self._show_selected()
        self._scrape()

    def _show_intro(self) -> None:
        has = bool(self.results) or self._has_endpoints()
        self.query_one(".pane-intro", PaneIntro).display = not has
        for selector in ("#serving-table", "#serving-body"):
            self.query_one(selector).display = has

    def _scrape(self) -> None:
        if self.monitor.latest or self._has_endpoints():
            self.scrape()

    @work(group="serving-scrape", exclusive=True, exit_on_error=False)
    async def scrape(self) -> None:
        """One round over every endpoint; the table and charts show it at once."""
        self.results = [self._or_last_read(result)
                        for result in await self.monitor.scrape_all()]
        self._show_intro()
        self.rows = self._model_rows()
        self._fill_table()
        self._show_selected()

    def _or_last_read(self, result: EndpointServing) -> EndpointServing:
        """A dropped device's endpoint answers nothing: its last reading stands (stale)."""
        if self._gone(result) is not None:
            return self._last_read.get(result.id, result)
        if result.figures is not None:
            self._last_read[result.id] = result
        return result

    def _link_of(self, result: EndpointServing) -> DeviceLink | None:
        device = result.endpoint.spec.device
        return self.fleet.get(device) if device else None

    def _gone(self, result: EndpointServing) -> str | None:
        """Why the endpoint's device cannot be reached now; None while it is connected."""
        return readings.gone_reason(self._link_of(result))

    def _stale(self, result: EndpointServing) -> str | None:
        """STALE with the age of the last scrape, while the endpoint's device is gone."""
        link = self._link_of(result)
        return None if link is None else readings.link_stale_label(link, "last scrape")

    def device_dropped(self) -> None:
        # the rows, the detail and the charts say which endpoints' devices are gone, at once
        self._fill_table()
        self._show_selected()

    def _has_endpoints(self) -> bool:
        return any(d.endpoints for d in self.discoveries.values())

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height >= 30, "-tall")

    def on_data_table_row_highlighted(self, _event) -> None:
        self._show_selected()

    # -- what it shows ---------------------------------------------------------------------
    def _model_rows(self) -> list[ModelRow]:
        rows: list[ModelRow] = []
        endpoints = [r.endpoint for r in self.results]
        for device, discovery in self.discoveries.items():
            service = self.hub.get(device) if self.hub is not None else None
            processes = service.latest.processes if service is not None else ()
            found = model_rows(device, processes, discovery.containers, endpoints)
            self.fleet.models.update(device, found)
            rows += found
        return rows

    def _rebuild_columns(self) -> None:
        table = self.query_one("#serving-table", LiveTable)
        table.clear(columns=True)
        compact = self.compact
        for key, label in (COMPACT_COLUMNS if compact else COLUMNS):
            table.add_column(label, key=key)
        self._row_ids = []
        self._fill_table()

    def _cells(self, result: EndpointServing) -> dict[str, Text]:
        spec = result.endpoint.spec
        f = result.figures
        row = self._row_for(result)
        who = MISSING
        if row is not None and (row.container or row.pid):
            who = " ".join(x for x in (row.container or "",
                                       f"pid {row.pid}" if row.pid else "") if x)
        models = (f.models if f else ()) or result.endpoint.models
        cells = {
            "device": spec.device or "here", "port": str(spec.base.host_port[1]),
            "engine": engine_name(f.engine) if f else "error",
            "model": ", ".join(models) or MISSING,
            "run": count(f.running) if f else MISSING,
            "wait": count(f.waiting) if f else MISSING,
            "kv": number(f.kv_cache_pct, 1) if f else MISSING,
            "gen": number(f.generation_tps, 1) if f else MISSING,
            "ttft": seconds(f.ttft.p95) if f and f.ttft else MISSING,
            "who": who,
        }
        texts = {k: Text(strip_control(v, max_line=60), no_wrap=True, overflow="ellipsis")
                 for k, v in cells.items()}
        if self._gone(result) is not None:
            for text in texts.values():  # the last figures seen, never live
                text.stylize(STALE_CELL)
        return texts

    def _row_for(self, result: EndpointServing) -> ModelRow | None:
        url = result.endpoint.spec.url
        device = result.endpoint.spec.device
        return next((r for r in self.rows if r.endpoint == url and r.device == device), None)

    def _fill_table(self) -> None:
        table = self.query_one("#serving-table", LiveTable)
        ids = [r.id for r in self.results]
        columns = [str(c.key.value) for c in table.columns.values()]
        if ids != self._row_ids:
            cursor = table.cursor_row
            table.clear()
            for result in self.results:
                cells = self._cells(result)
                table.add_row(*(cells[c] for c in columns), key=result.id)
            self._row_ids = ids
            if self.results:
                table.move_cursor(row=min(max(cursor, 0), len(self.results) - 1))
            return
        for result in self.results:
            cells = self._cells(result)
            for column in columns:
                table.set_cell(result.id, column, cells[column])

    def selected(self) -> EndpointServing | None:
        table = self.query_one("#serving-table", LiveTable)
        if not self.results or table.cursor_row < 0:
            return None
        return self.results[min(table.cursor_row, len(self.results) - 1)]

    def _show_selected(self) -> None:
        result = self.selected()
        detail = self.query_one("#serving-detail", LiveStatic)
        if result is None:
            detail.show(Text("No model endpoint yet. " + self._hints(), no_wrap=False))
            for chart_id, *_rest in CHARTS:
                self.query_one(f"#{chart_id}", Chart).plot(
                    ChartData((), 0.0, CHART_WINDOW_S, (0.0, 1.0), MISSING,
                              "no endpoint selected"))
            return
        detail.show(self._detail_text(result, max(20, detail.size.width - 2)))
        stale = self._gone(result) is not None
        for chart_id, _title, metric, y_range, fmt in CHARTS:
            series = self.monitor.history.series((result.id, metric))
            chart = self.query_one(f"#{chart_id}", Chart)
            if series is None or not series:
                chart.plot(ChartData((), 0.0, CHART_WINDOW_S, y_range or (0.0, 1.0), MISSING,
                                     "not exposed by this engine"))
                continue
            # a dropped device's charts move on past the last scrape: the gap grows
            now = time.monotonic() if stale else series.last[0]  # type: ignore[index]
            points = series.window(CHART_WINDOW_S, now)
            values = [v for _t, v in points if v is not None]
            top = y_range or (0.0, max([1.0, *values]) * 1.1)
            empty = "not exposed by this engine" if not values else "no data in this window"
            chart.plot(ChartData(tuple(points), now, CHART_WINDOW_S, top,
                                 fmt(series.last_value), empty))

    def _detail_text(self, result: EndpointServing, width: int) -> Text:
        text = Text(end="")
        spec = result.endpoint.spec
        f = result.figures
        head = f"{engine_name(f.engine) if f else '?'} · {spec.device}:{spec.base.host_port[1]}"
        text.append(strip_control(head, max_line=120), style="bold")
        if stale := self._stale(result):  # wrapped, not cut: the age and the reason matter
            for line in textwrap.wrap(stale.strip(), max(20, width)):
                text.append("\n" + line, style="bold")
        if result.error:
            text.append("\n" + strip_control(result.error, max_line=200))
        if f is not None:
            for label, value in figure_lines(f):
                text.append(f"\n{label:<12}", style="dim")
                text.append(strip_control(value, max_line=120))
            gone = missing_line(f)
            if gone:
                text.append("\n" + gone, style="dim")
            for note in f.notes:
                text.append("\n" + strip_control(note, max_line=200), style="dim italic")
        for row in self.rows:
            if row.endpoint == spec.url and row.device == spec.device:
                text.append("\nprocess     ", style="dim")
                text.append(strip_control(_row_text(row), max_line=160))
        lines = text.split("\n")
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n", end="").join(lines)

    def _hints(self) -> str:
        rediscover = key_hint(self, "serving.rediscover", "r")
        models = key_hint(self, "serving.models", "m")
        return f"{rediscover} looks again · {models} models on disk"

    def _say_status(self) -> None:
        self.query_one("#serving-status", LiveStatic).show(
            Text(f"{strip_control(self._status, max_line=300)} · {self._hints()}",
                 no_wrap=True, overflow="ellipsis"))

    def show_telemetry(self, telemetry: DeviceTelemetry) -> None:
        """New GPU processes: the model rows follow (the scrape redraws the rest)."""
        if self.results:
            self.rows = self._model_rows()

    # -- models on disk ----------------------------------------------------------------
    def action_models(self) -> None:
        from sparktui.ui.serving.models import ModelsScreen

        result = self.selected()
        device = (result.endpoint.spec.device if result is not None else None) or (
            self.fleet.links[0].name if self.fleet.links else None)
        link = self.fleet.get(device) if device else None
        if link is None:
            self.notify("No device to read the models of", severity="warning")
            return
        if gone := readings.gone_reason(link):
            self.notify(f"Not done: {gone}; its models cannot be read until it is back.",
                        severity="warning", markup=False)
            return
        ollama = [r.endpoint for r in self.results
                  if r.endpoint.kind == "ollama" and r.endpoint.spec.device == device]
        self.app.push_screen(ModelsScreen(link, self.connector, ollama,
                                          self.hub.get(device) if self.hub else None,
                                          session=self.session))

    def watch_compact(self) -> None:
        if self.is_mounted:
            self._rebuild_columns()


def _row_text(row: ModelRow) -> str:
    parts = [f"pid {row.pid} {row.process or ''}".strip() if row.pid else "no GPU process seen"]
    if row.gpu_memory_mib is not None:
        parts.append(f"{row.gpu_memory_mib / 1024:.1f} GiB")
    parts.append(f"container {row.container}" if row.container else "no container")
    parts.append(f"port {row.port}" if row.port else "no port")
    parts.append(row.model_text)
    return " → ".join(parts)


__all__ = ["Endpoint", "ServingPane"]
