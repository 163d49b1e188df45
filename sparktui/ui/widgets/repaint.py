"""Repaint only what changed, and keep what changes in small widgets of its own.

Textual re-sends every line of the region it is told to refresh: it does not
diff against what the terminal already shows. A gauge going from 74% to 75%
would re-send its whole line, a chart all its rows, a table its whole height
for one cell. At 1 Hz that is kilobytes a second for a few changed characters.

So the widgets here render their content as Textual would, compare it with
what they last painted, and mark only the changed cells dirty: what is written
to the terminal follows what changed on screen, not how often data arrives.

Textual writes a dirty span from the left edge of the widget it falls in (its
compositor cuts lines at widget edges only), so a changed digit at the end of a
gauge still re-sends the label and the bar before it. `TiledLine` is the
structural answer, with public Textual only: a line of figures shown as a row of
narrow tiles, each its own widget, so a change re-sends at most one tile's cells.
`CutGrid` does the same for a widget that cannot be cut into tiles (a DataTable):
blank columns on a layer beneath it, whose edges cut its lines just as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.coordinate import Coordinate
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.visual import Visual, VisualType, visualize
from textual.widget import Widget
from textual.widgets import DataTable, Static

Cell = tuple[str, Style | None]


def _cells(strip: Strip) -> list[Cell]:
    cells: list[Cell] = []
    for text, style, _ in strip:
        if len(text) == cell_len(text):
            cells.extend((char, style) for char in text)
            continue
        for char in text:  # wide characters take two cells: keep positions exact
            cells.append((char, style))
            cells.extend(("", style) for _ in range(cell_len(char) - 1))
    return cells


#: unchanged cells between two changes on a line, below which both go as one span:
#: a span of its own costs a cursor move and the style's escape codes, about this much
JOIN_GAP = 8


def changed_spans(old: Strip, new: Strip, join_gap: int = JOIN_GAP) -> list[tuple[int, int]]:
    """The runs of cells [start, end) where two painted lines differ (none if they look
    the same); runs closer than `join_gap` cells are merged."""
    if old == new:
        return []
    a, b = _cells(old), _cells(new)
    shortest = min(len(a), len(b))
    spans: list[tuple[int, int]] = []
    x = 0
    while x < shortest:
        if a[x] == b[x]:
            x += 1
            continue
        start = x
        while x < shortest and a[x] != b[x]:
            x += 1
        if spans and start - spans[-1][1] < join_gap:
            start = spans.pop()[0]
        spans.append((start, x))
    if len(a) != len(b):  # one line is longer: its tail is new
        start = shortest
        if spans and start - spans[-1][1] < join_gap:
            start = spans.pop()[0]
        spans.append((start, max(len(a), len(b))))
    return spans


def same_look(a: Text, b: Text) -> bool:
    """Equal text, spans, style and justification (rich's Text == ignores the last two)."""
    return (a.plain == b.plain and a.spans == b.spans and a.style == b.style
            and a.justify == b.justify)


class RepaintsChanges(Widget):
    """A mixin: `repaint_changed()` in place of `refresh()` repaints the changed cells only.

    The widget's content must be what `render()` returns; size changes, layout
    and style updates still repaint in full (Textual does that itself).
    """

    _painted: list[Strip] | None = None  # what the last repaint_changed saw
    _painted_size: Size | None = None
    _painted_text: Text | None = None  # the render() behind _painted, when a Text
    _quiet = False  # swallowing the full refresh of a content swap (LiveStatic.show)

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False):
        if self._quiet and not regions and not layout and not recompose:
            return self
        if not regions and repaint:
            # painted in full from render(): the next change is measured from scratch
            self._painted = None
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def notify_style_update(self) -> None:
        self._painted = None  # new colours: borders and padding may have changed too
        super().notify_style_update()

    def repaint_changed(self) -> None:
        """The content changed: repaint only the cells that now look different."""
        size = self.size
        if not self.is_mounted or size.area == 0:
            self._painted = None  # nothing painted to compare with
            super().refresh()
            return
        renderable = self.render()
        before = self._painted_text
        if self._painted is not None and size == self._painted_size \
                and isinstance(renderable, Text) and before is not None \
                and same_look(renderable, before):
            return  # e.g. a reading that moved less than a bar block and a digit
        self._painted_text = renderable if isinstance(renderable, Text) else None
        # drawn as Widget._render_content draws it, so cells and styles match the screen
        strips = Visual.to_strips(self, visualize(self, renderable), size.width, size.height,
                                  self.visual_style)
        old, self._painted = self._painted, strips
        if old is None or self._painted_size != size or len(old) != len(strips):
            self._painted_size = size
            super().refresh()  # in full (past our override: the new baseline stays)
            return
        regions = []
        for y, (before, after) in enumerate(zip(old, strips, strict=True)):
            for start, end in changed_spans(before, after):
                end = min(end, size.width)
                if end > start:
                    regions.append(Region(start, y, end - start, 1))
        if regions:
            super().refresh(*regions)
        else:
            super().refresh(repaint=False)  # drops the cached visual; nothing to send


