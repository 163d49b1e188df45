"""Finding devices to add: mDNS on this network, ~/.ssh/config and NVIDIA Sync's hosts.

Discovery is an async `@work` method (AsyncZeroconf lives on the event loop);
the ssh_config import reads its files in a thread (asyncio.to_thread) from
another. Each fills the table itself. Enter on a row dismisses with a DeviceSpec
for the add form; `o` opens the row in this session without saving it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from sparktui.core.device import DeviceSpec
from sparktui.core.sanitize import safe_text
from sparktui.services.discovery import DiscoveryResult, discover
from sparktui.services.sshconfig import ImportResult, import_hosts
from sparktui.ui.widgets.worker_log import LogsWorkerFailures


class DiscoverScreen(LogsWorkerFailures, ModalScreen[DeviceSpec | None]):
    CSS_PATH = Path(__file__).with_name("screens.tcss")
    BINDINGS = [
        Binding("enter", "add", "Add to config", id="device_discover.add"),
        Binding("o", "open", "Open now", id="device_discover.open"),
        Binding("r", "rescan", "Scan again", id="device_discover.rescan"),
        Binding("escape,q", "close", "Close", id="device_discover.close"),
    ]

    def __init__(self, timeout: float = 3.0, interfaces: list[str] | None = None, *,
                 mdns: bool = True,
                 opener: Callable[[DeviceSpec], bool] | None = None) -> None:
        super().__init__()
        #: opens a row in the running session (Session.open_device); None: `o` is refused
        self.opener = opener
        self.timeout = timeout
        self.interfaces = interfaces
        #: False: only the hosts of ~/.ssh/config and NVIDIA Sync (the "import" way)
        self.mdns = mdns
        self.rows: list[DeviceSpec] = []
        self._mdns: DiscoveryResult | None = None
        self._imported: ImportResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="discover-box", classes="device-box"):
            title = "Find devices" if self.mdns else "Import from ~/.ssh/config or NVIDIA Sync"
            yield Static(Text(title, style="bold"), classes="device-box-title")
            table: DataTable[Text] = DataTable(id="discover-table", cursor_type="row")
            yield table
            yield Static(id="discover-status")
            yield Static(Text("enter add to the config · o open now · r scan again · "
                              "esc close", style="dim"))
        yield Footer()  # this dialog's own keys, not the screen's behind it

    def on_mount(self) -> None:
        table = self.query_one("#discover-table", DataTable)
        table.add_columns("Name", "Address", "Source", "Spark")
        if self.mdns:
            self.action_rescan()
        else:
            self.query_one("#discover-status", Static).update(
                Text("reading ~/.ssh/config and NVIDIA Sync's ssh_config…", style="dim"))
        self.read_ssh_configs()

    def action_rescan(self) -> None:
        if not self.mdns:
            self.read_ssh_configs()
            return
        self.query_one("#discover-status", Static).update(
            Text(f"listening for _ssh._tcp for {self.timeout:g} s…", style="dim"))
        self.listen_mdns()

    @work(name="discover", group="discover", exclusive=True, exit_on_error=False)
    async def listen_mdns(self) -> None:
        result = await discover(self.timeout, interfaces=self.interfaces)
        self._mdns = result
        self.query_one("#discover-status", Static).update(safe_text(result.summary()))
        self._fill()

    @work(name="import-hosts", group="import-hosts", exclusive=True, exit_on_error=False)
    async def read_ssh_configs(self) -> None:
        # small files, but read off the event loop: a home on NFS can stall
        result: ImportResult = await asyncio.to_thread(import_hosts)
        self._imported = result
        if not self.mdns:
            found = len(result.hosts)
            self.query_one("#discover-status", Static).update(Text(
                f"{found} host(s) found" if found else "no Host entries in ~/.ssh/config, "
                "and no NVIDIA Sync ssh_config", style="dim"))
        for problem in result.problems:
            self.notify(problem, title="ssh config", severity="warning", markup=False)
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#discover-table", DataTable)
        table.clear()
        self.rows = []
        for host in self._mdns.hosts if self._mdns else []:
            name = host.hostname.split(".", 1)[0]
            spec = DeviceSpec(name=name, host=host.hostname,
                              port=None if host.port == 22 else host.port,
                              tags=("spark",) if host.is_spark else ())
            self._add(table, spec, ", ".join(host.addresses), "mDNS", host.is_spark)
        for host in self._imported.hosts if self._imported else []:
            spec = DeviceSpec(name=host.alias, host=host.alias)  # ssh applies the Host block
            self._add(table, spec, host.destination, host.source, None)

    def _add(self, table: DataTable, spec: DeviceSpec, address: str, source: str,
             spark: bool | None) -> None:
        self.rows.append(spec)
        table.add_row(safe_text(spec.name), safe_text(address), Text(source),
                      Text({True: "yes", False: "", None: "?"}[spark]))

    def _selected(self) -> DeviceSpec | None:
        table = self.query_one("#discover-table", DataTable)
        row = table.cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_add()

    def action_add(self) -> None:
        spec = self._selected()
        if spec is not None:
            self.dismiss(spec)

    def action_open(self) -> None:
        spec = self._selected()
        if spec is None:
            return
        if self.opener is None:
            self.notify("No session to open it in.", severity="warning")
            return
        opened = self.opener(spec)
        self.notify(f"{spec.name}: {'connecting' if opened else 'already open'}",
                    markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
