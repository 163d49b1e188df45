"""The Devices pane: every device of the session and the state of its connection."""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color, ColorParseError
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Static

from sparktui.core.device import LinkState, LinkStatus
from sparktui.services.devices import Fleet
from sparktui.services.link import DeviceLink
from sparktui.ui.keys import key_hint
from sparktui.ui.messages import FleetChanged, LinkStatusChanged

#: which theme variable colours each state (text-* variants are made readable
#: against the theme's background, so light themes stay legible)
STATE_COLOUR_VARIABLE: dict[LinkState, str | None] = {
    LinkState.CONNECTED: "text-success",
    LinkState.CONNECTING: "text-warning",
    LinkState.RECONNECTING: "text-warning",
    LinkState.FAILED: "text-error",
    LinkState.CLOSED: None,
}

COLUMNS = (("name", "Device"), ("address", "Address"), ("state", "State"))
#: a 50-column side pane has no room for the address: the detail line shows it
COMPACT_COLUMNS = (("name", "Device"), ("state", "State"))


def _counting_down(status: LinkStatus) -> bool:
    return status.state is LinkState.RECONNECTING and status.next_retry_at is not None


class DevicesPane(Widget):
    """A table of the fleet's links, kept live from their status callbacks."""

    HELP_SCOPE = "Devices tab"

    BINDINGS = [
        Binding("r", "retry", "Retry now", id="devices.retry"),
    ]

    def __init__(self, fleet: Fleet, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fleet = fleet
        self._links: list[DeviceLink] = []  # in row order; the row key is the index
        self._unsubscribes: list[Callable[[], None]] = []
        self._state_styles: dict[LinkState, Style] = {}
        self._countdown: Timer | None = None

    def compose(self) -> ComposeResult:
        table: DataTable[Text] = DataTable(id="devices-table", cursor_type="row")
        yield table
        yield Static(id="device-detail")

    def on_mount(self) -> None:
        self._state_styles = self._resolve_state_styles()
        self._rebuild_table()
        self._adopt_new_links()
        self.watch(self.app, "theme", self._on_theme_changed, init=False)
        if hasattr(self.app, "compact"):
            self.watch(self.app, "compact", self._on_compact_changed, init=False)

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
        self._stop_countdown()

    # -- links -----------------------------------------------------------------
    def on_fleet_changed(self, message: FleetChanged) -> None:
        self._adopt_new_links()

    def _adopt_new_links(self) -> None:
        for link in self.fleet.links:
            if any(link is known for known in self._links):
                continue
            self._links.append(link)
            self._unsubscribes.append(link.subscribe(self._status_listener(link)))
            self._add_row(len(self._links) - 1, link)
        self._update_detail()
        self._update_countdown()

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
        if self._selected_index() == index:
            self._update_detail()
        self._update_countdown()

    def _index_of(self, link: DeviceLink) -> int | None:
        return next((i for i, known in enumerate(self._links) if known is link), None)

    # -- the table ---------------------------------------------------------------
    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#devices-table", DataTable)

    def _columns(self) -> tuple[tuple[str, str], ...]:
        return COMPACT_COLUMNS if getattr(self.app, "compact", False) else COLUMNS

    def _rebuild_table(self) -> None:
        table = self.table
        cursor = table.cursor_row
        table.clear(columns=True)
        for key, label in self._columns():
            table.add_column(label, key=key)
        for index, link in enumerate(self._links):
            self._add_row(index, link)
        if self._links:
            table.move_cursor(row=min(cursor, len(self._links) - 1))

    def _cells(self, link: DeviceLink) -> dict[str, Text]:
        # Text(), never a str: a device name like "[bold]x" must not be read as markup
        return {
            "name": self._plain_cell(link, "name"),
            "address": self._plain_cell(link, "address"),
            "state": self._state_cell(link.status),
        }

    def _add_row(self, index: int, link: DeviceLink) -> None:
        cells = self._cells(link)
        self.table.add_row(*(cells[key] for key, _ in self._columns()), key=str(index))

    def _update_state_cell(self, index: int) -> None:
        self.table.update_cell(str(index), "state", self._state_cell(self._links[index].status),
                               update_width=True)

    def _state_text(self, status: LinkStatus) -> Text:
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
        padding = 2 * self.table.cell_padding
        others = 0
        # from the data, not the table: while rows are (re)added it only knows some of them
        for key, label in self._columns():
            if key == "state":
                continue
            cells = [Text(label), *(self._plain_cell(link, key) for link in self._links)]
            others += max(cell.cell_len for cell in cells) + padding
        # the state column's own padding, and a vertical scrollbar should one appear
        return max(12, width - others - padding - 2)

    @staticmethod
    def _plain_cell(link: DeviceLink, key: str) -> Text:
        return Text(link.name if key == "name" else link.spec.destination)

    def on_resize(self) -> None:
        self._rebuild_table()

    def _resolve_state_styles(self) -> dict[LinkState, Style]:
        variables = self.app.get_css_variables()
        styles: dict[LinkState, Style] = {}
        for state, variable in STATE_COLOUR_VARIABLE.items():
            if variable is None:
                styles[state] = Style(dim=True)
                continue
            try:
                styles[state] = Style(color=Color.parse(variables[variable]).rich_color)
            except (KeyError, ColorParseError):
                # a theme without this shade still shows the state, just uncoloured
                self.log.warning(f"theme has no usable ${variable}")
                styles[state] = Style()
        return styles

    def _on_theme_changed(self) -> None:
        self._state_styles = self._resolve_state_styles()
        for index in range(len(self._links)):
            self._update_state_cell(index)
        self._update_detail()

    def _on_compact_changed(self) -> None:
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

    def _update_detail(self) -> None:
        detail = self.query_one("#device-detail", Static)
        link = self.selected_link
        if link is None:
            detail.update(Text(
                "No devices yet. Start sparktui with a device (sparktui local, "
                "sparktui user@host) or --demo, or add [[devices]] to the config file."))
            return
        status = link.status
        text = Text()
        text.append(link.name, style="bold")
        text.append(f" · {link.spec.destination}\n")
        text.append_text(self._state_text(status))
        if status.state in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.CLOSED):
            text.append(f"\npress {key_hint(self, 'devices.retry', 'r')} to try again now")
        detail.update(text)

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
