"""The Containers pane: every container of every device, live from Docker's events.

One ContainerService per device link (sparktui.services.containers) keeps the
list current from the device's events stream; its listener posts a
ContainersChanged and the table is redrawn from the service's state. CPU and
memory are sampled only for the rows on screen, and only while the pane is.
Device text (names, images, commands, labels) is shown as Text built by
`sparktui.core.sanitize`, never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color, ColorParseError
from textual.message import Message
from textual.widgets import DataTable, Input

from sparktui.core.docker_info import SORTABLE, ContainerInfo, action_outcome, matches, sort_key
from sparktui.core.sanitize import safe_text
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.containers import (
    Change,
    ContainerActionError,
    ContainerService,
    DockerUnavailable,
    ServiceState,
)
from sparktui.services.link import DeviceLink
from sparktui.services.session import Session
from sparktui.ui import readings
from sparktui.ui.ask import ask_first, target_question
from sparktui.ui.containers.columns import Layout, columns_for, layout_for, row_cells, state_style
from sparktui.ui.messages import FleetChanged
from sparktui.ui.widgets.nav_table import NavTable, SortOrder, highlight_match
from sparktui.ui.widgets.pane_common import STALE_CELL, SessionPane
from sparktui.ui.widgets.repaint import LiveStatic, same_look

#: the actions that interrupt a container ask first (docs/keys.md); what to warn of
ASK_BEFORE = {
    "stop": "Whatever it serves goes away until it is started again ({image}).",
    "restart": "A model server reloads its model, which can take minutes ({image}).",
}
#: how often the rows on screen are told to the services (for CPU and memory)
WATCH_INTERVAL = 2.0
_STATE_VARIABLES = {"ok": "text-success", "warn": "text-warning", "bad": "text-error"}


class ContainersChanged(Message):
    """A device's ContainerService changed; the table redraws from the service."""

    def __init__(self, service: ContainerService, change: Change) -> None:
        super().__init__()
        self.service = service
        self.change = change

    def can_replace(self, message: Message) -> bool:
        # the redraw reads the service's current state: one pending per device is enough
        return isinstance(message, ContainersChanged) and message.service is self.service


RowKey = str  # f"{device}/{container id}"