class LiveStatic(RepaintsChanges, Static):
    """A Static for figures that change every tick: `show()` repaints the changed cells."""

    def show(self, content: VisualType) -> None:
        """Show `content`; the same content again costs nothing."""
        if isinstance(content, Text) and isinstance(self.content, Text) \
                and same_look(content, self.content):
            return
        height = self.size.height
        with self._quietly():
            self.update(content, layout=False)
        self.clear_cached_dimensions()
        wanted = self.get_content_height(self.size, self.app.size, self.size.width) \
            if self.is_mounted else None
        if wanted is not None and self.styles.height is not None \
                and self.styles.height.is_auto and wanted != height:
            self.refresh(layout=True)  # one line more or fewer: the layout moves
            return
        self.repaint_changed()

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False


class LiveTable(DataTable[Text]):
    """A DataTable whose `set_cell` repaints that one cell when its column keeps its width.

    `update_cell` repaints the whole table, empty rows included, for one changed cell.
    The cells a tick changes on one row are repainted together, as one run from the
    first to the last: Textual writes every separate dirty run of a line from the
    table's left edge, so four changed cells of a row were its start written four times.
    """

    _quiet = False
    #: the CutGrid beneath the table, cut at its columns' edges (set by the pane that
    #: puts it there)
    cut_grid: CutGrid | None = None
    #: row key -> the columns changed since the last repaint (flushed after this turn)
    _changed: dict[str, set[int]] | None = None
    #: the columns' widths when last checked (_check_widths)
    _widths: list[int] | None = None
    _widths_due = False  # a cell may have moved its column's width since

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False):
        if self._quiet and not regions and not layout and not recompose:
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def set_cell(self, row_key: str, column_key: str, value: Text) -> bool:
        """Put `value` in a cell if it looks different; True if it did."""
        old = self.get_cell(row_key, column_key)
        if isinstance(old, Text) and same_look(old, value):
            return False
        width_kept = self._width_kept(column_key, old, value)
        self._quiet = True
        try:
            # a cell that may move its column's width has the table measure it when idle;
            # only a width that really moved repaints the whole table (_check_widths).
            # Repainting it at every such cell was half the Devices table's rendering at
            # 64 devices: the fleet total and the widest device figures change width often
            # without changing their column's
            self.update_cell(row_key, column_key, value, update_width=not width_kept)
        finally:
            self._quiet = False
        if not width_kept:
            self._widths_due = True  # checked when DataTable has measured (on_idle)
        if self._changed is None:
            self._changed = {}
            self.call_later(self._repaint_changed_rows)
        self._changed.setdefault(row_key, set()).add(self.get_column_index(column_key))
        return True

    def _repaint_changed_rows(self) -> None:
        """Each changed row's run of cells, first changed column to last, as one region."""
        changed, self._changed = self._changed or {}, None
        for row_key, columns in changed.items():
            if row_key not in self.rows:
                continue  # removed meanwhile (its removal repainted the table)
            row = self.get_row_index(row_key)
            # each changed cell alone: over a CutGrid a run is written from the cut before
            # it, so the unchanged cells between two changes cost nothing; without one,
            # every run of a line is written from the table's left edge: one run then
            for column in (columns if self.cut_grid is not None
                           else range(min(columns), max(columns) + 1)):
                self.refresh_coordinate(Coordinate(row, column))
        self.align_cuts()

    def on_idle(self) -> None:
        # DataTable measures changed cells in its own idle handler, which runs after this
        # one (the subclass comes first): check the widths once that is done
        if self._widths_due:
            self._widths_due = False
            self.call_later(self._check_widths)

    def _check_widths(self) -> None:
        """After the table measured its columns: repaint it all if any moved."""
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        if widths != self._widths:
            self._widths = widths
            self.refresh()  # every cell right of the moved edge moved
        self.align_cuts()

    def align_cuts(self) -> None:
        """Cut the lines beneath at the columns' edges, as wide as they are now."""
        grid = self.cut_grid
        if grid is None or not self.is_mounted or not grid.is_mounted:
            return
        start = self.region.x - grid.region.x - int(self.scroll_x)
        edges = [start]
        for column in self.ordered_columns:
            edges.append(edges[-1] + column.get_render_width(self))
        grid.cut_at(edges)

    def _width_kept(self, column_key: str, old: object, new: Text) -> bool:
        """The column stays as wide: the new cell fits, and the old one did not set the width."""
        if not isinstance(old, Text) or "\n" in old.plain or "\n" in new.plain:
            return False
        column = self.columns.get(column_key)  # type: ignore[call-overload]
        if column is None:
            return False
        before, after = old.cell_len, new.cell_len
        return before == after or (after <= column.content_width
                                   and before < column.content_width)


