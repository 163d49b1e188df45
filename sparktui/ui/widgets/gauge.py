"""A one-line gauge: label, bar, value text. A tick changes its reactives, nothing more."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from sparktui.ui.readings import Level, Reading
from sparktui.ui.widgets import ComponentStyles

BAR_FULL = "█"
BAR_EMPTY = "░"
#: the bar never grows past this: a 200-column terminal gets room, not a runway
MAX_BAR = 48


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
    Gauge { height: auto; width: 1fr; }
    """

    label: reactive[str] = reactive("")
    heading: reactive[str] = reactive("", layout=True)
    aside: reactive[str] = reactive("")  # beside the heading, or under it when narrow
    reading: reactive[Reading] = reactive(Reading(""))
    label_width: reactive[int] = reactive(9)
    #: room kept for the value text, so the bars of a column of gauges line up
    value_width: reactive[int] = reactive(0)

    def __init__(self, label: str, *, heading: str = "", id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(Gauge.label, label)
        self.set_reactive(Gauge.heading, heading)
        self.set_class(bool(heading), "-heading")

    def watch_heading(self, heading: str) -> None:
        self.set_class(bool(heading), "-heading")

    def watch_aside(self, old: str, new: str) -> None:
        if len(old) != len(new):
            self.refresh(layout=True)  # it may now need a line of its own

    def _aside_below(self, width: int) -> bool:
        """The aside goes under the heading when both do not fit on one line."""
        return bool(self.aside) and len(self.heading) + 2 + len(self.aside) > width

    def get_content_height(self, container, viewport, width: int) -> int:
        if not self.heading:
            return 1
        return 3 if self._aside_below(width) else 2

    def watch_reading(self, reading: Reading) -> None:
        # the tooltip says why a value is missing, or what the bar measures against
        self.tooltip = reading.reason

    def render(self) -> Text:
        reading = self.reading
        width = self.content_size.width
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if self.heading:
            text.append(self.heading[:width], self.component_style("gauge--heading"))
            if self.aside:
                text.append("\n" if self._aside_below(width) else "  ")
                text.append(self.aside[:width], self.component_style("gauge--aside"))
            text.append("\n")
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
