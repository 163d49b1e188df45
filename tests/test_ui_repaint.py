"""Repainting only what changed: cheap on the terminal, and never leaving it stale.

Textual writes a dirty span from the left edge of the widget it falls in, so the
live tabs keep what changes in small widgets of its own (sparktui.ui.widgets.repaint:
a gauge's line is a row of 8-cell tiles; a table row's changed cells go as one run),
and repaint only what looks different. Everything here is observed from outside, on
what the app writes: a small terminal emulator is fed every screen update the real
SparkApp makes. After each tick it must show what Textual's compositor holds, cell
for cell, style included; and a tick must write only where something changed. What
is asserted is where bytes go, never how many a second (that is bench/tab_bytes.py).
"""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.geometry import Region
from textual.strip import Strip

from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui.app import SparkApp
from sparktui.ui.messages import TelemetryUpdated
from sparktui.ui.panes import DevicesPane, TelemetryPane
from sparktui.ui.telemetry.chart import MIN_REDRAW_S
from sparktui.ui.telemetry.gauge import Gauge
from sparktui.ui.widgets.repaint import (
    TILE_CELLS,
    TiledLine,
    _cut_at_cells,
    changed_spans,
    same_look,
)
from tests.infra.pilot import wait_until
from tests.test_ui_telemetry import gb10, host, quiet_app, settle_cards, state

_SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\n|\r|[^\x1b\n\r]")


