"""The host strip of the Telemetry pane: CPU, load, memory and the hottest zone.

Its figures move at every tick, so they are shown in tiles (`TiledLine`): a changed
load figure re-sends its own tile, not the line from "CPU" on; and each figure keeps
the width of its widest value, so one growing by a digit does not move the others. A problem or the
wait for the first sample is prose that may wrap, shown in a plain line instead.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from sparktui.core.units import NO_VALUE
from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui import readings
from sparktui.ui.widgets.repaint import LiveStatic, TiledLine

#: tiles of one line: 25 x 8 cells covers a 200-column terminal
HOST_TILES = 25
#: lines of figures at most: `readings.host_parts` gives one (two when compact), and
#: a line too wide for the strip wraps between its figures (80 columns: two lines)
HOST_LINES = 4
GAP = "  "


class HostStrip(Vertical):
    """Lines of `label value` pairs, or one line of prose when there are no figures."""

    DEFAULT_CSS = """
    HostStrip { height: auto; }
    HostStrip > .host-prose { height: auto; }
    HostStrip > .-unused { display: none; }
    """

    def compose(self) -> ComposeResult:
        for _ in range(HOST_LINES):
            yield TiledLine(HOST_TILES, classes="host-line -unused")
        yield LiveStatic(classes="host-prose -unused")

    _shown: tuple[DeviceTelemetry, bool, Style] | None = None
    #: the device whose figures set _widths, and each figure's widest value so far
    _widths_of: str | None = None
    _widths: dict[str, int] | None = None

    def on_resize(self) -> None:
        if self._shown is not None:
            state, compact, label_style = self._shown
            self.show_host(state, compact=compact, label_style=label_style)

    def _wrapped(self, lines: list[list[tuple[str, str]]], label_style: Style) -> list[Text]:
        """Each line of figures, wrapped between figures to the strip's width."""
        width = self.content_size.width or 10_000
        texts: list[Text] = []
        for line in lines:
            text = Text(end="")
            for label, value in line:
                value = self._steady(label, value)
                pair = len(label) + 1 + len(value)
                if text.cell_len and text.cell_len + len(GAP) + pair > width:
                    texts.append(text)
                    text = Text(end="")
                if text.cell_len:
                    text.append(GAP)
                text.append(f"{label} ", label_style)
                text.append(value)
            texts.append(text)
        return texts

    def _steady(self, label: str, value: str) -> str:
        """`value` right-aligned to the widest value its figure has had on this device:
        "CPU 9.6%" becoming "CPU 10.2%" would move every figure after it one cell, and
        each moved figure's tiles would be sent again."""
        widths = self._widths if self._widths is not None else {}
        self._widths = widths
        width = widths[label] = max(widths.get(label, 0), len(value))
        return value.rjust(width)

    def show_host(self, state: DeviceTelemetry, *, compact: bool, label_style: Style) -> None:
        if self._widths_of != state.device or (self._shown is not None
                                               and self._shown[1] != compact):
            self._widths_of, self._widths = state.device, None  # another device's figures
        self._shown = (state, compact, label_style)
        lines = readings.host_parts(state, compact=compact)
        prose = state.host is None  # the problem, or the wait: words that may wrap
        texts = self._wrapped(lines, label_style) if not prose else [
            Text(f"{label} {value}", end="") for label, value in lines[0]]
        tiled = list(self.query_children(TiledLine))
        for index, line_widget in enumerate(tiled):
            used = not prose and index < len(texts)
            line_widget.set_class(not used, "-unused")
            if used:
                line_widget.show(texts[index])
        note = self.query_one(".host-prose", LiveStatic)
        note.set_class(not prose, "-unused")
        if prose:
            note.show(texts[0] if texts else Text(NO_VALUE))

    @property
    def text(self) -> str:
        """What the strip says, line by line (for tests and the log)."""
        shown = [line.text.plain for line in self.query_children(TiledLine)
                 if not line.has_class("-unused")]
        note = self.query_one(".host-prose", LiveStatic)
        if not note.has_class("-unused"):
            shown.append(str(note.render()))
        return "\n".join(shown)
