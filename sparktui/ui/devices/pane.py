"""The Devices pane: every device of the session, its connection, and live GPU figures.

Besides the state of each link, a row carries a summary of the device's
telemetry (GPUs, utilisation, memory, temperature, power); with two devices or
more a fleet total row closes the table. Telemetry ticks for a hidden tab only
mark the pane stale.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable

from sparktui.core.device import LinkState, LinkStatus
from sparktui.services.link import DeviceLink
from sparktui.services.session import Session
from sparktui.services.telemetry import DeviceTelemetry
from sparktui.ui import readings
from sparktui.ui.devices.first_run import FirstRunGuide
from sparktui.ui.keys import key_hint
from sparktui.ui.messages import FleetChanged, LinkStatusChanged
from sparktui.ui.widgets.nav_table import NavTable
from sparktui.ui.widgets.pane_common import SessionPane, state_styles
from sparktui.ui.widgets.repaint import CutGrid, LiveStatic

#: which theme variable colours each state (text-* variants are made readable
#: against the theme's background, so light themes stay legible)
STATE_COLOUR_VARIABLE: dict[LinkState, str | None] = {
    LinkState.CONNECTED: "text-success",
    LinkState.CONNECTING: "text-warning",
    LinkState.RECONNECTING: "text-warning",
    LinkState.FAILED: "text-error",
    LinkState.CLOSED: None,
}

COLUMNS = (("name", "Device"), ("address", "Address"), ("gpus", "GPUs"), ("util", "Util"),
           ("memory", "Memory"), ("temp", "Temp"), ("power", "Power"), ("state", "State"))
#: a 50-column side pane has no room for the address: the detail line shows it
COMPACT_COLUMNS = (("name", "Device"), ("util", "Util"), ("memory", "Mem"), ("state", "State"))
SUMMARY_KEYS = ("gpus", "util", "memory", "temp", "power")
#: narrower than this the Address column goes (80x24 is the size designed for first)
ADDRESS_FROM_COLUMNS = 100
TOTAL_ROW = "total"
#: the total row sums every device's tick: redrawn at most this often, not at each
#: device's tick (4 devices ticking at 1 Hz repainted it 4 times a second, 0.75 KB/s
#: of the 1.3 KB/s the tab wrote to the terminal)
TOTAL_ROW_EVERY_S = 1.0


def _counting_down(status: LinkStatus) -> bool:
    return status.state is LinkState.RECONNECTING and status.next_retry_at is not None


#: the State of a link the session leaves closed, by where its figures come from
UNOPENED_LINK = {
    "on_select": "from Prometheus · SSH when selected",
    "never": "replay · no connection",
}


class DevicesPane(SessionPane):
    """A table of the fleet's links, kept live from their status callbacks."""

    HELP_SCOPE = "Devices tab"

    BINDINGS = [
        Binding("r", "retry", "Retry now", id="devices.retry"),
        # device management (sparktui.ui.devices.actions); enter opens details too
        Binding("i", "details", "Details", id="devices.details"),
        # priority: the form opens the moment `a` is read, so the letters typed (or pasted)
        # right behind it wait for its first field instead of reaching this table
        Binding("a", "add", "Add", id="devices.add", priority=True),
        Binding("e", "edit", "Edit device", show=False, id="devices.edit",
                tooltip="Edit the selected device"),
        Binding("x", "remove", "Remove device", show=False, id="devices.remove",
                tooltip="Remove the selected device from the config (asks first)"),
        Binding("f", "find", "Find devices", show=False, id="devices.find"),
        Binding("I", "import_hosts", "Import hosts", show=False, id="devices.import",
                tooltip="Add a host of ~/.ssh/config or NVIDIA Sync"),
        Binding("D", "demo", "Demo", show=False, id="devices.demo",
                tooltip="Open the simulated GB10 Spark in this session"),
        Binding("C", "connect_all", "Connect all", show=False, id="devices.connect_all"),
    ]

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.hub = session.telemetry
        self._states: dict[str, DeviceTelemetry] = {}
        self._stale = False
        self._links: list[DeviceLink] = []  # in row order; the row key is the index
        self._unsubscribes: list[Callable[[], None]] = []
        self._state_styles: dict[LinkState, Style] = {}
        self._countdown: Timer | None = None
        self._total_due: Timer | None = None  # the total row's next redraw, when pending
        self._session_opened = False  # the app has opened the session (FleetChanged)
        #: the state column's room, and what it was computed from: measuring it reads
        #: every row, so doing that at each status change made a 64-device storm
        #: quadratic (event-loop stalls of 0.5 s); now once per change of what it reads
        self._room: tuple[object, int | None] | None = None
        self._summaries_changed = 0
        #: the widest each figure of the total row has been since the table was built
        self._total_widths: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        # a tick repaints the cells that changed, not the table
        table = NavTable(id="devices-table")
        # beneath the table, cut at its columns: a changed cell is written alone
        table.cut_grid = CutGrid()
        yield table.cut_grid
        yield FirstRunGuide(id="first-run")
        yield table
        yield LiveStatic(id="device-detail")

    def on_mount(self) -> None:
        self._state_styles = self._resolve_state_styles()
        self._rebuild_table()
        self._adopt_new_links()
        self.watch(self.app, "theme", self._on_theme_changed, init=False)

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
        self._stop_countdown()

    # -- links -----------------------------------------------------------------
    def on_fleet_changed(self, message: FleetChanged) -> None:
        self._session_opened = True
        self._adopt_new_links()

    def _adopt_new_links(self) -> None:
        for link in self.fleet.links:
            if any(link is known for known in self._links):
                continue
            self._links.append(link)
            self._unsubscribes.append(link.subscribe(self._status_listener(link)))
            self._add_row(len(self._links) - 1, link)
        # with --demo the demo's link comes a moment after mount: no guide meanwhile
        self._show_first_run(not self._links and (
            self._session_opened or not self.session.demo_requested))
        # new rows put the cursor on row 0: keep it on the app's focused device instead
        self.watch_focused_device(self.focused_device)
        self._update_detail()
        self._update_countdown()

    def _show_first_run(self, empty: bool) -> None:
        """No device: the ways to add one instead of an empty table."""
        self.query_one(FirstRunGuide).display = empty
        self.table.display = not empty
        self.query_one("#device-detail", LiveStatic).display = not empty

    def _status_listener(self, link: DeviceLink) -> Callable[[LinkStatus], None]:
        # called by the link on the event loop: only queue a message, draw later
        def listener(status: LinkStatus) -> None:
            self.post_message(LinkStatusChanged(link, status))

        return listener

    def on_link_status_changed(self, message: LinkStatusChanged) -> None:
        index = self._index_of(message.link)
        if index is None:
            return
        self._update_state_cell(index)
        self._update_summary(message.link.name)  # figures dim (or light up) with the link
        if TOTAL_ROW in self.table.rows:
            self.table.set_cell(TOTAL_ROW, "state", Text(self._fleet_state(), style="dim"))
        if self._selected_index() == index:
            self._update_detail()
        self._update_countdown()

    def _index_of(self, link: DeviceLink) -> int | None:
        return next((i for i, known in enumerate(self._links) if known is link), None)

    # -- the table ---------------------------------------------------------------
    @property
    def table(self) -> NavTable:
        return self.query_one("#devices-table", NavTable)

    def _columns(self) -> tuple[tuple[str, str], ...]:
        columns = COMPACT_COLUMNS if self.compact else COLUMNS
        if 0 < self.size.width < ADDRESS_FROM_COLUMNS:
            # 80 columns keep State and Power; the detail line below has the address
            columns = tuple(c for c in columns if c[0] != "address")
        if not self._states:
            # no device has reported telemetry yet: columns of dashes would only
            # take the room the state (and its reason) needs
            columns = tuple(c for c in columns if c[0] not in SUMMARY_KEYS)
        return columns

    def _rebuild_table(self) -> None:
        table = self.table
        self._total_widths.clear()  # the columns are measured afresh
        cursor = table.cursor_row
        table.clear(columns=True)
        for key, label in self._columns():
            table.add_column(label, key=key)
        for index, link in enumerate(self._links):
            self._add_row(index, link)
        if self._links:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        table.call_after_refresh(table.align_cuts)

    def _cells(self, link: DeviceLink) -> dict[str, Text]:
        # Text(), never a str: a device name like "[bold]x" must not be read as markup
        return {
            "name": self._plain_cell(link, "name"),
            "address": self._plain_cell(link, "address"),
            **self._summary_cells(self._states.get(link.name), stale=self._stale_link(link)),
            "state": self._state_cell(link.status),
        }

    @staticmethod
    def _stale_link(link: DeviceLink) -> bool:
        """Its figures are old: the device is not connected (they are dimmed, not live)."""
        return link.status.state is not LinkState.CONNECTED

    def _summary_cells(self, state: DeviceTelemetry | None,
                       summary: readings.Summary | None = None, *,
                       stale: bool = False) -> dict[str, Text]:
        summary = summary or readings.summarise(state)
        compact = self.compact
        cells = readings.summary_cells(summary, compact=compact)
        # a dropped device's last figures are dimmed and struck: never shown as live
        style = Style(dim=True, strike=True) if stale and state is not None else Style()
        return {key: Text(cells[key], style=style,
                          justify="left" if key == "memory" else "right")
                for key in SUMMARY_KEYS}

    def _total_cells(self) -> dict[str, Text]:
        total = readings.fleet_total(readings.summarise(self._states.get(link.name))
                                     for link in self._links)
        cells = {key: self._steady_total(key, cell)
                 for key, cell in self._summary_cells(None, total).items()}
        # only the name is bold: a bold cell is written as three runs (padding, text,
        # padding), each with its styles, and the figures change every second
        return {"name": Text(f"fleet ({len(self._links)})", style="bold"),
                "address": Text(""), **cells,
                "state": Text(self._fleet_state(), style="dim")}

    def _steady_total(self, key: str, cell: Text) -> Text:
        """The fleet's figure, as wide as it has been since the table was built.

        A fleet's power summed near 1000 W went from 4 to 3 digits and back every few
        seconds; a column narrowing or widening repaints the whole table (at 64 devices
        that was half of the table's rendering). Padded as its column justifies it, the
        cell looks the same and the column keeps its width.
        """
        width = max(self._total_widths.get(key, 0), cell.cell_len)
        self._total_widths[key] = width
        if width > cell.cell_len:
            if cell.justify == "right":
                cell.pad_left(width - cell.cell_len)
            else:
                cell.pad_right(width - cell.cell_len)
        return cell

    def _fleet_state(self) -> str:
        connected = sum(link.status.state is LinkState.CONNECTED for link in self._links)
        return f"{connected} of {len(self._links)} connected"

    def _add_row(self, index: int, link: DeviceLink) -> None:
        cells = self._cells(link)
        table = self.table
        total_shown = TOTAL_ROW in table.rows
        if total_shown:
            table.remove_row(TOTAL_ROW)
        table.add_row(*self._in_table_order(cells), key=str(index))
        self._update_total_row()
        table.call_after_refresh(table.align_cuts)  # the new row may have widened a column

    def _in_table_order(self, cells: dict[str, Text]) -> list[Text]:
        # the table's own columns: they were chosen for the width it was built at, and a
        # row added since (a device found, telemetry arriving) must match them, not now's
        return [cells[str(column.value)] for column in self.table.columns]

    def _update_total_row(self) -> None:
        """The fleet total row, last, with two devices or more."""
        table = self.table
        wanted = len(self._links) >= 2 and bool(self._states)
        if not wanted:
            if TOTAL_ROW in table.rows:
                table.remove_row(TOTAL_ROW)
            return
        cells = self._total_cells()
        if TOTAL_ROW not in table.rows:
            table.add_row(*self._in_table_order(cells), key=TOTAL_ROW)
            return
        for key in self.table.columns:
            self._set_cell(TOTAL_ROW, str(key.value), cells[str(key.value)])

    # -- telemetry ------------------------------------------------------------------
    def show_telemetry(self, telemetry: DeviceTelemetry) -> None:
        """Called by the app for every device tick; a hidden tab only marks itself stale."""
        first = not self._states
        previous = self._states.get(telemetry.device)
        self._states[telemetry.device] = telemetry
        if previous is not None and readings.summarise(previous) == \
                readings.summarise(telemetry):
            return
        self._summaries_changed += 1
        if not self._shown():
            self._stale = True
        elif first:
            self._rebuild_table()  # the summary columns appear
        else:
            self._update_summary(telemetry.device)

    def _shown(self) -> bool:
        node: Widget | None = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent if isinstance(node.parent, Widget) else None
        return self.is_mounted

    def on_show(self) -> None:
        if self._stale:
            self._stale = False
            self._rebuild_table()

    def _update_summary(self, device: str) -> None:
        index = next((i for i, link in enumerate(self._links) if link.name == device), None)
        if index is None:
            return
        cells = self._summary_cells(self._states.get(device),
                                    stale=self._stale_link(self._links[index]))
        for key in SUMMARY_KEYS:
            if key in self.table.columns:  # as built: a hidden tab rebuilds when shown
                self._set_cell(str(index), key, cells[key])
        if self._total_due is None:
            self._total_due = self.set_timer(TOTAL_ROW_EVERY_S, self._redraw_total_row)

    def _redraw_total_row(self) -> None:
        self._total_due = None
        self._update_total_row()

    def _set_cell(self, row: str, key: str, cell: Text) -> None:
        self.table.set_cell(row, key, cell)  # only if it looks different; that cell alone

    def _update_state_cell(self, index: int) -> None:
        self._set_cell(str(index), "state", self._state_cell(self._links[index].status))

    def _state_text(self, status: LinkStatus) -> Text:
        unopened = UNOPENED_LINK.get(self.session.link_policy)
        if status.state is LinkState.CLOSED and unopened is not None:
            # never opened on purpose: its figures come from elsewhere, nothing is wrong
            return Text(unopened, style="dim")
        return Text(status.describe(), style=self._state_styles.get(status.state, Style()))

    def _state_cell(self, status: LinkStatus) -> Text:
        """The state, cut to the room left in the table: the detail line has it in full."""
        text = self._state_text(status)
        room = self._state_column_room()
        if room is not None and text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        return text

    def _state_column_room(self) -> int | None:
        width = self.size.width
        if width == 0:  # not laid out yet: on_resize rebuilds the rows
            return None
        reads = (width, self._columns(), len(self._links), self._summaries_changed)
        if self._room is None or self._room[0] != reads:
            self._room = (reads, self._measure_state_room(width))
        return self._room[1]

    def _measure_state_room(self, width: int) -> int:
        padding = 2 * self.table.cell_padding
        others = 0
        # from the data, not the table: while rows are (re)added it only knows some of them
        rows = [self._other_cells(link) for link in self._links]
        if len(self._links) >= 2 and self._states:
            rows.append(self._total_cells())
        for key, label in self._columns():
            if key == "state":
                continue
            cells = [Text(label), *(row[key] for row in rows)]
            others += max(cell.cell_len for cell in cells) + padding
        # the state column's own padding, and a vertical scrollbar should one appear
        return max(12, width - others - padding - 2)

    def _other_cells(self, link: DeviceLink) -> dict[str, Text]:
        return {"name": self._plain_cell(link, "name"),
                "address": self._plain_cell(link, "address"),
                **self._summary_cells(self._states.get(link.name))}

    @staticmethod
    def _plain_cell(link: DeviceLink, key: str) -> Text:
        return Text(link.name if key == "name" else link.spec.destination)

    def on_resize(self) -> None:
        self._rebuild_table()

    def _resolve_state_styles(self) -> dict[LinkState, Style]:
        return state_styles(self, STATE_COLOUR_VARIABLE)

    def _on_theme_changed(self) -> None:
        self._state_styles = self._resolve_state_styles()
        for index in range(len(self._links)):
            self._update_state_cell(index)
        self._update_detail()

    def watch_compact(self) -> None:
        if self.is_mounted:
            self._rebuild_table()

    # -- selection and detail ------------------------------------------------------
    def _selected_index(self) -> int | None:
        if not self._links:
            return None
        row = self.table.cursor_row
        return row if 0 <= row < len(self._links) else None

    @property
    def selected_link(self) -> DeviceLink | None:
        index = self._selected_index()
        return None if index is None else self._links[index]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_detail()
        link = self.selected_link
        # a highlight queued before the cursor moved again is stale: following it
        # would undo a focus change made meanwhile (a restored session, ctrl+n)
        if link is not None and event.cursor_row == self.table.cursor_row:
            self.focus_device(link.name)  # the cursor here is the app's focus

    def watch_focused_device(self, name: str | None) -> None:
        if not self._links:
            return
        index = next((i for i, link in enumerate(self._links) if link.name == name), None)
        if index is not None and index != self.table.cursor_row:
            self.table.move_cursor(row=index)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if self.selected_link is not None:
            self.action_details()

    def _update_detail(self) -> None:
        detail = self.query_one("#device-detail", LiveStatic)
        link = self.selected_link
        if link is None and self._links:
            detail.show(Text(f"All {len(self._links)} devices: GPUs summed, utilisation "
                             "averaged, power summed, temperature the hottest GPU."))
            return
        if link is None:
            detail.show(Text(
                "No devices yet. Start sparktui with a device (sparktui local, "
                "sparktui user@host) or --demo, or add [[devices]] to the config file."))
            return
        status = link.status
        text = Text()
        text.append(link.name, style="bold")
        text.append(f" · {link.spec.destination}\n")
        text.append_text(self._state_text(status))
        state = self._states.get(link.name)
        if state is not None and self._stale_link(link):
            text.append(f" · figures stale: last sample {readings.age_text(state)} ago",
                        style="dim")
        if status.state in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.CLOSED):
            text.append(f"\npress {key_hint(self, 'devices.retry', 'r')} to try again now")
        detail.show(text)

    # -- the reconnect countdown -----------------------------------------------------
    def _update_countdown(self) -> None:
        """Tick once a second only while some device is waiting to retry."""
        waiting = any(_counting_down(link.status) for link in self._links)
        if waiting and self._countdown is None:
            self._countdown = self.set_interval(1.0, self._tick_countdown)
        elif not waiting:
            self._stop_countdown()

    def _stop_countdown(self) -> None:
        if self._countdown is not None:
            self._countdown.stop()
            self._countdown = None

    def _tick_countdown(self) -> None:
        for index, link in enumerate(self._links):
            if _counting_down(link.status):
                self._update_state_cell(index)
        selected = self.selected_link
        if selected is not None and _counting_down(selected.status):
            self._update_detail()

    @property
    def countdown_running(self) -> bool:
        return self._countdown is not None

    # -- actions -----------------------------------------------------------------------
    def action_retry(self) -> None:
        link = self.selected_link
        if link is None:
            self.notify("No device selected.", severity="warning")
            return
        if link.status.state is LinkState.CONNECTED:
            self.notify(f"{link.name} is connected; nothing to retry.", markup=False)
            return
        link.retry()
        self.notify(f"Trying {link.name} again now.", markup=False)

    # device management: the screens and their work live in this folder (actions.py and its screens)
    def _selected_name(self) -> str | None:
        link = self.selected_link
        return None if link is None else link.name

    def action_details(self) -> None:
        from sparktui.ui.devices.actions import show_details

        show_details(self.app, self.session, self._selected_name())

    def action_add(self) -> None:
        from sparktui.ui.devices.actions import add_device

        add_device(self.app, self.session)

    def action_edit(self) -> None:
        from sparktui.ui.devices.actions import edit_device

        edit_device(self.app, self.session, self._selected_name())

    def action_remove(self) -> None:
        from sparktui.ui.devices.actions import remove_device

        remove_device(self.app, self.session, self._selected_name())

    def action_find(self) -> None:
        from sparktui.ui.devices.actions import discover_devices

        discover_devices(self.app, self.session)

    def action_import_hosts(self) -> None:
        from sparktui.ui.devices.actions import discover_devices

        discover_devices(self.app, self.session, mdns=False)

    def action_demo(self) -> None:
        from sparktui.ui.devices.first_run import start_demo_device

        self.run_worker(start_demo_device(self.app, self.session), name="demo", group="demo",
                        exclusive=True, exit_on_error=False)

    def action_connect_all(self) -> None:
        from sparktui.ui.devices.actions import connect_all_devices

        connect_all_devices(self.app, self.session)
