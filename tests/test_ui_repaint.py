"""Repainting only what changed: cheap on the terminal, and never leaving it stale.

The live tabs repaint the cells that changed (sparktui.ui.widgets.repaint) and
Textual writes only those cells (sparktui.ui.partial_lines). The guard is a small
terminal emulator fed every byte the app would write: after each tick what it
shows must be what Textual's compositor holds, cell for cell, style included.
"""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui import partial_lines
from sparktui.ui.app import SparkApp
from sparktui.ui.messages import TelemetryUpdated
from sparktui.ui.panes import DevicesPane, TelemetryPane
from sparktui.ui.telemetry.chart import MIN_REDRAW_S
from sparktui.ui.telemetry.gauge import Gauge
from sparktui.ui.widgets.repaint import LiveStatic, LiveTable, changed_spans, same_look
from tests.infra.pilot import wait_until
from tests.test_ui_telemetry import gb10, host, quiet_app, settle_cards, state

_SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\n|\r|[^\x1b\n\r]")


class Terminal:
    """Just enough of a terminal for Textual's output: cursor moves, SGR, text."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", "")] * width for _ in range(height)]
        self.x = self.y = 0
        self.sgr = ""

    def feed(self, data: str) -> None:
        for match in _SEQUENCE.finditer(data):
            chunk = match.group(0)
            if match.group(2) == "H":
                row, _, column = (match.group(1) or "1;1").partition(";")
                self.y, self.x = int(row or 1) - 1, int(column or 1) - 1
            elif match.group(2) == "m":
                self.sgr = "" if match.group(1) in ("", "0") else chunk
            elif match.group(2):
                continue  # other controls: no glyphs
            elif chunk == "\n":
                self.y += 1
            elif chunk == "\r":
                self.x = 0
            else:
                if 0 <= self.y < self.height and 0 <= self.x < self.width:
                    self.cells[self.y][self.x] = (chunk, self.sgr)
                self.x += 1

    def lines(self) -> list[str]:
        return ["".join(char for char, _ in row).rstrip() for row in self.cells]


def _console() -> Console:
    return Console(color_system="truecolor", force_terminal=True, width=200)


def _expected(app: App, console: Console) -> Terminal:
    """The compositor's whole screen, written out in full to a fresh terminal."""
    strips = app.screen._compositor.render_strips()
    terminal = Terminal(app.size.width, app.size.height)
    for y, strip in enumerate(strips):
        terminal.feed(Control.move_to(0, y).segment.text + strip.render(console))
    return terminal


class Spy:
    """Feeds every screen update the app makes (even headless) to a Terminal."""

    def __init__(self, app: App) -> None:
        self.console = _console()
        self.terminal = Terminal(*app.size)
        self.written = 0
        self.app = app
        display = app._display

        def spy(screen, renderable) -> None:
            if hasattr(renderable, "render_segments"):
                data = renderable.render_segments(self.console)
                self.written += len(data.encode())
                self.terminal.feed(data)
            display(screen, renderable)

        app._display = spy  # type: ignore[method-assign]

    def assert_in_step(self) -> None:
        expected = _expected(self.app, self.console)
        stale = [(y, x, got, want) for y, (row, want_row) in
                 enumerate(zip(self.terminal.cells, expected.cells, strict=True))
                 for x, (got, want) in enumerate(zip(row, want_row, strict=True))
                 if got != want]
        assert not stale, ("terminal out of step with the compositor at (row, column): "
                           f"{[(y, x) for y, x, _, _ in stale[:12]]}\n"
                           + "\n".join(self.terminal.lines()))


def _tick(t: float, load: float) -> DeviceTelemetry:
    """A tick whose every figure moves with `load` (0..1)."""
    return state("spark-01", t=t, gpus=(gb10(t, util_gpu=round(100 * load),
                                             temp_c=40 + 30 * load, power_w=12 + 45 * load,
                                             sm_clock_mhz=1200 + 1500 * load),),
                 host=host(t, available_gib=100 - 40 * load, cache_gib=10 + 5 * load))


