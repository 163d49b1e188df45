"""Write only the dirty cells of a line, not the line from the widget's left edge.

Textual's partial screen update (`ChopsUpdate.render_segments`) crops a dirty span
at its right end but writes it from the left edge of the widget it falls in (its
own "TODO: crop to x extents"). The widgets in `sparktui.ui.widgets.repaint` mark
just the cells that changed - a gauge's digits, a moved bar block - so without the
left crop a one-digit change still re-sends the label, the bar and every escape
sequence before it.

`install()` replaces that one method with a copy that crops both ends. Everything
else is Textual's: the spans, the chops, the cursor moves. Dirty regions Textual
makes itself start at a widget's edge, where the two versions write the same
bytes. If Textual's ChopsUpdate ever stops looking as expected, nothing is
replaced, and a failure inside the copy falls back to the original for that frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rich.console import Console
from rich.control import Control

log = logging.getLogger(__name__)

try:  # a private module of Textual: tolerate it moving
    from textual._compositor import ChopsUpdate
except ImportError:  # pragma: no cover - another Textual layout
    ChopsUpdate = None  # type: ignore[assignment,misc]

_original: Callable[..., str] | None = None


def _render_segments(self, console: Console) -> str:
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            if x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start = max(x, x1)
            strip = strip.crop(start - x, min(end, x2) - x)
            if strip.cell_length:
                append(move_to(start, y).segment.text)
                append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def _guarded(self, console: Console) -> str:
    try:
        return _render_segments(self, console)
    except Exception:  # never lose a frame to this: Textual's own writes it
        log.exception("partial line update failed; using Textual's")
        assert _original is not None
        return _original(self, console)


def install() -> bool:
    """Crop partial updates at both ends; True if installed (it is idempotent)."""
    global _original
    if ChopsUpdate is None or not all(
            hasattr(ChopsUpdate, name) for name in ("render_segments", "__init__")):
        return False
    if ChopsUpdate.render_segments is _guarded:
        return True
    try:
        probe = ChopsUpdate([{0: None}], [(0, 0, 1)], [[1]])
        if not all(hasattr(probe, name) for name in ("chops", "spans", "chop_ends")):
            return False
    except Exception:  # another signature: leave Textual as it is
        return False
    _original = ChopsUpdate.render_segments
    ChopsUpdate.render_segments = _guarded  # type: ignore[method-assign]
    return True
