"""A history chart drawn by plotext, one private plotext figure per chart.

plotext's module-level `plotext.figure` is one global canvas shared by every
caller; each Chart owns a figure of its own instead (plotext 6 makes one per
`terminal` object), builds it to colourless text only when its data, window or
size changed (a tick's data at most every MIN_REDRAW_S), styles that text itself
from the theme's component classes, and repaints only the cells that changed.
The title's figure is not held back with the line: it follows every tick, in
step with the gauges above the chart.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.timer import Timer
from textual.widget import Widget

from sparktui.ui.widgets import ComponentStyles
from sparktui.ui.widgets.repaint import RepaintsChanges

Point = tuple[float, float | None]

# braille cells are the plotted line; everything else (frame, ticks) is axis text
_LINE_CHARS = re.compile(r"[\u2800-\u28ff]+")
# a row's plot area: right of the y axis, braille and the blanks between them
_PLOT_AREA = re.compile(r"(?<=[┤│])[\u2800-\u28ff ]+")

#: newer figures are drawn at most this often (a new window, device or pause: at once).
#: A 1 min window scrolls a pixel column about every second, and each scroll re-sends
#: every row the line crosses (a braille glyph is 3 bytes): the four charts of a busy
#: GPU were 1.3-1.7 KB/s at a redraw every 2 s, more than the 1 KB/s a whole tab may
#: write. Every 4 s halves that; the line then ends at most 4 s before the figure in
#: its title, and the gauges above the charts, which show each tick's figure.
MIN_REDRAW_S = 4.0


@dataclass(frozen=True)
class ChartData:
    """What to draw: points (t, value) in the window ending at `now`, and the y range."""

    points: tuple[Point, ...]
    now: float
    window_s: float
    y_range: tuple[float, float]
    value_text: str  # the latest value, shown beside the title
    empty_text: str = "no data yet"


def window_label(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _tick_label(seconds: float) -> str:
    if seconds == 0:
        return "now"
    if seconds % 3600 == 0:
        return f"-{seconds / 3600:.0f}h"
    if seconds % 60 == 0 and seconds >= 120:
        return f"-{seconds / 60:.0f}m"
    return f"-{seconds:.0f}s"


def _number_label(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def downsample(points: Sequence[Point], now: float, window_s: float,
               buckets: int) -> list[list[tuple[float, float]]]:
    """Segments of (x, y) with x relative to now; a gap (None, missing samples) splits them.

    More points than twice the buckets are reduced to the maximum of each
    bucket, so a 1 h window costs no more to draw than a 1 min one, and a
    short spike still shows. The buckets sit on a fixed grid of time (multiples
    of their width) and "now" is the end of the newest one: between two bucket
    boundaries only the newest bucket can change, so a 10 min or 1 h chart is
    not redrawn, and re-sent to the terminal, whole every second.
    """
    inside = [(t, v) for t, v in points if now - window_s <= t <= now]
    if not inside:
        return []
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    if buckets > 0 and len(inside) > 2 * buckets:
        width = window_s / buckets
        end = (math.floor(now / width) + 1) * width
        start = end - window_s
        peaks: list[float | None] = [None] * buckets
        seen = [False] * buckets
        for t, v in inside:
            if t < start:
                continue  # left of the grid's first bucket: off the chart
            slot = min(buckets - 1, int((t - start) / width))
            seen[slot] = True
            if v is not None and (peaks[slot] is None or v > peaks[slot]):  # type: ignore[operator]
                peaks[slot] = v
        first = next((i for i, s in enumerate(seen) if s), buckets)
        for i in range(first, buckets):
            value = peaks[i]
            if value is None:
                if current:
                    segments.append(current)
                    current = []
                continue
            current.append(((i + 0.5) * width - window_s, value))
    else:
        steps = [b[0] - a[0] for a, b in itertools.pairwise(inside) if b[0] > a[0]]
        typical = sorted(steps)[len(steps) // 2] if steps else 0.0
        last_t: float | None = None
        for t, v in inside:
            broke = last_t is not None and typical > 0 and t - last_t > 3 * typical
            if v is None or broke:
                if current:
                    segments.append(current)
                    current = []
            if v is not None:
                current.append((t - now, v))
            last_t = t
    if current:
        segments.append(current)
    return segments


class Chart(RepaintsChanges, ComponentStyles):
    """A titled line chart of one series; rebuilt only when what it shows changed."""

    COMPONENT_CLASSES = {"chart--title", "chart--value", "chart--line", "chart--axis",
                         "chart--empty"}
    DEFAULT_CSS = """
    Chart { height: 8; width: 1fr; }
    """

    def __init__(self, title: str, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        #: how many times plotext built this chart (tests and the bench read it)
        self.render_count = 0
        self._data: ChartData | None = None  # what is drawn
        self._pending: ChartData | None = None  # newer, waiting for MIN_REDRAW_S
        self._drawn_at = -math.inf  # time.monotonic() of the last draw
        self._flush: Timer | None = None
        self._built_key: tuple[object, ...] | None = None
        self._text = Text()
        self._head = Text()  # the title line of _text
        self._figure_object: object | None = None  # this chart's own plotext figure

    # -- data in ------------------------------------------------------------------
    def plot(self, data: ChartData, *, at_once: bool = False) -> None:
        """Show `data`: at once if asked, or if the window changed or nothing is drawn yet;
        else at most every MIN_REDRAW_S, the newest figures given by then."""
        self._pending = data
        shown = self._data
        wait = self._drawn_at + MIN_REDRAW_S - time.monotonic()
        if at_once or wait <= 0 or shown is None or not shown.points \
                or shown.window_s != data.window_s:
            self._draw_pending()
            return
        if self._flush is None:
            self._flush = self.set_timer(wait, self._flush_pending)
        # only the line waits: the figure in the title moves with the gauges
        self._show_head(data)

    def _show_head(self, data: ChartData) -> None:
        if self._built_key is None:
            return  # nothing drawn yet (hidden, or not laid out): the next build has it
        head = self._head_text(data)
        if head.plain == self._head.plain:
            return
        body = self._text[len(self._head):]
        self._head = head
        self._text = head + body
        self.repaint_changed()

    def _flush_pending(self) -> None:
        self._flush = None
        if _displayed(self):  # a hidden tab's chart is drawn when shown again (at once)
            self._draw_pending()

    def _draw_pending(self) -> None:
        if self._flush is not None:
            self._flush.stop()
            self._flush = None
        data, self._pending = self._pending, None
        if data is not None:
            self._data = data
            self._drawn_at = time.monotonic()
            self._rebuild()

    def _key(self, data: ChartData, width: int, height: int) -> tuple[object, ...]:
        last = data.points[-1] if data.points else None
        return (last, len(data.points), data.now, data.window_s, data.y_range,
                data.value_text, width, height)

    def _rebuild(self) -> None:
        data = self._data
        width, height = self.content_size
        if data is None or width < 8 or height < 2 or not self.display:
            return  # hidden or not laid out: on_resize draws it
        key = self._key(data, width, height)
        if key == self._built_key:
            return
        self._built_key = key
        self._text = self._draw(data, width, height)
        self.repaint_changed()

    def on_resize(self) -> None:
        self._rebuild()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self._built_key is not None:
            self._built_key = None  # new colours: draw again, even while paused
            self.call_later(self._rebuild)

    def render(self) -> Text:
        return self._text

    # -- drawing ------------------------------------------------------------------
    def _head_text(self, data: ChartData) -> Text:
        text = Text(no_wrap=True, overflow="crop", end="")
        text.append(self.title, self.component_style("chart--title"))
        text.append(" ")
        text.append(data.value_text, self.component_style("chart--value"))
        return text

    def _draw(self, data: ChartData, width: int, height: int) -> Text:
        text = self._head_text(data)
        self._head = text.copy()
        plot_height = height - 1
        segments = downsample(data.points, data.now, data.window_s, buckets=2 * width)
        if not segments:
            text.append("\n")
            text.append(data.empty_text, self.component_style("chart--empty"))
            return text
        self.render_count += 1
        body = self._plotext(segments, data, width, plot_height)
        text.append("\n")
        text.append_text(self._style_body(body))
        return text

    @property
    def _figure(self):
        if self._figure_object is None:
            # imported at the first draw, not at start: plotext loads its docs on import
            # (about 75 ms), and the first tab shown is not the one with charts
            from plotext._kernel.terminal import terminal as plotext_terminal

            self._figure_object = plotext_terminal()._master
        return self._figure_object

    def _plotext(self, segments: list[list[tuple[float, float]]], data: ChartData,
                 width: int, height: int) -> str:
        fig = self._figure
        fig.clear()
        fig.plot_size(width, height)
        fig.theme("colorless")
        fig.axes(False, axis=0, side=1)  # no frame line above and to the right:
        fig.axes(False, axis=1, side=1)  # more room for the line in a small chart
        lo, hi = data.y_range
        if not hi > lo:
            hi = lo + 1
        window = data.window_s
        fig.ruler("x").lim(-window, 0)
        fig.ruler("x").ticks([-window, -window / 2, 0],
                             [_tick_label(window), _tick_label(window / 2), "now"])
        count = 2 if height < 5 else 3 if height < 10 else 5
        ticks = [lo + (hi - lo) * i / (count - 1) for i in range(count)]
        fig.ruler("y").lim(lo, hi)
        fig.ruler("y").ticks(ticks, [_number_label(t) for t in ticks])
        for segment in segments:
            xs = [x for x, _ in segment]
            ys = [min(hi, max(lo, y)) for _, y in segment]
            signal = fig.signal(xs, ys, marker="braille")
            signal.lines()
            fig.draw(signal)
        return fig.build().string(colorless=True).rstrip("\n")

    def _style_body(self, body: str) -> Text:
        text = Text(body, style=self.component_style("chart--axis"), no_wrap=True, overflow="crop",
                    end="")
        line = self.component_style("chart--line")
        # the blanks of the plot area take the line's style too when it cannot show on a
        # blank (a colour, no background or decoration): every change of style costs a
        # terminal some 25 bytes of escape codes, and a scrolling line has a gap in
        # almost every row; one style for the whole area keeps a redraw to the glyphs
        area = _PLOT_AREA if _invisible_on_blanks(line) else _LINE_CHARS
        for match in area.finditer(body):
            text.stylize(line, match.start(), match.end())
        return text

    @property
    def figure_offset(self) -> int:
        """Cells before the figure on the title line."""
        return cell_len(self.title) + 1

    @property
    def data(self) -> ChartData | None:
        return self._data


def _invisible_on_blanks(style: Style) -> bool:
    """A style that looks the same as any other on a blank cell: no background, no lines."""
    return style.bgcolor is None and not any(
        (style.reverse, style.underline, style.underline2, style.overline, style.strike,
         style.frame, style.encircle, style.blink, style.blink2))


def _displayed(widget: Widget) -> bool:
    """Mounted, and neither it nor a container of it (a tab) hidden."""
    node: Widget | None = widget
    while isinstance(node, Widget):
        if not node.display:
            return False
        node = node.parent if isinstance(node.parent, Widget) else None
    return widget.is_mounted


def sparkline(values: Sequence[float | None], width: int, lo: float, hi: float,
              blocks: str = " ▁▂▃▄▅▆▇█") -> str:
    """The last `width` values as block characters; a gap is a space."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    span = hi - lo if hi > lo else 1.0
    top = len(blocks) - 1
    out = []
    for v in tail:
        if v is None or not math.isfinite(v):
            out.append(" ")
            continue
        level = round((min(hi, max(lo, v)) - lo) / span * top)
        out.append(blocks[max(1, level)] if v > lo else blocks[1])
    return "".join(out).rjust(width)


Formatter = Callable[[float | None], str]