def _send(app: SparkApp, telemetry: DeviceTelemetry) -> None:
    """As the service does: history first, then the tick."""
    service = app.telemetry.get(telemetry.device)
    assert service is not None and telemetry.host is not None
    service.history.record_gpu(telemetry.gpus[0])
    service.history.record_host(telemetry.host)
    app.post_message(TelemetryUpdated(telemetry))


async def _feed(pilot, app: SparkApp, spy: Spy, ticks: range) -> None:
    for i in ticks:
        _send(app, _tick(100.0 + i, (i * 37 % 100) / 100))
        await pilot.pause()
        await pilot.pause()
        spy.assert_in_step()


@pytest.mark.parametrize("size", [(120, 40), (50, 40)], ids=["wide", "side-pane"])
async def test_the_telemetry_tab_never_leaves_the_terminal_stale(size: tuple[int, int]) -> None:
    partial_lines.install()
    app = quiet_app()
    async with app.run_test(size=size) as pilot:
        spy = Spy(app)
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        _send(app, _tick(99.0, 0.5))
        await settle_cards(pilot, pane)
        await pilot.pause()
        spy.assert_in_step()
        await _feed(pilot, app, spy, range(0, 8))
        await pilot.press("w")  # another window: the charts at once
        await _feed(pilot, app, spy, range(8, 12))
        app.theme = "textual-light"  # every colour changes
        await pilot.pause()
        await _feed(pilot, app, spy, range(12, 16))
        await pilot.pause(MIN_REDRAW_S + 0.2)  # the charts' held-back tick is drawn
        spy.assert_in_step()
        await pilot.press("p")
        await _feed(pilot, app, spy, range(16, 18))


async def test_the_devices_tab_repaints_cells_not_the_table() -> None:
    partial_lines.install()
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        spy = Spy(app)
        pane = app.query_one(DevicesPane)
        _send(app, _tick(99.0, 0.5))
        await wait_until(pilot, lambda: "util" in pane.table.columns
                         and pane.table.get_cell("0", "util").plain == "50%")
        await _feed(pilot, app, spy, range(0, 2))
        before = spy.written
        await _feed(pilot, app, spy, range(2, 10))
        # eight ticks of four changed cells: a few hundred bytes each (538 B measured: the
        # four cells go as one span, with their styles), where a repaint of the table
        # (every row of the pane, blank ones too) is kilobytes, and a footer repaint
        # 1.3 KB: the hidden Telemetry pane marking its device stale refreshed the
        # bindings (and so repainted the footer) once; it now waits until it is shown
        assert spy.written - before < 8 * 600
        assert pane.table.get_cell("0", "util").plain == f"{9 * 37 % 100}%"


async def test_a_hidden_pane_going_stale_leaves_the_footer_alone_until_shown() -> None:
    # a bindings refresh recomposes the whole footer (1.3 KB to the terminal): the
    # Telemetry pane's kill keys follow its device's state, but only matter on screen
    app = quiet_app()  # its one device never connects: the Telemetry pane goes stale
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TelemetryPane)
        await pilot.pause()
        refreshes: list[object] = []
        app.screen.bindings_updated_signal.subscribe(app.screen, refreshes.append)
        assert not pane.has_class("-stale")
        _send(app, _tick(99.0, 0.5))  # a new device, then stale: neither is on screen
        await wait_until(pilot, lambda: pane.has_class("-stale"), timeout=5)
        await pilot.pause(0.2)
        assert refreshes == []
        await pilot.press("2")
        await wait_until(pilot, lambda: refreshes != [])
        assert pane.check_action("kill_process", ()) is None  # shown dimmed, refused


# -- pieces ------------------------------------------------------------------------------------
def _strip(*parts: tuple[str, str]) -> Strip:
    return Strip([Segment(text, Style.parse(style) if style else None) for text, style in parts])


