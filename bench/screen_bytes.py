"""Counting what the app writes to the terminal: per screen row and per widget.

Both bench/tab_bytes.py and bench/repaint_bytes.py wrap the headless app's display
hook with a `ByteCounter`: every screen update is rendered with a truecolor Console
into the escape sequences Textual would write, and counted. Each cursor move starts
a piece Textual writes in one go (a widget's line, or the cut piece of one, from its
left edge to the last changed cell); the piece is charged to its screen row and to
the widget under its first cell (`Screen.get_widget_at`), so a report says which
widgets refresh every tick and what each costs.
"""

from __future__ import annotations

import collections
import re

from rich.console import Console

_MOVE = re.compile(r"\x1b\[(\d+);(\d+)H")
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def widget_name(widget) -> str:
    """`Class#id.class` of a widget, or its nearest ancestor with an id."""
    name = type(widget).__name__
    node = widget
    while node is not None and not node.id:
        node = node.parent
    where = f"#{node.id}" if node is not None and node is not widget else ""
    own = f"#{widget.id}" if widget.id else ""
    classes = ".".join(sorted(c for c in widget.classes if not c.startswith("-")))
    return f"{name}{own}{'.' + classes if classes else ''}{' in ' + where if where else ''}"


class ByteCounter:
    """Counts the bytes of the screen updates it is shown, while `counting`."""

    def __init__(self) -> None:
        self.console = Console(color_system="truecolor", force_terminal=True, width=400)
        self.counting = True
        self.written = 0
        self.per_row: collections.Counter[int] = collections.Counter()
        self.per_widget: collections.Counter[str] = collections.Counter()
        self.last_text: dict[int, str] = {}

    def reset(self) -> None:
        self.written = 0
        self.per_row.clear()
        self.per_widget.clear()

    def wrap(self, app) -> None:
        """Count every update the app displays from now on (the headless driver's hook)."""
        display = app._display

        def count(screen, renderable) -> None:
            if self.counting and hasattr(renderable, "render_segments"):
                self.add(screen, renderable.render_segments(self.console))
            display(screen, renderable)

        app._display = count

    def add(self, screen, data: str) -> None:
        self.written += len(data.encode())
        moves = list(_MOVE.finditer(data))
        for index, move in enumerate(moves):
            end = moves[index + 1].start() if index + 1 < len(moves) else len(data)
            piece = data[move.start():end]
            row, column = int(move.group(1)), int(move.group(2))
            size = len(piece.encode())
            self.per_row[row] += size
            body = _SGR.sub("", piece[len(move.group(0)):]).strip()
            self.last_text[row] = body[:60]
            try:  # the escape sequence counts from 1, the screen from 0
                widget, _ = screen.get_widget_at(column - 1, row - 1)
            except Exception:
                self.per_widget["?"] += size
                continue
            self.per_widget[widget_name(widget)] += size

    def report(self, wall: float, rows: int) -> dict[str, object]:
        """Bytes a second, and the costliest rows and widgets (top `rows` of each)."""
        return {
            "bytes_per_s": round(self.written / wall),
            "top_rows": [{"row": row, "bytes_per_s": round(b / wall),
                          "last_text": self.last_text.get(row, "")}
                         for row, b in self.per_row.most_common(rows)],
            "top_widgets": [{"widget": name, "bytes_per_s": round(b / wall)}
                            for name, b in self.per_widget.most_common(rows)],
        }


def print_report(tab: str, report: dict[str, object]) -> None:
    print(f"{tab:<11} {report['bytes_per_s']:7d} B/s", flush=True)
    for entry in report["top_rows"]:  # type: ignore[union-attr]
        print(f"    row {entry['row']:>2}: {entry['bytes_per_s']:5d} B/s  "
              f"{entry['last_text']!r}", flush=True)
    for entry in report["top_widgets"]:  # type: ignore[union-attr]
        print(f"    {entry['bytes_per_s']:5d} B/s  {entry['widget']}", flush=True)
