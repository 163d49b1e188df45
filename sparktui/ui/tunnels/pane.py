"""The Tunnels pane: port forwards to the devices, kept alive across reconnects.

The work is done by `sparktui.services.tunnels.TunnelManager`; this pane draws
its tunnels, turns keys into its calls, and probes the far ends every
PROBE_INTERVAL_S, only while the tab is on screen. Quitting (the pane being
unmounted) closes every listener.
"""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Static

from sparktui.core.units import fmt_bytes
from sparktui.services.audit import ReadOnlyError
from sparktui.services.session import Session
from sparktui.services.tunnel_specs import TunnelSpec, TunnelSpecError, has_browser
from sparktui.services.tunnels import Tunnel, TunnelManager, TunnelState
from sparktui.ui.keys import key_hint
from sparktui.ui.messages import FleetChanged
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.tunnels.form import TunnelForm
from sparktui.ui.widgets.clipboard import copy_text, not_copied_reason
from sparktui.ui.widgets.nav_table import NavTable
from sparktui.ui.widgets.pane_common import SessionPane, state_styles
from sparktui.ui.widgets.repaint import LiveStatic

PROBE_INTERVAL_S = 10.0
COUNTERS_INTERVAL_S = 1.0

STATE_COLOUR_VARIABLE: dict[TunnelState, str | None] = {
    TunnelState.UP: "text-success",
    TunnelState.WAITING: "text-warning",
    TunnelState.FAILED: "text-error",
    TunnelState.STOPPED: None,
    TunnelState.NO_DEVICE: None,
}
STATE_WORD = {
    TunnelState.UP: "up",
    TunnelState.WAITING: "waiting",
    TunnelState.FAILED: "failed",
    TunnelState.STOPPED: "stopped",
    TunnelState.NO_DEVICE: "no device",
}

COLUMNS = (("name", "Name"), ("device", "Device"), ("local", "Local"), ("way", ""),
           ("remote", "Remote"), ("state", "State"), ("conns", "Conns"),
           ("traffic", "In / Out"), ("answers", "Answers"))
#: a 50-column side pane: the detail line has the rest
COMPACT_COLUMNS = (("name", "Name"), ("local", "Local"), ("state", "State"))

PURPOSE = ("Port forwards from this machine to services on the devices: the DGX Dashboard, "
           "JupyterLab, model servers. Each is saved, restored at start, and comes back by "
           "itself after every reconnect.")


class TunnelChanged(Message):
    """The manager reported a change of one tunnel (state, probe)."""

    def __init__(self, tunnel: Tunnel) -> None:
        super().__init__()
        self.tunnel = tunnel

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TunnelChanged) and message.tunnel is self.tunnel


class TunnelsIntro(Static):
    """Shown while there are no tunnels: what the tab is for and the keys that work."""

    def on_mount(self) -> None:
        hints = [
            (key_hint(self, "tunnels.add", "a"), "add one: a preset or your own ports"),
            (key_hint(self, "app.tab.devices", "1"), "Devices: the connection to each device"),
            (key_hint(self, "app.help", "?"), "every key in force"),
            (key_hint(self, "app.palette", "^p"), "command palette: every action by name"),
        ]
        text = Text()
        text.append("Tunnels", style="bold")
        text.append(f"\n\n{PURPOSE}\n\nNo tunnels yet.\n\n")
        for key, what in hints:
            text.append(f"  {key:<6}", style="bold")
            text.append(f"{what}\n")
        self.update(text)