class ContainersPane(SessionPane):
    """Table, filter line, detail line and the actions on the selected container."""

    HELP_SCOPE = "Containers tab"

    BINDINGS = [
        Binding("a", "toggle_all", "All/running", id="containers.all",
                tooltip="Show stopped containers too, or running ones only"),
        Binding("slash", "filter", "Filter", id="containers.filter",
                tooltip="Filter by name, image, state, labels or device"),
        Binding("o", "sort", "Sort", id="containers.sort",
                tooltip="Sort by the next column"),
        Binding("O", "sort_reverse", "Reverse", show=False, id="containers.sort_reverse",
                tooltip="Reverse the sort order"),
        Binding("l", "logs", "Logs", id="containers.logs",
                tooltip="Tail and follow the selected container's logs"),
        Binding("S", "container('start')", "Start", id="containers.start",
                tooltip="Start the selected container"),
        Binding("s", "container('stop')", "Stop", id="containers.stop",
                tooltip="Stop the selected container (asks first)"),
        Binding("r", "container('restart')", "Restart", id="containers.restart",
                tooltip="Restart the selected container (asks first: a model server "
                "reloads its model)"),
        Binding("p", "pause", "Pause/unpause", id="containers.pause",
                tooltip="Pause or unpause the selected container"),
        Binding("d", "remove", "Remove", id="containers.remove",
                tooltip="Remove the selected container (asks first, and about volumes)"),
        Binding("E", "shell", "Shell", id="containers.shell",
                tooltip="A shell in the selected container (docker exec -it ... sh)"),
        Binding("i", "images", "Images", id="containers.images",
                tooltip="The device's images: sizes, remove unused"),
        # D, not n: n is the next match in every table (docs/keys.md)
        Binding("D", "deploy", "Deploy", id="containers.deploy",
                tooltip="Deploy an inference server: Ollama, vLLM, NIM, SGLang, ..."),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="containers.clear",
                tooltip="Clear the filter"),
    ]

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.services: list[ContainerService] = []
        self._unsubscribes: list[Callable[[], None]] = []
        self.show_all = False
        self.query_text = ""
        self.order = SortOrder("name")
        self._row_keys: list[RowKey] = []
        self._rows: dict[RowKey, tuple[ContainerService, ContainerInfo]] = {}
        self._cells: dict[RowKey, tuple[Text, ...]] = {}
        self._columns: tuple[tuple[str, str], ...] = ()
        self._styles: dict[str, Style] = {}
        self._shown = False
        #: the columns for the pane's width (containers/columns.py); set on resize
        self.table_layout = Layout.NARROW
        #: time.monotonic() of the last redraw, per container: tests measure event latency
        self.redrawn_at: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield LiveStatic(id="containers-status")
        # the table first: the shell focuses a pane's first focusable widget
        # stats move every few seconds: LiveTable repaints the changed cells, not the table
        table = NavTable(id="containers-table")
        yield table
        yield Input(placeholder="filter: words in name, image, state, labels…",
                    id="containers-filter")
        yield LiveStatic(id="container-detail")

    def on_mount(self) -> None:
        self.query_one("#containers-filter", Input).display = False
        self._styles = self._resolve_styles()
        self._redraw()
        self.set_interval(WATCH_INTERVAL, self._tick)
        self.watch(self.app, "theme", self._on_theme_changed, init=False)

    async def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes.clear()
        for service in self.services:
            await service.close()

    # -- services -------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def read_only(self) -> bool:
        return self.session.read_only

    @property
    def audit(self) -> AuditLog:
        return self.session.audit

    def watch_compact(self) -> None:
        if self.is_mounted:
            self._fit_width()

    def on_resize(self) -> None:
        self._fit_width()

    def _fit_width(self) -> None:
        """Pick the columns for the pane's width; rebuild the headers when they change."""
        layout = layout_for(self.size.width, self.compact)
        if layout is not self.table_layout or self._wanted_columns() != self._columns:
            self.table_layout = layout
            self._relabel_headers()

    def on_show(self) -> None:
        # Docker is reached only once the tab has been looked at: a user who never
        # opens it costs the devices no socket forward and no events stream
        self._shown = True
        self._adopt_new_links()
        if self._row_keys:
            self._redraw()  # the uptimes it skipped while hidden

    def on_fleet_changed(self, message: FleetChanged) -> None:
        self._adopt_new_links()

    def _adopt_new_links(self) -> None:
        if not self._shown:
            return
        known = {id(service.link) for service in self.services}
        for link in self.fleet.links:
            if id(link) not in known:
                self._add_service(link)

    def _add_service(self, link: DeviceLink) -> None:
        service = ContainerService(
            link, socket_path=self.settings.docker_socket,
            read_only=self.read_only, audit=self.audit)
        self.services.append(service)
        self._unsubscribes.append(service.subscribe(
            lambda change, s=service: self.post_message(ContainersChanged(s, change))))
        service.start()

    def service_for(self, device: str) -> ContainerService | None:
        return next((s for s in self.services if s.device == device), None)

    def on_containers_changed(self, message: ContainersChanged) -> None:
        self._redraw()

    # -- the table ------------------------------------------------------------------------
    @property
    def table(self) -> NavTable:
        return self.query_one("#containers-table", NavTable)

    def _wanted_columns(self) -> tuple[tuple[str, str], ...]:
        # the detail line below the table has what the columns leave out of the selected one
        return columns_for(layout_for(self.size.width, self.compact), self.size.width,
                           devices=len(self.services))

    def visible_rows(self) -> list[tuple[RowKey, ContainerService, ContainerInfo]]:
        now = time.time()
        rows = []
        for service in self.services:
            for info in service.containers.values():
                if not self.show_all and not info.running:
                    continue
                if not matches(info, self.query_text, service.device):
                    continue
                rows.append((f"{service.device}/{info.id}", service, info))
        column = self.order.column

        def key(row: tuple[RowKey, ContainerService, ContainerInfo]) -> tuple:
            _, service, info = row
            if column == "device":
                return (service.device, info.name)
            return sort_key(column, info, service.stats.get(info.id), now)

        rows.sort(key=key, reverse=self.order.reverse)
        return rows

    def _cells_for(self, service: ContainerService, info: ContainerInfo,
                   now: float) -> dict[str, Text]:
        cells = row_cells(service.device, info, service.stats.get(info.id), now,
                          layout_for(self.size.width, self.compact),
                          state_style(info, self._styles))
        if readings.link_stale_label(service.link, "") is not None:
            for cell in cells.values():  # the last list seen: dimmed and struck, never live
                cell.stylize(STALE_CELL)
        return cells

    def _redraw(self) -> None:
        table = self.table
        now = time.time()
        rows = self.visible_rows()
        keys = [key for key, _, _ in rows]
        columns = self._wanted_columns()
        self._rows = {key: (service, info) for key, service, info in rows}
        fresh = {key: {column: highlight_match(cell, self.query_text) for column, cell
                       in self._cells_for(service, info, now).items()}
                 for key, service, info in rows}
        stamp = time.monotonic()
        table.match_query = self.query_text
        if columns != self._columns or keys != self._row_keys:
            # the cursor stays on its container: a sort must not put the next `s` on
            # another one
            with table.keeping_cursor():
                table.clear(columns=columns != self._columns)
                if columns != self._columns:
                    for key, label in columns:
                        table.add_column(self.order.header(key, label), key=key)
                    self._columns = columns
                for key in keys:
                    table.add_row(*(fresh[key][c] for c, _ in columns), key=key)
                    self.redrawn_at[key.split("/", 1)[1]] = stamp
                self._row_keys = keys
                self._cells = {key: tuple(fresh[key][c] for c, _ in columns) for key in keys}
        else:
            for key in keys:
                cells = tuple(fresh[key][c] for c, _ in columns)
                if cells == self._cells.get(key):
                    continue
                for (column, _), new, old in zip(columns, cells, self._cells[key], strict=True):
                    if not same_look(new, old):
                        table.set_cell(key, column, new)
                self._cells[key] = cells
                self.redrawn_at[key.split("/", 1)[1]] = stamp
        self._update_status()
        self._update_detail()

    def _relabel_headers(self) -> None:
        self._columns = ()  # the headers carry the sort arrow: rebuild them
        self._row_keys = []
        self._redraw()

    # -- status and detail lines ---------------------------------------------------------------
    def _update_status(self) -> None:
        text = Text()
        for service in self.services:
            if text:
                text.append("\n")
            text.append(f"{service.device}: ", style="bold")
            if stale := readings.link_stale_label(service.link, "list from"):
                text.append(stale, style=self._styles.get("warn", Style()))
            elif service.state is ServiceState.READY:
                running = sum(1 for c in service.containers.values() if c.running)
                text.append(f"Docker {service.engine_version} (API {service.api_version}) · "
                            f"{running} running, {len(service.containers)} in all")
            elif service.problem is not None:
                style = self._styles.get("bad", Style()) \
                    if service.state is ServiceState.PROBLEM else Style(dim=True)
                text.append(service.problem.message, style=style)
            else:
                text.append("connecting to Docker…", style=Style(dim=True))
        if not self.services and self.fleet.links:
            text.append("connecting to Docker…", style=Style(dim=True))
        elif not self.services:
            text.append("No devices yet: start sparktui with a device, or --demo.")
        shown = "all containers" if self.show_all else "running containers (a: all)"
        text.append(f"\n{shown}", style=Style(dim=True))
        if self.query_text:
            text.append(f" · filter: {self.query_text}", style=Style(dim=True))
        if self.read_only:
            text.append(" · read-only", style=self._styles.get("warn", Style()))
        self.query_one("#containers-status", LiveStatic).show(text)

    @property
    def selected_key(self) -> RowKey | None:
        return self.table.cursor_key

    @property
    def selected(self) -> tuple[ContainerService, ContainerInfo] | None:
        key = self.selected_key
        return None if key is None else self._rows.get(key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_logs()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.order.click(str(event.column_key.value))
        self._relabel_headers()

    def _update_detail(self) -> None:
        detail = self.query_one("#container-detail", LiveStatic)
        chosen = self.selected
        if chosen is None:
            detail.show(Text("No container selected.", style="dim"))
            return
        service, info = chosen
        text = Text()
        text.append_text(safe_text(info.name, style="bold"))
        text.append(f"  {info.short_id} on {service.device}", style="dim")
        shown = {key for key, _ in self._columns}
        if "image" not in shown:  # a narrow table leaves the image to this line
            text.append("  ")
            text.append_text(safe_text(info.image, max_line=120))
        text.append("\n")
        if stale := readings.link_stale_label(service.link, "last seen"):
            text.append(f"{stale}\n", style=self._styles.get("warn", Style()))
        if info.ports and self.table_layout is not Layout.WIDE:  # the table shows them short
            text.append("ports    ", style="dim")
            text.append_text(safe_text(", ".join(info.ports), max_line=200))
            text.append("\n")
        text.append("command  ", style="dim")
        text.append_text(safe_text(info.command, max_line=200))
        if info.labels:
            text.append("\nlabels   ", style="dim")
            labels = "  ".join(f"{k}={v}" for k, v in info.labels)
            text.append_text(safe_text(labels, max_line=200))
        serves = self.fleet.models.for_container(service.device, info.id)
        if serves is not None:  # known once the Serving tab has read the endpoints
            text.append("\nserves   ", style="dim")
            text.append_text(safe_text(f"{serves.model_text} on :{serves.port} "
                                       f"({serves.endpoint})", max_line=200))
        if info.error:
            text.append("\nerror    ", style="dim")
            text.append_text(safe_text(info.error, max_line=200))
        detail.show(text)

    # -- periodic: stats for the rows on screen, uptimes ----------------------------------------
    def _tick(self) -> None:
        self.update_watched()
        if self._row_keys and self.region.area > 0:
            self._redraw()  # uptimes move on (a hidden tab catches up when shown)

    def update_watched(self) -> None:
        on_screen = self.screen.is_active and self.region.area > 0
        wanted: dict[str, set[str]] = {service.device: set() for service in self.services}
        if on_screen and self._row_keys:
            table = self.table
            first = max(0, int(table.scroll_y) - 1)
            last = first + max(1, table.size.height) + 1
            for key in self._row_keys[first:last]:
                device, _, container_id = key.partition("/")
                wanted.setdefault(device, set()).add(container_id)
        for service in self.services:
            service.set_watched(wanted.get(service.device, set()))

    def _resolve_styles(self) -> dict[str, Style]:
        variables = self.app.get_css_variables()
        styles = {}
        for name, variable in _STATE_VARIABLES.items():
            try:
                styles[name] = Style(color=Color.parse(variables[variable]).rich_color)
            except (KeyError, ColorParseError):
                self.log.warning(f"theme has no usable ${variable}")
                styles[name] = Style()
        return styles

    def _on_theme_changed(self) -> None:
        self._styles = self._resolve_styles()
        self._relabel_headers()

    # -- view actions ---------------------------------------------------------------------------
    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self._redraw()

    def action_filter(self) -> None:
        field = self.query_one("#containers-filter", Input)
        field.display = True
        # at once (focus() waits a message hop): the keys typed after / are the filter's
        self.screen.set_focus(field)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "containers-filter":
            self.query_text = event.value
            self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "containers-filter":
            if not event.value:
                event.input.display = False
            self.screen.set_focus(self.table)

    def action_clear_filter(self) -> None:
        field = self.query_one("#containers-filter", Input)
        field.value = ""
        field.display = False
        self.query_text = ""
        self.screen.set_focus(self.table)  # at once: the next key is a table key
        self._redraw()

    def action_sort(self) -> None:
        columns = [key for key, _ in self._wanted_columns() if key in SORTABLE or key == "device"]
        self.notify(f"sorted by {self.order.cycle(columns)}", timeout=2)
        self._relabel_headers()

    def action_sort_reverse(self) -> None:
        self.order.flip()
        self._relabel_headers()

    # -- container actions ------------------------------------------------------------------------
    def _chosen_or_say(self) -> tuple[ContainerService, ContainerInfo] | None:
        chosen = self.selected
        if chosen is None:
            self.notify("No container selected.", severity="warning")
        elif gone := readings.gone_reason(chosen[0].link):
            self.notify(f"Not done: {gone}; this list is the last one seen.",
                        severity="warning", markup=False)
            return None
        return chosen

    def _refuse_if_read_only(self, service: ContainerService, what: str,
                             info: ContainerInfo) -> bool:
        try:
            service.check_writable(what, info.name)
        except ReadOnlyError as exc:
            self.notify(str(exc), title="read-only", severity="error", markup=False)
            return True
        return False

    def action_container(self, action: str) -> None:
        chosen = self._chosen_or_say()
        if chosen is None:
            return
        service, info = chosen
        if self._refuse_if_read_only(service, action, info):
            return
        note = ASK_BEFORE.get(action)
        if note is None:  # start, pause, unpause: nothing is lost
            self._run_action(service, info, action)
            return
        ask_first(self, f"{action.capitalize()} container",
                  target_question(action.capitalize(), "container", info.name,
                                  service.device, note.format(image=info.image)),
                  lambda: self._run_action(service, info, action))

    def action_pause(self) -> None:
        chosen = self._chosen_or_say()
        if chosen is not None:
            self.action_container("unpause" if chosen[1].state == "paused" else "pause")

    @work(group="container-actions", exit_on_error=False)
    async def _run_action(self, service: ContainerService, info: ContainerInfo, action: str):
        self.notify(f"{action} {info.name} on {service.device}…", timeout=3, markup=False)
        try:
            after = await service.run_action(action, info.id)
        except (ReadOnlyError, ContainerActionError, DockerUnavailable) as exc:
            self.notify(str(exc), title=f"{action} failed", severity="error", markup=False)
            return
        message, as_asked = action_outcome(action, info.name, after)  # what is true now
        self.notify(message, severity="information" if as_asked else "warning", markup=False)

    def action_remove(self) -> None:
        from sparktui.ui.containers.dialogs import ConfirmDialog

        chosen = self._chosen_or_say()
        if chosen is None:
            return
        service, info = chosen
        if self._refuse_if_read_only(service, "remove", info):
            return
        question = Text("Remove the container ")
        question.append_text(safe_text(info.name, style="bold"))
        question.append(f" ({info.short_id}, {info.state_text()}) on {service.device}?")
        if info.running:
            question.append("\nIt is running: it will be stopped first.")

        def answered(answer) -> None:
            if answer is not None and answer.confirmed:
                self._remove(service, info, answer.checked)

        self.app.push_screen(ConfirmDialog("Remove container", question,
                                           checkbox="Also remove its anonymous volumes"),
                             callback=answered)

    @work(group="container-actions", exit_on_error=False)
    async def _remove(self, service: ContainerService, info: ContainerInfo, volumes: bool) -> None:
        try:
            await service.remove(info.id, volumes=volumes)
        except (ReadOnlyError, ContainerActionError, DockerUnavailable) as exc:
            self.notify(str(exc), title="remove failed", severity="error", markup=False)
            return
        self.notify(f"removed {info.name}", timeout=3, markup=False)

    def action_logs(self) -> None:
        from sparktui.ui.containers.logs import ContainerLogsScreen

        chosen = self._chosen_or_say()
        if chosen is not None:
            self.app.push_screen(ContainerLogsScreen(*chosen))

    def action_shell(self) -> None:
        from sparktui.ui.containers.shell import open_shell

        chosen = self._chosen_or_say()
        if chosen is None:
            return
        service, info = chosen
        if not self._refuse_if_read_only(service, "shell", info):
            # the link's own options: the demo's shell trusts the demo's known_hosts only
            open_shell(self, service, info,
                       options=self.session.ssh_options_for(service.link.name))

    def action_images(self) -> None:
        from sparktui.ui.containers.images import ImagesScreen

        service = self._current_service()
        if service is not None:
            self.app.push_screen(ImagesScreen(service))

    def action_deploy(self) -> None:
        from sparktui.ui.containers.deploy import DeployScreen

        service = self._current_service()
        if service is None:
            return
        if self._refuse_if_read_only(service, "deploy", ContainerInfo("", "a server", "", "")):
            return
        self.app.push_screen(DeployScreen(self.services, service,
                                          telemetry=self.session.telemetry,
                                          secrets=self.session.secrets))

    def _current_service(self) -> ContainerService | None:
        chosen = self.selected
        if chosen is not None:
            return chosen[0]
        if self.services:
            return self.services[0]
        self.notify("No devices yet.", severity="warning")
        return None
