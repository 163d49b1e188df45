"""A one-line gauge: label, bar, value text. A tick changes its reactives, nothing more.

The reactives do not repaint the gauge themselves: their watchers hand the new line
to a TiledLine, which repaints only the tiles that changed (a new reading often moves
a bar by one block and a digit or two: one or two tiles of 8 cells, not the line from
the label on, which is what Textual writes for a change inside one widget).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive

from sparktui.ui.readings import Level, Reading
from sparktui.ui.widgets import ComponentStyles
from sparktui.ui.widgets.repaint import LiveStatic, TiledLine

BAR_FULL = "█"
BAR_EMPTY = "░"
#: the bar never grows past this: a 200-column terminal gets room, not a runway
MAX_BAR = 48
#: tiles of a gauge's line: the .gauges column is at most 110 cells wide
LINE_TILES = 14


class Gauge(ComponentStyles):
    """`Label  ██████░░░░░░  62%`; a missing value shows the dash, with the reason as tooltip.

    With a `heading` the gauge takes two lines: the heading (and its `aside`
    text) above the bar, for labels too long to share a line with it.
    """

    COMPONENT_CLASSES = {
        "gauge--label", "gauge--heading", "gauge--aside", "gauge--bar", "gauge--empty",
        "gauge--value", "gauge--warning", "gauge--error", "gauge--note", "gauge--missing",
    }
    DEFAULT_CSS = """
    Gauge { height: auto; width: 1fr; layout: vertical; }
    Gauge > .gauge-heading { height: auto; display: none; }
    Gauge.-heading > .gauge-heading { display: block; }
    """

    label: reactive[str] = reactive("", repaint=False)
    heading: reactive[str] = reactive("", layout=True)
    #: beside the heading, or under it when narrow
    aside: reactive[str] = reactive("", repaint=False)
    reading: reactive[Reading] = reactive(Reading(""), repaint=False)
    label_width: reactive[int] = reactive(9, repaint=False)
    #: room kept for the value text, so the bars of a column of gauges line up
    value_width: reactive[int] = reactive(0, repaint=False)

    def __init__(self, label: str, *, heading: str = "", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(Gauge.label, label)
        self.set_reactive(Gauge.heading, heading)
        self.set_class(bool(heading), "-heading")

    def compose(self) -> ComposeResult:
        # the heading changes rarely; the line below it at every tick (kept, not queried
        # at each tick: a tick sets several reactives, each of which redraws)
        self._heading_view = LiveStatic(classes="gauge-heading")
        self._line_view = TiledLine(LINE_TILES, classes="gauge-line")
        yield self._heading_view
        yield self._line_view

    def on_mount(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def notify_style_update(self) -> None:
        super().notify_style_update()  # new colours: the texts are styled again
        if self.is_mounted:
            self.call_later(self._redraw)

    def watch_heading(self, heading: str) -> None:
        self.set_class(bool(heading), "-heading")
        self._redraw()

    def watch_aside(self) -> None:
        self._redraw()

    def watch_label(self) -> None:
        self._redraw()

    def watch_label_width(self) -> None:
        self._redraw()

    def watch_value_width(self) -> None:
        self._redraw()

    def watch_reading(self, reading: Reading) -> None:
        # the tooltip says why a value is missing, or what the bar measures against
        self.tooltip = reading.reason
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted or self.content_size.width == 0:
            return  # on_mount and on_resize draw it
        if self.heading:
            self._heading_view.show(self.heading_text())
        self._line_view.show(self.line_text())

    def _aside_below(self, width: int) -> bool:
        """The aside goes under the heading when both do not fit on one line."""
        return bool(self.aside) and len(self.heading) + 2 + len(self.aside) > width

    def heading_text(self) -> Text:
        """The heading, and its aside beside it or below it."""
        width = self.content_size.width
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(self.heading[:width], self.component_style("gauge--heading"))
        if self.aside:
            text.append("\n" if self._aside_below(width) else "  ")
            text.append(self.aside[:width], self.component_style("gauge--aside"))
        return text

    def line_text(self) -> Text:
        """`Label  ██████░░░░░░  62%`, as wide as the gauge."""
        reading = self.reading
        width = self.content_size.width
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        label = self.label[: self.label_width].ljust(self.label_width)
        text.append(label, self.component_style("gauge--label"))
        value = reading.text
        value_style = self.component_style("gauge--value")
        if reading.missing:
            value_style = self.component_style("gauge--missing")
        elif reading.level is Level.ERROR:
            value_style = self.component_style("gauge--error")
        elif reading.level is Level.WARNING:
            value_style = self.component_style("gauge--warning")
        room = max(0, width - len(label) - max(len(value), self.value_width) - 2)
        bar_width = min(MAX_BAR, room)
        text.append(" ")
        if reading.fraction is not None and bar_width > 0:
            filled = round(reading.fraction * bar_width)
            bar_style = self.component_style("gauge--bar")
            if reading.level is Level.ERROR:
                bar_style = self.component_style("gauge--error")
            elif reading.level is Level.WARNING:
                bar_style = self.component_style("gauge--warning")
            text.append(BAR_FULL * filled, bar_style)
            text.append(BAR_EMPTY * (bar_width - filled), self.component_style("gauge--empty"))
        else:
            note = reading.note if not reading.missing else ""
            text.append(note[:bar_width].ljust(bar_width), self.component_style("gauge--note"))
        text.append(" ")
        text.append(value, value_style)
        return text

    def show(self, reading: Reading) -> None:
        """Set the reading; an equal one does not even repaint."""
        if reading != self.reading:
            self.reading = reading