def test_changed_spans_finds_runs_and_joins_near_ones() -> None:
    old = _strip(("Util ", "dim"), ("█████░░░░░", "green"), (" 50%", "bold"))
    assert changed_spans(old, old) == []
    new = _strip(("Util ", "dim"), ("██████░░░░", "green"), (" 60%", "bold"))
    assert changed_spans(old, new) == [(10, 17)]  # a bar block and a digit, 5 cells apart
    far = _strip(("Util ", "dim"), ("██████░░░░", "green"), (" 50%", "bold"))
    assert changed_spans(old, far, join_gap=3) == [(10, 11)]
    recoloured = _strip(("Util ", "dim"), ("█████░░░░░", "red"), (" 50%", "bold"))
    assert changed_spans(old, recoloured) == [(5, 15)]
    longer = _strip(("Util ", "dim"), ("█████░░░░░", "green"), (" 50% (peak)", "bold"))
    assert changed_spans(old, longer) == [(19, 26)]
    wide = _strip(("温度 ", ""), ("50", ""))
    assert changed_spans(wide, _strip(("温度 ", ""), ("51", ""))) == [(6, 7)]


def test_same_look_compares_style_and_justify() -> None:
    assert same_look(Text("5%", justify="right"), Text("5%", justify="right"))
    assert not same_look(Text("5%", style="bold"), Text("5%"))  # Text == says equal
    assert not same_look(Text("5%", justify="right"), Text("5%"))


class _Cells(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveStatic(id="line")
        yield Gauge("Util", id="gauge")
        yield LiveTable(id="table")


async def test_live_widgets_mark_only_changed_cells_dirty(monkeypatch) -> None:
    dirty: list[tuple[str, tuple[Region, ...]]] = []
    refresh = Widget.refresh

    def spy(self, *regions, repaint=True, **kwargs):
        if repaint and self.id in ("line", "table"):
            dirty.append((self.id, regions))
        return refresh(self, *regions, repaint=repaint, **kwargs)

    app = _Cells()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.add_column("Device", key="name")
        table.add_column("Util", key="util")
        table.add_row(Text("spark-01"), Text("50%", justify="right"), key="a")
        line = app.query_one(LiveStatic)
        line.show(Text("CPU 5%  load 1.00"))
        await pilot.pause()
        monkeypatch.setattr(Widget, "refresh", spy)  # what reaches Textual

        line.show(Text("CPU 7%  load 1.00"))
        assert dirty == [("line", (Region(4, 0, 1, 1),))]
        dirty.clear()
        line.show(Text("CPU 7%  load 1.00"))  # the same again: nothing at all
        assert dirty == []

        assert table.set_cell("a", "util", Text("60%", justify="right"))
        assert len(dirty) == 1 and len(dirty[0][1]) == 1  # one cell's region
        assert dirty[0][1][0].height == 1 and dirty[0][1][0].width < 10
        dirty.clear()
        assert not table.set_cell("a", "util", Text("60%", justify="right"))
        assert dirty == []
        assert table.set_cell("a", "util", Text("100.0%", justify="right"))  # wider
        assert dirty and dirty[-1][1] == ()  # the column grows: the whole table
        await pilot.pause()


def test_partial_lines_write_only_the_dirty_cells() -> None:
    from textual._compositor import ChopsUpdate

    assert partial_lines.install() and partial_lines.install()  # idempotent
    console = _console()
    strip = Strip([Segment("Util ", Style(dim=True)), Segment("██████░░░░", Style(color="green")),
                   Segment(" 60%", Style(bold=True))])
    # one widget 19 cells wide at x=2 on row 0, its cells 18..20 ("60%") changed
    update = ChopsUpdate([{0: None, 2: strip, 21: None}], [(0, 18, 21)], [[2, 21, 30]])
    data = update.render_segments(console)
    assert "Util" not in data and "█" not in data and "60%" in data
    terminal = Terminal(30, 1)
    terminal.feed(data)
    assert terminal.lines() == [" " * 18 + "60%"]


def test_the_real_app_installs_the_line_writer(tmp_path) -> None:
    """The patch of Textual's private ChopsUpdate must be in force in the real app: a
    Textual release that moves it fails here, loudly, instead of silently repainting
    whole lines (pyproject pins Textual to the range this passes on)."""
    from textual._compositor import ChopsUpdate

    from sparktui.services.config import Config

    SparkApp(Config(path=tmp_path / "config.toml"))
    assert ChopsUpdate.render_segments is partial_lines._guarded