#: cells per tile of a TiledLine: a change re-sends at most this many cells and one
#: cursor move and style (~40 bytes) more than the changed cells themselves; narrower
#: tiles mean more widgets to lay out for a few bytes less
TILE_CELLS = 8


def _cut_at_cells(text: Text, width: int) -> list[int]:
    """Character offsets that cut `text` into pieces of `width` cells (a wide character
    is never split: it starts the next piece, and the short piece ends in a blank)."""
    offsets: list[int] = []
    cells = 0
    boundary = width
    for index, char in enumerate(text.plain):
        size = cell_len(char)
        if cells + size > boundary:
            offsets.append(index)
            boundary = cells + width
        cells += size
    return offsets


class TiledLine(Widget):
    """One line of text shown as a row of `TILE_CELLS`-wide tiles, each a widget.

    `show(text)` hands each tile its piece; a tile whose piece looks the same is not
    refreshed. The last tile takes the rest of the width. The text is one line, cut
    (never wrapped) at the widget's width.
    """

    DEFAULT_CSS = f"""
    TiledLine {{ layout: horizontal; height: 1; width: 1fr; }}
    TiledLine > .tile {{ width: {TILE_CELLS}; height: 1; }}
    TiledLine > .tile.-last {{ width: 1fr; }}
    """

    def __init__(self, tiles: int, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._count = max(1, tiles)
        self._text: Text | None = None

    def compose(self) -> ComposeResult:
        for index in range(self._count):
            last = index == self._count - 1
            yield LiveStatic(classes="tile -last" if last else "tile")

    @property
    def text(self) -> Text:
        """What was last shown (an empty Text before the first show)."""
        return self._text if self._text is not None else Text()

    def show(self, text: Text) -> None:
        """Show `text`; only the tiles whose piece changed are repainted."""
        if self._text is not None and same_look(text, self._text):
            return
        self._text = text
        if not self.is_mounted:
            return  # on_mount shows it
        self._show_pieces()

    def on_mount(self) -> None:
        if self._text is not None:
            self.call_after_refresh(self._show_pieces)

    def _show_pieces(self) -> None:
        text = self._text
        tiles = list(self.query_children(LiveStatic))
        if text is None or not tiles:
            return
        line = text.copy()
        line.end = ""
        pieces = list(line.divide(_cut_at_cells(line, TILE_CELLS)))
        if len(pieces) > len(tiles):  # past the last tile: it takes the rest
            rest = Text("", end="")
            for piece in pieces[len(tiles) - 1:]:
                rest.append_text(piece)
            pieces = [*pieces[: len(tiles) - 1], rest]
        for index, tile in enumerate(tiles):
            piece = pieces[index] if index < len(pieces) else Text("", end="")
            piece.no_wrap, piece.overflow, piece.end = True, "crop", ""
            tile.show(piece)


class Cut(Widget):
    """One blank column of a CutGrid. A bare Widget would print its CSS name
    ("Widget.cut") wherever nothing covers it, such as the gaps between charts."""

    def render(self) -> str:
        return ""


class CutGrid(Widget):
    """Blank columns on the `cuts` layer beneath a table, their edges at its columns'.

    Textual's compositor cuts every screen line at the edges of every widget on it,
    whatever its layer, and writes a changed span from the start of the cut piece it
    falls in. A DataTable's changed cell was written from the table's left edge (a
    device row's name, address and every cell before the figure, each cell with its
    colour codes); over a CutGrid whose edges are the table's column edges it is
    written alone, from its own column's edge. Nothing of the grid shows: its cells
    are blank and it has no background of its own, so where the widgets above leave
    a gap (the margins between charts) the parent's background shows. The parent must list the
    layer first: `layers: cuts default;`. `LiveTable.align_cuts` keeps the edges.
    """

    DEFAULT_CSS = """
    CutGrid { layer: cuts; layout: horizontal; width: 100%; height: 100%; }
    CutGrid > .cut { width: 1; height: 100%; }
    CutGrid > .cut.-unused { display: none; }
    """

    #: cuts at most: columns of a table (those past it are not cut)
    COLUMNS = 24

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._edges: list[int] = []

    def compose(self) -> ComposeResult:
        for _ in range(self.COLUMNS):
            yield Cut(classes="cut -unused")

    def cut_at(self, edges: list[int]) -> None:
        """Cut the lines at these x offsets (from the grid's left edge, ascending)."""
        edges = [x for x in edges if x > 0][: self.COLUMNS]
        if edges == self._edges:
            return  # the usual case, every tick: nothing moved
        self._edges = edges
        previous = 0
        for index, cut in enumerate(self.query_children(".cut")):
            used = index < len(edges)
            if used:
                cut.styles.width = edges[index] - previous
                previous = edges[index]
            cut.set_class(not used, "-unused")
