"""A one-line gauge: label, bar, value text. A tick changes its reactives, nothing more.

The reactives do not repaint the gauge themselves: their watchers repaint only the
cells that changed (a new reading often moves a bar by one block and a digit or two).
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from sparktui.ui.readings import Level, Reading
from sparktui.ui.widgets import ComponentStyles
from sparktui.ui.widgets.repaint import RepaintsChanges

BAR_FULL = "█"
BAR_EMPTY = "░"
#: the bar never grows past this: a 200-column terminal gets room, not a runway
MAX_BAR = 48


class Gauge(RepaintsChanges, ComponentStyles):
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

    def watch_heading(self, heading: str) -> None:
        self.set_class(bool(heading), "-heading")

    def watch_aside(self, old: str, new: str) -> None:
        if len(old) != len(new):
            self.refresh(layout=True)  # it may now need a line of its own
        else:
            self.repaint_changed()

    def watch_label(self) -> None:
        self.repaint_changed()

    def watch_label_width(self) -> None:
        self.repaint_changed()

    def watch_value_width(self) -> None:
        self.repaint_changed()

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
        self.repaint_changed()

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