class TunnelsPane(SessionPane):
    """A table of the session's tunnels, with keys to add, change and open them."""

    HELP_SCOPE = "Tunnels tab"

    BINDINGS = [
        Binding("a", "add", "Add", id="tunnels.add",
                tooltip="Add a tunnel: a preset (Dashboard, Jupyter, Ollama, ...) or own ports"),
        Binding("e", "edit", "Edit", id="tunnels.edit",
                tooltip="Edit the selected tunnel"),
        Binding("s", "toggle", "Start/stop", id="tunnels.toggle",
                tooltip="Start or stop the selected tunnel (kept for the next start)"),
        Binding("x,delete", "remove", "Remove", id="tunnels.remove",
                tooltip="Remove the selected tunnel (asks first)"),
        Binding("o", "open", "Open", id="tunnels.open",
                tooltip="Open the selected tunnel in the browser, or show and copy its URL"),
    ]

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        #: the session's: tunnels outlive this tab (the deploy's offer adds one too)
        self.manager: TunnelManager | None = session.tunnels
        self._rows: list[Tunnel] = []  # in row order; the row key is id(tunnel)
        self._unsubscribe: Callable[[], None] | None = None
        self._state_styles: dict[TunnelState, Style] = {}
        self._counters: Timer | None = None
        self._prober: Timer | None = None

    def compose(self) -> ComposeResult:
        yield TunnelsIntro(classes="pane-intro")
        # counters tick every second: LiveTable repaints the changed cells, not the table
        table = NavTable(id="tunnels-table")
        yield table
        yield LiveStatic(id="tunnel-detail")

    def on_mount(self) -> None:
        app = self.app
        assert self.manager is not None
        self._unsubscribe = self.manager.subscribe(
            lambda tunnel: self.post_message(TunnelChanged(tunnel)))
        self._state_styles = self._resolve_state_styles()
        self.watch(app, "theme", self._on_theme_changed, init=False)
        self._rebuild_table()
        self.run_worker(self._load(), name="tunnels-load", exit_on_error=False)

    async def _load(self) -> None:
        assert self.manager is not None
        try:
            problems = await self.manager.load()
        except Exception as exc:  # an unreadable config must not take the tab down
            self.log.error(f"loading tunnels failed: {exc!r}")
            problems = [f"tunnels not loaded: {type(exc).__name__}: {exc}"]
        for problem in problems:
            self.notify(problem, title="tunnels", severity="warning", timeout=20, markup=False)
        self._rebuild_table()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop_timers()
        if self.manager is not None:
            # synchronous: every local port is free before the app is gone
            self.manager.close_now()

    def on_fleet_changed(self, message: FleetChanged) -> None:
        if self.manager is not None:
            self.manager.sync_fleet()
            self._rebuild_table()

    # -- timers: only while the tab is on screen ----------------------------------------------
    def on_show(self, event: events.Show) -> None:
        if self._counters is None:
            self._counters = self.set_interval(COUNTERS_INTERVAL_S, self._refresh_counters)
        if self._prober is None:
            self._prober = self.set_interval(PROBE_INTERVAL_S, self._probe)
            self._probe()

    def on_hide(self, event: events.Hide) -> None:
        self._stop_timers()

    def _stop_timers(self) -> None:
        for timer in (self._counters, self._prober):
            if timer is not None:
                timer.stop()
        self._counters = self._prober = None

    @property
    def probing(self) -> bool:
        return self._prober is not None

    def _probe(self) -> None:
        if self.manager is not None and self.manager.tunnels:
            self.run_worker(self.manager.probe_all(), group="tunnels-probe", exclusive=True,
                            exit_on_error=False)

    def _refresh_counters(self) -> None:
        for tunnel in self._rows:
            cells = self._cells(tunnel)
            for key in ("conns", "traffic"):
                if any(key == column for column, _ in self._columns()):
                    self.table.set_cell(str(id(tunnel)), key, cells[key])
        self._update_detail()

    # -- the table ------------------------------------------------------------------------------
    @property
    def table(self) -> NavTable:
        return self.query_one("#tunnels-table", NavTable)

    def _columns(self) -> tuple[tuple[str, str], ...]:
        return COMPACT_COLUMNS if self.compact else COLUMNS

    def watch_compact(self) -> None:
        if self.is_mounted:
            self._rebuild_table()

    def _rebuild_table(self) -> None:
        table = self.table
        cursor = table.cursor_row
        table.clear(columns=True)
        for key, label in self._columns():
            table.add_column(label, key=key)
        self._rows = list(self.manager.tunnels) if self.manager is not None else []
        for tunnel in self._rows:
            cells = self._cells(tunnel)
            table.add_row(*(cells[key] for key, _ in self._columns()), key=str(id(tunnel)))
        if self._rows:
            table.move_cursor(row=min(max(cursor, 0), len(self._rows) - 1))
        empty = not self._rows
        self.query_one(TunnelsIntro).display = empty
        table.display = not empty
        self.query_one("#tunnel-detail").display = not empty
        self._update_detail()

    def _cells(self, tunnel: Tunnel) -> dict[str, Text]:
        # Text, never markup: names and reasons may hold brackets
        spec = tunnel.spec
        traffic = tunnel.traffic
        local = Text(tunnel.local_address)
        if spec.wide_bind and not spec.reverse:
            local.append(" !", style="bold")
        probe = tunnel.probe
        if tunnel.status.state is not TunnelState.UP or probe is None:
            answers = Text("-", style="dim")
        elif probe.answers:
            answers = Text(probe.detail, style=self._state_styles.get(TunnelState.UP))
        else:
            answers = Text("no", style=self._state_styles.get(TunnelState.FAILED))
        return {
            "name": Text(spec.name),
            "device": Text(spec.device),
            "local": local,
            "way": Text("<-" if spec.reverse else "->"),
            "remote": Text(tunnel.remote_address),
            "state": Text(STATE_WORD[tunnel.status.state],
                          style=self._state_styles.get(tunnel.status.state, Style())),
            "conns": Text(str(traffic.open_connections), justify="right"),
            "traffic": Text(f"{fmt_bytes(traffic.bytes_in)} / {fmt_bytes(traffic.bytes_out)}",
                            justify="right"),
            "answers": answers,
        }

    def on_tunnel_changed(self, message: TunnelChanged) -> None:
        tunnel = message.tunnel
        if not any(tunnel is row for row in self._rows):
            self._rebuild_table()
            return
        if self.probing and tunnel.status.state is TunnelState.UP and tunnel.probe is None \
                and self.manager is not None:
            # a tunnel that just came up: ask at once rather than at the next round
            self.run_worker(self.manager.probe(tunnel), exit_on_error=False)
        cells = self._cells(tunnel)
        for key, _ in self._columns():
            self.table.set_cell(str(id(tunnel)), key, cells[key])
        if self.selected is tunnel:
            self._update_detail()

    def _resolve_state_styles(self) -> dict[TunnelState, Style]:
        return state_styles(self, STATE_COLOUR_VARIABLE)

    def _on_theme_changed(self) -> None:
        self._state_styles = self._resolve_state_styles()
        self._rebuild_table()

    # -- selection and detail --------------------------------------------------------------------
    @property
    def selected(self) -> Tunnel | None:
        row = self.table.cursor_row
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def _update_detail(self) -> None:
        tunnel = self.selected
        detail = self.query_one("#tunnel-detail", LiveStatic)
        if tunnel is None:
            detail.show(Text(""))
            return
        spec = tunnel.spec
        text = Text()
        text.append(spec.name, style="bold")
        if spec.reverse:
            text.append(f" · {spec.device} listens on {tunnel.remote_address} and reaches "
                        f"{spec.bind}:{spec.local_port} here")
        else:
            text.append(f" · {tunnel.url or tunnel.local_address} -> {spec.device} "
                        f"{tunnel.remote_address}")
        text.append("\n")
        text.append(tunnel.status.describe(),
                    style=self._state_styles.get(tunnel.status.state, Style()))
        traffic = tunnel.traffic
        text.append(f" · {traffic.open_connections} open, {traffic.total_connections} in all")
        if traffic.refused:
            text.append(f", {traffic.refused} refused")
        if tunnel.probe is not None and tunnel.status.state is TunnelState.UP:
            text.append(f"\nfar end: {tunnel.probe.describe()}")
        if tunnel.last_error:
            text.append(f"\nlast refused client: {tunnel.last_error}", style="italic")
        if spec.wide_bind:
            text.append("\nlistens beyond this machine: others on the network can reach it",
                        style="bold")
        detail.show(text)

    # -- actions ---------------------------------------------------------------------------------
    def _device_names(self) -> list[str]:
        return [link.name for link in self.fleet.links]

    def action_add(self) -> None:
        self._open_form(None)

    def action_edit(self) -> None:
        tunnel = self.selected
        if tunnel is None:
            self.notify("No tunnel selected.", severity="warning")
            return
        self._open_form(tunnel.spec, tunnel)

    def _open_form(self, spec: TunnelSpec | None, tunnel: Tunnel | None = None,
                   error: str | None = None) -> None:
        devices = self._device_names()
        if spec is not None and spec.device not in devices:
            devices.append(spec.device)
        if not devices:
            self.notify("No devices yet: a tunnel needs a device to go to.",
                        severity="warning")
            return
        title = "Add a tunnel" if tunnel is None else f"Edit {tunnel.name}"

        def done(result: TunnelSpec | None) -> None:
            if result is not None:
                self.run_worker(self._save(result, tunnel), group="tunnels-change",
                                exit_on_error=False)

        self.app.push_screen(TunnelForm(devices, spec, title=title, error=error), done)

    async def _save(self, spec: TunnelSpec, tunnel: Tunnel | None) -> None:
        assert self.manager is not None
        try:
            if tunnel is None:
                result = await self.manager.add(spec)
            else:
                result = await self.manager.update(tunnel, spec)
        except (TunnelSpecError, ReadOnlyError) as exc:
            # back to the form, with what was typed, to fix it there
            self._open_form(spec, tunnel, error=str(exc))
            return
        self._rebuild_table()
        self._select(result.tunnel)
        for note in result.notes:
            self.notify(note, title=result.tunnel.name, markup=False)
        for warning in result.warnings:
            self.notify(warning, title=result.tunnel.name, severity="warning", timeout=15,
                        markup=False)

    def _select(self, tunnel: Tunnel) -> None:
        index = next((i for i, row in enumerate(self._rows) if row is tunnel), None)
        if index is not None:
            self.table.move_cursor(row=index)
            self.table.focus()

    def live_tunnels(self) -> list[str]:
        """The tunnels forwarding (or listening for) traffic now: quitting ends them."""
        if self.manager is None:
            return []
        live = (TunnelState.UP, TunnelState.WAITING)
        return [f"{tunnel.name} on {tunnel.spec.device}" for tunnel in self.manager.tunnels
                if tunnel.status.state in live]

    def action_toggle(self) -> None:
        tunnel = self.selected
        if tunnel is None:
            self.notify("No tunnel selected.", severity="warning")
            return
        self.run_worker(self._toggle(tunnel), group="tunnels-change", exit_on_error=False)

    async def _toggle(self, tunnel: Tunnel) -> None:
        assert self.manager is not None
        try:
            if tunnel.running:
                warnings = await self.manager.stop(tunnel, remember=True)
                self.notify(f"{tunnel.name} stopped; its local port is free. It stays "
                            "stopped next time until you start it.", markup=False)
            else:
                warnings = await self.manager.start(tunnel, remember=True)
        except (TunnelSpecError, ReadOnlyError) as exc:
            self.notify(str(exc), title=tunnel.name, severity="error", markup=False)
            return
        for warning in warnings:
            self.notify(warning, title=tunnel.name, severity="warning", markup=False)

    def action_remove(self) -> None:
        tunnel = self.selected
        if tunnel is None:
            self.notify("No tunnel selected.", severity="warning")
            return
        question = Text.assemble("Remove the tunnel ", (tunnel.name, "bold"), " on ",
                                 (tunnel.spec.device, "bold"),
                                 "? It stops now and is deleted from the config.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._remove(tunnel), group="tunnels-change",
                                exit_on_error=False)

        self.app.push_screen(ConfirmScreen("Remove tunnel", question), callback=answered)

    async def _remove(self, tunnel: Tunnel) -> None:
        assert self.manager is not None
        warnings = await self.manager.remove(tunnel)
        self._rebuild_table()
        self.notify(f"{tunnel.name} removed.", markup=False)
        for warning in warnings:
            self.notify(warning, title=tunnel.name, severity="warning", markup=False)

    def action_open(self) -> None:
        tunnel = self.selected
        if tunnel is None:
            self.notify("No tunnel selected.", severity="warning")
            return
        url = tunnel.url
        if url is None:
            self.notify("A reverse forward has no address here to open.", severity="warning")
            return
        if not has_browser():
            self._show_url(url, "no browser on this machine")
            return
        self.run_worker(self._open_in_browser(url), group="tunnels-open", exit_on_error=False)

    async def _open_in_browser(self, url: str) -> None:
        try:
            # webbrowser may start a program and wait for it: never on the event loop
            opened = await asyncio.to_thread(webbrowser.open, url)
        except Exception as exc:
            self.log.warning(f"webbrowser failed: {exc!r}")
            opened = False
        if opened:
            self.notify(f"Opened {url}", markup=False)
        else:
            self._show_url(url, "the browser did not start")

    def _show_url(self, url: str, why: str) -> None:
        # OSC 52 reaches the user's own clipboard over SSH, where nothing drops it
        if copy_text(self, url):
            note = f"copied to the clipboard: {why}"
        else:
            note = f"select it to copy ({not_copied_reason(self)}): {why}"
        self.notify(f"{url}\n({note})", title="Open in a browser", timeout=20, markup=False)
