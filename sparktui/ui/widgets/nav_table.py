"""The one table grammar every list in sparktui follows (docs/keys.md).

`NavTable` is a LiveTable that moves like less, htop and k9s do: j/k and the
arrows, g/G and Home/End for the first and last row, PgUp/PgDn; n/N move
between the rows that match the pane's filter, and the matched text is
highlighted. Its cursor is tied to an item, not a row number: a sort, a
filter or a refresh that reorders the rows leaves it on the same item, so
the next destructive key cannot hit a neighbour.

`SortOrder` is the sort half of the grammar: `o` cycles the column, `O`
reverses it; the header of the sorted column carries the arrow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from sparktui.ui.widgets.repaint import LiveTable

#: how a filter's match is shown in the cells (reverse video reads in every theme)
MATCH_STYLE = Style(reverse=True, bold=True)


def highlight_match(text: Text, query: str) -> Text:
    """A copy of `text` with every case-insensitive occurrence of `query` highlighted."""
    if not query:
        return text
    marked = text.copy()
    marked.highlight_words([query], MATCH_STYLE, case_sensitive=False)
    return marked


def cells_match(cells: Sequence[Text], query: str) -> bool:
    """Whether any cell shows `query` (case-insensitive)."""
    wanted = query.casefold()
    return bool(wanted) and any(wanted in cell.plain.casefold() for cell in cells)


@dataclass
class SortOrder:
    """Which column a table is sorted by, and which way: `o` cycles, `O` reverses."""

    column: str
    reverse: bool = False

    def cycle(self, columns: Sequence[str]) -> str:
        """Sort by the column after the current one (wrapping); returns it."""
        index = columns.index(self.column) if self.column in columns else -1
        self.column = columns[(index + 1) % len(columns)] if columns else self.column
        self.reverse = False
        return self.column

    def flip(self) -> bool:
        self.reverse = not self.reverse
        return self.reverse

    def click(self, column: str) -> None:
        """A click on a header: sort by it, or reverse it when it is the sorted one."""
        if column == self.column:
            self.reverse = not self.reverse
        else:
            self.column, self.reverse = column, False

    def header(self, key: str, label: str) -> Text:
        if key != self.column:
            return Text(label)
        return Text(f"{label} {'▼' if self.reverse else '▲'}", style="bold")


class NavTable(LiveTable):
    """A row table with the grammar of docs/keys.md and a cursor that stays on its item."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down",
                tooltip="Next row"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up",
                tooltip="Previous row"),
        Binding("g,home", "scroll_top", "First", show=False, id="table.first",
                tooltip="First row"),
        Binding("G,end", "scroll_bottom", "Last", show=False, id="table.last",
                tooltip="Last row"),
        Binding("n", "next_match", "Next match", show=False, id="table.next_match",
                tooltip="The next row that matches the filter"),
        Binding("N", "previous_match", "Previous match", show=False,
                id="table.previous_match", tooltip="The previous row that matches the filter"),
    ]

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(**kwargs)
        #: the filter the owner applies; n/N move between rows showing it
        self.match_query = ""

    # -- the item under the cursor -------------------------------------------------------
    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None on an empty table)."""
        if not self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return None if row_key.value is None else str(row_key.value)

    def move_to_key(self, key: str | None) -> bool:
        """Put the cursor on the row with `key`; False (cursor unmoved) if there is none."""
        if key is None:
            return False
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return False
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False)
        return True

    @contextmanager
    def keeping_cursor(self) -> Iterator[None]:
        """Rebuild the rows inside this block: the cursor ends on the item it was on.

        When that item is gone (filtered out, removed), the cursor keeps its row number,
        clamped to the table, as less and htop do.
        """
        key, row = self.cursor_key, self.cursor_row
        yield
        if not self.move_to_key(key) and self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1), animate=False)

    # -- n / N ---------------------------------------------------------------------------
    def _matching_rows(self) -> list[int]:
        query = self.match_query
        return [index for index in range(self.row_count)
                if cells_match([cell for cell in self.get_row_at(index)
                                if isinstance(cell, Text)], query)]

    def _jump(self, step: int) -> None:
        if not self.match_query:
            self.notify("No filter: / filters, then n and N move between the matches.",
                        timeout=3)
            return
        rows = self._matching_rows()
        if not rows:
            self.notify(f"No row shows {self.match_query!r}.", timeout=3, markup=False)
            return
        here = self.cursor_row
        ahead = [r for r in rows if (r - here) * step > 0]
        target = (min(ahead, key=lambda r: abs(r - here)) if ahead
                  else (rows[0] if step > 0 else rows[-1]))  # wrap around, as less does
        self.move_cursor(row=target, animate=False)

    def action_next_match(self) -> None:
        self._jump(1)

    def action_previous_match(self) -> None:
        self._jump(-1)