class Terminal:
    """Just enough of a terminal for Textual's output: cursor moves, SGR, text.

    It also notes where it was written since `forget()`: the cells, and how many
    times the cursor was moved to each row (each run of a line costs one move).
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", "")] * width for _ in range(height)]
        self.x = self.y = 0
        self.sgr = ""
        self.forget()

    def forget(self) -> None:
        self.written: set[tuple[int, int]] = set()  # (x, y)
        self.runs: dict[int, int] = {}  # row -> cursor moves to it

    def feed(self, data: str) -> None:
        for match in _SEQUENCE.finditer(data):
            chunk = match.group(0)
            if match.group(2) == "H":
                row, _, column = (match.group(1) or "1;1").partition(";")
                self.y, self.x = int(row or 1) - 1, int(column or 1) - 1
                self.runs[self.y] = self.runs.get(self.y, 0) + 1
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
                    self.written.add((self.x, self.y))
                self.x += 1

    def lines(self) -> list[str]:
        return ["".join(char for char, _ in row).rstrip() for row in self.cells]


def _console() -> Console:
    return Console(color_system="truecolor", force_terminal=True, width=200)


def _screen_bytes(app: App, console: Console) -> tuple[Terminal, int]:
    """The compositor's whole screen written out in full to a fresh terminal, and the
    bytes that took (a full repaint: what a partial update is measured against)."""
    strips = app.screen._compositor.render_strips()
    terminal = Terminal(app.size.width, app.size.height)
    size = 0
    for y, strip in enumerate(strips):
        data = Control.move_to(0, y).segment.text + strip.render(console)
        size += len(data.encode())
        terminal.feed(data)
    return terminal, size


class Spy:
    """Feeds every screen update the app makes (even headless) to a Terminal, as
    bench/tab_bytes.py counts them: the same escape sequences a terminal gets."""

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

    def forget(self) -> None:
        self.written = 0
        self.terminal.forget()

    def assert_in_step(self) -> None:
        expected, _ = _screen_bytes(self.app, self.console)
        stale = [(y, x, got, want) for y, (row, want_row) in
                 enumerate(zip(self.terminal.cells, expected.cells, strict=True))
                 for x, (got, want) in enumerate(zip(row, want_row, strict=True))
                 if got != want]
        assert not stale, ("terminal out of step with the compositor at (row, column): "
                           f"{[(y, x) for y, x, _, _ in stale[:12]]}\n"
                           + "\n".join(self.terminal.lines()))


def _tick(t: float, load: float, *, util: int | None = None) -> DeviceTelemetry:
    """A tick whose every figure moves with `load` (0..1); `util` alone overrides one."""
    return state("spark-01", t=t, gpus=(gb10(t, util_gpu=round(100 * load) if util is None
                                             else util,
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


def _inside(region: Region, cells: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {cell for cell in cells if region.contains(*cell)}


async def _until_quiet(pilot, spy: Spy, ignore: Region | None = None) -> None:
    """Wait until a tenth of a second passes with nothing written (outside `ignore`):
    on a loaded box the start's own repaints (focus, the session opening, layout)
    can land after the figures are already in place."""
    for _ in range(100):
        spy.forget()
        await pilot.pause(0.1)
        written = spy.terminal.written
        if not (written - _inside(ignore, written) if ignore else written):
            spy.forget()
            return
    raise AssertionError("the screen never went quiet")


@pytest.mark.parametrize("size", [(120, 40), (50, 40)], ids=["wide", "side-pane"])
async def test_the_telemetry_tab_never_leaves_the_terminal_stale(size: tuple[int, int]) -> None:
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


async def _settled(pilot, app: SparkApp, spy: Spy, telemetry: DeviceTelemetry,
                   done) -> None:
    """Send a tick and wait until it is on screen and every held-back redraw is done."""
    _send(app, telemetry)
    await wait_until(pilot, done)
    await pilot.pause(MIN_REDRAW_S + 0.2)
    await pilot.pause()
    spy.assert_in_step()


async def test_a_tick_that_moves_one_figure_writes_only_where_it_shows() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        spy = Spy(app)
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        _send(app, _tick(99.0, 0.5))
        await settle_cards(pilot, pane)
        gauge = pane.query_one("#gauge-util", Gauge)
        await _settled(pilot, app, spy, _tick(99.0, 0.5, util=40),
                       lambda: gauge.reading.text == "40%")

        # the device never connects: its status line says so with the figures' age, on
        # a timer of its own (minutes or hours here); the figures are what ticks change
        status = pane.query_one("#tel-status").region

        def figures_written() -> set[tuple[int, int]]:
            return spy.terminal.written - _inside(status, spy.terminal.written)

        # the same tick again: nothing looks different, nothing is written
        await _until_quiet(pilot, spy, status)
        _send(app, _tick(99.0, 0.5, util=40))
        await pilot.pause()
        await pilot.pause()
        assert figures_written() == set()

        # utilisation alone moves (same time stamp: the charts' window stays put)
        tiled = gauge.query_one(TiledLine)
        before = tiled.text
        await _until_quiet(pilot, spy, status)
        _send(app, _tick(99.0, 0.5, util=41))
        await wait_until(pilot, lambda: gauge.reading.text == "41%")
        await pilot.pause()
        spy.assert_in_step()
        written = figures_written()
        line = gauge.query_one(TiledLine).region
        chart = pane.query_one("#chart-util").region
        assert written, "the new figure never reached the terminal"
        # only the gauge's line and the utilisation chart (its title has the figure)
        assert written == _inside(line, written) | _inside(chart, written)
        on_line = _inside(line, written)
        # the figure's own tile, not the line from the label on (Textual writes a
        # change from the left edge of the widget it is in: the tile)
        label = Region(line.x, line.y, gauge.label_width, 1)
        assert not _inside(label, on_line)
        # the tiles written are those holding a changed cell (the digit; a bar block
        # when the bar moved), nothing between them
        changed = {x // TILE_CELLS for x, (a, b) in enumerate(
            zip(before.plain, tiled.text.plain, strict=True)) if a != b}
        assert changed and {(x - line.x) // TILE_CELLS for x, _ in on_line} <= changed
        assert len(on_line) <= TILE_CELLS * len(changed) < line.width


async def test_a_devices_tick_writes_only_near_the_changed_cells() -> None:
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        spy = Spy(app)
        pane = app.query_one(DevicesPane)
        table = pane.table
        _send(app, _tick(99.0, 0.5))
        await wait_until(pilot, lambda: "util" in table.columns
                         and table.get_cell("0", "util").plain == "50%")
        # focus repaints the whole table, and focus() takes a message hop: let it land
        await wait_until(pilot, lambda: table.has_focus, 10, "the table's focus")
        await pilot.pause()
        spy.assert_in_step()

        await _until_quiet(pilot, spy)
        _send(app, _tick(99.0, 0.5))  # nothing moved: nothing written
        await pilot.pause()
        await pilot.pause()
        assert spy.terminal.written == set()

        row_y = table.region.y + table.header_height  # row 0, below the header
        for attempt, load in enumerate((0.9, 0.2, 0.8, 0.3, 0.7)):
            await _until_quiet(pilot, spy)
            # every summary figure of the device moves: four cells of its row
            _send(app, _tick(100.0 + attempt, load))
            util = f"{round(100 * load)}%"
            await wait_until(pilot, lambda u=util: table.get_cell("0", "util").plain == u)
            await pilot.pause()
            spy.assert_in_step()
            if table.region.y not in {y for _, y in spy.terminal.written}:
                break
            # the header was written too: the whole table was repainted by something
            # else in this window (on a loaded box, a late focus or layout): again
        assert {y for _, y in spy.terminal.written} == {row_y}
        # Textual writes each run of a line from the left edge of the piece it falls in;
        # the CutGrid beneath the table cuts its lines at the column edges, so the
        # changed cells go alone: never the device's name and address before them
        assert table.cut_grid is not None
        figures_from = table.region.x + sum(
            table.columns[key].get_render_width(table) for key in ("name", "address"))
        assert min(x for x, _ in spy.terminal.written) >= figures_from
        _, whole = _screen_bytes(app, spy.console)
        assert spy.written * 10 < whole


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


def test_tiles_cut_at_cells_never_inside_a_wide_character() -> None:
    assert _cut_at_cells(Text("a" * 20), 8) == [8, 16]
    assert _cut_at_cells(Text("short"), 8) == []
    # 温 would straddle the first tile's edge: it starts the second, which then
    # holds 8 cells from there
    assert _cut_at_cells(Text("abcdefg温度xyzabcdefgh"), 8) == [7, 13]
