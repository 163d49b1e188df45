"""A history chart drawn by plotext, one private plotext figure per chart.

plotext's module-level `plotext.figure` is one global canvas shared by every
caller; each Chart owns a figure of its own instead (plotext 6 makes one per
`terminal` object), builds it to colourless text only when its data, window or
size changed, and styles that text itself from the theme's component classes.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from plotext._kernel.terminal import terminal as _PlotextTerminal
from rich.text import Text

from sparktui.ui.widgets import ComponentStyles

Point = tuple[float, float | None]

# braille cells are the plotted line; everything else (frame, ticks) is axis text
_LINE_CHARS = re.compile(r"[\u2800-\u28ff]+")


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
    short spike still shows.
    """
    start = now - window_s
    inside = [(t, v) for t, v in points if start <= t <= now]
    if not inside:
        return []
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    if buckets > 0 and len(inside) > 2 * buckets:
        width = window_s / buckets
        peaks: list[float | None] = [None] * buckets
        seen = [False] * buckets
        for t, v in inside:
            slot = min(buckets - 1, int((t - start) / width))
            seen[slot] = True
            if v is not None and (peaks[slot] is None or v > peaks[slot]):  # type: ignore[operator]
                peaks[slot] = v
        first = next(i for i, s in enumerate(seen) if s)
        for i in range(first, buckets):
            value = peaks[i]
            if value is None:
                if current:
                    segments.append(current)
                    current = []
                continue
            current.append((start + (i + 0.5) * width - now, value))
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


class Chart(ComponentStyles):
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
        self._data: ChartData | None = None
        self._built_key: tuple[object, ...] | None = None
        self._text = Text()
        self._figure = _PlotextTerminal()._master  # this chart's own plotext figure

    # -- data in ------------------------------------------------------------------
    def plot(self, data: ChartData) -> None:
        """Show `data`; builds at once when visible, else when next laid out."""
        self._data = data
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
        self.refresh()

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
    def _draw(self, data: ChartData, width: int, height: int) -> Text:
        text = Text(no_wrap=True, overflow="crop", end="")
        text.append(self.title, self.component_style("chart--title"))
        text.append(" ")
        text.append(data.value_text, self.component_style("chart--value"))
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
        for match in _LINE_CHARS.finditer(body):
            text.stylize(line, match.start(), match.end())
        return text

    @property
    def data(self) -> ChartData | None:
        return self._data


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
