"""The GPU processes of one device as a sortable table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from sparktui.core.sanitize import safe_text
from sparktui.core.units import NO_VALUE, fmt_mib
from sparktui.services.telemetry import GpuProcess
from sparktui.ui.widgets.nav_table import NavTable


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort_key: Callable[[GpuProcess], object]
    descending: bool = False  # memory: biggest first


def _command(process: GpuProcess) -> str:
    return process.command or process.name or ""


COLUMNS: tuple[Column, ...] = (
    Column("pid", "PID", lambda p: p.pid),
    Column("user", "User", lambda p: p.user or ""),
    Column("gpu", "GPU", lambda p: -1 if p.gpu_index is None else p.gpu_index),
    Column("memory", "Memory", lambda p: -1.0 if p.used_memory_mib is None
           else p.used_memory_mib, descending=True),
    Column("command", "Process", lambda p: _command(p).lower()),
)
BY_KEY = {c.key: c for c in COLUMNS}
#: a 50-column side pane keeps what identifies a process and what it holds
COMPACT_KEYS = ("pid", "memory", "command")
WIDE_KEYS = tuple(c.key for c in COLUMNS)
SORT_MARK = " ▼"
SORT_MARK_REVERSED = " ▲"


def process_cells(process: GpuProcess, max_command: int,
                  serves: str | None = None) -> dict[str, Text]:
    """Cells as Text: a process name like `[red]x` stays literal, escapes are dropped.

    `serves` (from the Serving tab: container · port · model) follows the command."""
    command = _command(process) or NO_VALUE
    if serves:
        command = f"{serves} ← {command}"
    return {
        "pid": Text(str(process.pid), justify="right"),
        "user": safe_text(process.user or NO_VALUE, max_line=16),
        "gpu": Text(NO_VALUE if process.gpu_index is None else str(process.gpu_index),
                    justify="right"),
        "memory": Text(fmt_mib(process.used_memory_mib), justify="right"),
        "command": safe_text(command, max_line=max_command),
    }


class ProcessTable(NavTable):
    """Rows keyed by pid; `sort_by` a column key; the cursor stays on its process."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, zebra_stripes=False)
        self.sort_key = "memory"
        self.sort_reverse = False  # O: against the column's natural order
        self.compact = False
        self._processes: tuple[GpuProcess, ...] = ()
        self._columns_shown: tuple[str, ...] = ()
        self._serves: dict[int, str] = {}  # pid -> what it serves, when the Serving tab knows

    @property
    def keys_shown(self) -> tuple[str, ...]:
        return COMPACT_KEYS if self.compact else WIDE_KEYS

    @property
    def processes(self) -> tuple[GpuProcess, ...]:
        return self._processes

    @property
    def selected(self) -> GpuProcess | None:
        if not self.row_count:
            return None
        row = self.cursor_row
        if not 0 <= row < self.row_count:
            return None
        key = self.coordinate_to_cell_key((row, 0)).row_key.value
        return next((p for p in self._processes if str(p.pid) == key), None)

    def show(self, processes: Sequence[GpuProcess],
             serves: dict[int, str] | None = None) -> None:
        processes = tuple(processes)
        serves = serves or {}
        if processes == self._processes and self._columns_shown == self.keys_shown \
                and serves == self._serves:
            return
        self._serves = serves
        rows = [p.pid for p in self._sorted()]
        self._processes = processes
        if self._columns_shown == self.keys_shown and rows == [p.pid for p in self._sorted()]:
            self._update_cells()
        else:
            self._fill()

    def _update_cells(self) -> None:
        """The same processes in the same order (a memory figure moved): the changed
        cells are repainted, not the table."""
        max_command = 40 if self.compact else 120
        for process in self._processes:
            cells = process_cells(process, max_command, self._serves.get(process.pid))
            for key in self.keys_shown:
                self.set_cell(str(process.pid), key, cells[key])

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            self._fill()

    def sort_by(self, key: str) -> None:
        if key in BY_KEY and key != self.sort_key:
            self.sort_key = key
            self.sort_reverse = False
            self._fill()

    def flip_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._fill()

    def cycle_sort(self) -> str:
        keys = self.keys_shown
        current = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_by(keys[(current + 1) % len(keys)])
        return BY_KEY[self.sort_key].label

    def _sorted(self) -> list[GpuProcess]:
        column = BY_KEY[self.sort_key]
        return sorted(self._processes, key=column.sort_key,
                      reverse=column.descending != self.sort_reverse)

    def _fill(self) -> None:
        keys = self.keys_shown
        mark = SORT_MARK_REVERSED if self.sort_reverse else SORT_MARK
        with self.keeping_cursor():
            # columns are re-added so the sort mark gets its width: processes change seldom
            self.clear(columns=True)
            for key in keys:
                label = BY_KEY[key].label + (mark if key == self.sort_key else "")
                self.add_column(label, key=key)
            self._columns_shown = keys
            max_command = 40 if self.compact else 120
            for process in self._sorted():
                cells = process_cells(process, max_command, self._serves.get(process.pid))
                self.add_row(*(cells[k] for k in keys), key=str(process.pid))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
