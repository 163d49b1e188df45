"""The Telemetry pane: the focused device's GPUs, host figures, history and GPU processes.

Plug-in point: the shell builds `TelemetryPane(fleet, hub, id="telemetry-pane")`
once. New figures arrive through `show_telemetry` (the app calls it for every
`TelemetryUpdated`): while the pane is hidden it only remembers them and marks
itself stale, and catches up when shown. A tick updates the gauges' reactives
and hands each visible chart its data, which it draws at most every
MIN_REDRAW_S (a new window, device or pause: at once); nothing is recomposed, and
every widget repaints only the cells that changed.
"""

from __future__ import annotations

import logging
import time

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from sparktui.core.device import LinkState
from sparktui.core.sanitize import strip_control
from sparktui.services.link_types import CommandResult, TransportError
from sparktui.services.session import Session
from sparktui.services.telemetry import (
    DeviceTelemetry,
    GpuProcess,
    ReadOnlyError,
    TelemetryService,
)
from sparktui.ui import readings
from sparktui.ui.keys import key_hint, keys_of
from sparktui.ui.messages import FleetChanged
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.telemetry.chart import window_label
from sparktui.ui.telemetry.gpu_card import GpuCard
from sparktui.ui.telemetry.host_strip import HostStrip
from sparktui.ui.telemetry.processes import BY_KEY, ProcessTable
from sparktui.ui.widgets import ComponentStyles
from sparktui.ui.widgets.pane_common import SessionPane
from sparktui.ui.widgets.repaint import LiveStatic

log = logging.getLogger(__name__)

#: chart windows, cycled by `w`
WINDOWS_S: tuple[float, ...] = (60.0, 600.0, 3600.0)
#: binding id -> its default key, for the hints and the read-only refusal
KILL_BINDINGS = {"telemetry.kill": "x", "telemetry.kill.force": "X"}


class TelemetryPane(SessionPane, ComponentStyles):
    """GPU cards, a host strip and the GPU processes of one device at a time."""

    HELP_SCOPE = "Telemetry tab"
    COMPONENT_CLASSES = {"telemetry--device", "telemetry--dim", "telemetry--paused",
                         "telemetry--label", "telemetry--warning"}

    BINDINGS = [
        # [ and ] as in less and k9s: d/D were device keys here and destructive elsewhere
        Binding("right_square_bracket", "cycle_device(1)", "Next device",
                id="telemetry.device.next", tooltip="Show the next device"),
        Binding("left_square_bracket", "cycle_device(-1)", "Previous device", show=False,
                id="telemetry.device.prev", tooltip="Show the previous device"),
        Binding("w", "cycle_window", "Window", tooltip="Chart window: 1 min, 10 min, 1 h",
                id="telemetry.window"),
        Binding("p", "toggle_pause", "Pause", tooltip="Freeze the charts; figures are still "
                "collected", id="telemetry.pause"),
        # the footer of a 50-column pane is short: these are in ? and the table's title
        Binding("o", "cycle_sort", "Sort processes", show=False, id="telemetry.sort",
                tooltip="Sort the GPU processes by the next column"),
        Binding("O", "sort_reverse", "Reverse sort", show=False, id="telemetry.sort_reverse",
                tooltip="Reverse the order of the GPU processes"),
        # x, not k: k moves up in every table (docs/keys.md)
        Binding("X", "kill_process(True)", "Force kill (SIGKILL)", show=False,
                id="telemetry.kill.force",
                tooltip="SIGKILL the selected GPU process (asks first)"),
        Binding("x", "kill_process(False)", "Kill", tooltip="SIGTERM the selected GPU process "
                "(asks first)", id="telemetry.kill"),
        Binding("m", "memory", "Memory", tooltip="Memory as the GB10 sees it: free for CUDA, "
                "reclaim, pressure, the load guard", id="telemetry.memory"),
        Binding("P", "postmortem", "Post-mortem", show=False, tooltip="Why the device last "
                "dropped: cause, evidence, the minutes before", id="telemetry.postmortem"),
    ]

    def __init__(self, session: Session, **kwargs) -> None:
        super().__init__(session, **kwargs)
        self.hub = session.telemetry
        self.device: str | None = None  # the focused device
        self.window_s = WINDOWS_S[0]
        self.paused = False
        self._frozen_at: float | None = None  # the chart time frozen by pause
        self._states: dict[str, DeviceTelemetry] = {}
        self._stale = True
        self._bindings_changed_hidden = False  # refresh the footer's keys when shown
        self._cards: dict[int, GpuCard] = {}
        self._compact = False
        #: full redraws of the focused device (tests read it)
        self.refresh_count = 0

    def compose(self) -> ComposeResult:
        yield LiveStatic(id="tel-status")
        yield HostStrip(id="tel-host")
        yield LiveStatic(id="tel-notice")
        yield LiveStatic(id="tel-problem")
        yield VerticalScroll(id="tel-cards")
        with Vertical(id="tel-proc-box"):
            yield LiveStatic(id="tel-proc-title")
            yield ProcessTable(id="tel-processes")

    def on_mount(self) -> None:
        self.query_one("#tel-cards").can_focus = False
        self._adopt_devices()
        # a dropped device sends no ticks: the age of its figures moves on by this timer
        self.set_interval(1.0, self._mark_staleness)

    def _mark_staleness(self) -> None:
        stale = self.gone_reason is not None and self.focused_state is not None
        if stale or self.has_class("-stale"):
            if stale != self.has_class("-stale"):
                self.set_class(stale, "-stale")
                self._refresh_bindings_when_shown()  # the kill keys follow the state
            if self.shown:
                self._show_status(self.focused_state)
                self._show_processes(self.focused_state)
                if stale:  # the charts' right edge moves on: the gap grows with the age
                    self._show_cards(self.focused_state, charts=not self.paused)

    # -- read-only ----------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.session.read_only

    @property
    def gone_reason(self) -> str | None:
        """Why the shown device cannot be acted on now; None while it is connected."""
        return readings.gone_reason(self.fleet.get(self.device) if self.device else None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "kill_process" and (self.read_only or self.gone_reason):
            return None  # shown, dimmed: the key is there but refused
        if action == "cycle_device" and len(self.devices) < 2:
            return False  # one device: it is implicit
        return True

    def on_key(self, event: events.Key) -> None:
        # a disabled binding does not run: say why instead of ignoring the key
        gone = self.gone_reason
        if not (self.read_only or gone):
            return
        if any(event.key in keys_of(self, binding_id, default)
               for binding_id, default in KILL_BINDINGS.items()):
            event.stop()
            event.prevent_default()
            if self.read_only:
                self._refuse_read_only()
            else:
                self._refuse_read_only(f"no signal sent: {gone}; its process list is "
                                       "the last one seen, not the processes running now")

    def _refuse_read_only(self, detail: str | None = None) -> None:
        self.notify(detail or "read-only mode: sparktui sends no signals to processes "
                    "(start it without --read-only to kill one)",
                    title="refused", severity="warning", markup=False)

    # -- devices --------------------------------------------------------------------------
    @property
    def devices(self) -> list[str]:
        names = [link.name for link in self.fleet.links]
        return names + [name for name in self._states if name not in names]

    def on_fleet_changed(self, message: FleetChanged) -> None:
        self._adopt_devices()

    def _adopt_devices(self) -> None:
        devices = self.devices
        if self.device not in devices:
            self.device = devices[0] if devices else None
        self._refresh_bindings_when_shown()  # ctrl+n follows the number of devices
        self._refresh_or_mark()

    def watch_focused_device(self, name: str | None) -> None:
        # the app's focused device (Devices cursor, ctrl+n) is the one shown here
        if name is not None and name != self.device and name in self.devices:
            self.device = name
            self._refresh_or_mark(charts=True)

    def action_cycle_device(self, step: int) -> None:
        devices = self.devices
        if not devices:
            return
        index = devices.index(self.device) if self.device in devices else -1
        self.device = devices[(index + step) % len(devices)]
        if self.fleet.get(self.device) is not None:
            self.focus_device(self.device)  # the other tabs follow
        self._refresh_or_mark(charts=True)

    # -- figures in ----------------------------------------------------------------------
    def show_telemetry(self, telemetry: DeviceTelemetry) -> None:
        """Called by the app for every device tick: cheap when hidden or another device."""
        new_device = telemetry.device not in self._states
        self._states[telemetry.device] = telemetry
        if new_device:
            self._adopt_devices()
            return
        if telemetry.device == self.device:
            self._refresh_or_mark()

    @property
    def shown(self) -> bool:
        """On screen now: mounted, and neither it nor a container of it (a tab) hidden."""
        if not self.is_mounted:
            return False
        node: Widget | None = self
        while isinstance(node, Widget):
            if not node.display:
                return False
            node = node.parent if isinstance(node.parent, Widget) else None
        return True

    def _refresh_or_mark(self, *, charts: bool = False) -> None:
        """Redraw now if on screen: charts at once if asked, or as a tick when not paused
        (a chart draws a tick's figures at most every MIN_REDRAW_S)."""
        if self.shown:
            self._refresh_view(charts=charts or not self.paused, at_once=charts)
        else:
            self._stale = True

    def on_resize(self) -> None:
        self._fit_charts()

    def _fit_charts(self) -> None:
        """Taller charts when the terminal has the rows and there are few GPUs to show."""
        self.set_class(self.size.height >= 34 and 0 < len(self._cards) <= 2, "-tall")

    def _refresh_bindings_when_shown(self) -> None:
        """Refresh the keys on a change only, and only while on screen (else when shown
        again): every refresh repaints the whole footer, 1.3 KB to the terminal."""
        if self.shown:
            self.refresh_bindings()
        else:
            self._bindings_changed_hidden = True

    def on_show(self) -> None:
        if self._bindings_changed_hidden:
            self._bindings_changed_hidden = False
            self.refresh_bindings()
        if self._stale:
            self._refresh_view(charts=True, at_once=True)

    def watch_compact(self, compact: bool) -> None:
        self._compact = compact
        for card in self._cards.values():
            card.compact = compact
        self.query_one(ProcessTable).set_compact(compact)
        self._refresh_or_mark(charts=True)

    @property
    def focused_state(self) -> DeviceTelemetry | None:
        return None if self.device is None else self._states.get(self.device)

    @property
    def chart_render_count(self) -> int:
        return sum(chart.render_count for card in self._cards.values() for chart in card.charts)

    # -- drawing --------------------------------------------------------------------------
    def _refresh_view(self, *, charts: bool, at_once: bool = False) -> None:
        self._stale = False
        self.refresh_count += 1
        state = self.focused_state
        self._show_status(state)
        self._show_host(state)
        self._show_problem(state)
        self._show_cards(state, charts=charts, at_once=at_once)
        self._show_processes(state)

    def _say(self, widget_id: str, text: Text) -> None:
        """Show `text`, repainting only the cells that changed (nothing if none did)."""
        self.query_one(f"#{widget_id}", LiveStatic).show(text)

    def _show_status(self, state: DeviceTelemetry | None) -> None:
        text = Text(no_wrap=False, end="")
        devices = self.devices
        if self.device is None:
            text.append("No devices yet. Start sparktui with a device or --demo: telemetry "
                        "streams from nvidia-smi on each one.",
                        self.component_style("telemetry--dim"))
            self._say("tel-status", text)
            return
        text.append(self.device, self.component_style("telemetry--device"))
        if len(devices) > 1:
            key = key_hint(self, "telemetry.device.next", "]")
            text.append(f" ({devices.index(self.device) + 1}/{len(devices)}, {key} next)",
                        self.component_style("telemetry--dim"))
        dim = self.component_style("telemetry--dim")
        compact = self._compact
        if state is not None and state.driver_version:
            driver = strip_control(state.driver_version, max_line=20)
            text.append(f" · nvidia-smi {driver}" if compact else
                        f" · driver {driver} · nvidia-smi", dim)
        else:
            text.append(f" · {self._waiting_text()}", dim)
        gone = self.gone_reason
        if state is not None and gone:
            # the figures below are the last ones seen: say so, with their age
            text.append(" · ")
            text.append(readings.stale_label("last sample", state.t, gone),
                        self.component_style("telemetry--warning"))
        text.append(f" · {'' if compact else 'window '}{window_label(self.window_s)}", dim)
        if self.paused:
            text.append(" · ")
            text.append(" PAUSED ", self.component_style("telemetry--paused"))
        self._say("tel-status", text)

    def _waiting_text(self) -> str:
        link = self.fleet.get(self.device) if self.device else None
        if link is not None and link.status.state is not LinkState.CONNECTED:
            return f"waiting for nvidia-smi ({link.status.describe()})"
        return "waiting for nvidia-smi"

    def _show_host(self, state: DeviceTelemetry | None) -> None:
        host = self.query_one("#tel-host", HostStrip)
        host.display = state is not None
        if state is not None:
            host.show_host(state, compact=self._compact,
                           label_style=self.component_style("telemetry--label"))

    def _show_problem(self, state: DeviceTelemetry | None) -> None:
        notice = self.query_one("#tel-notice", Static)
        problem = self.query_one("#tel-problem", Static)
        lines = [] if state is None else [
            line for line in (readings.dropped_notice(state), state.host_problem) if line]
        notice.display = bool(lines)
        if lines:
            self._say("tel-notice", Text("\n".join(strip_control(x, max_line=200)
                                                   for x in lines)))
        message = None if state is None else state.gpu_problem
        problem.display = bool(message)
        if message:
            self._say("tel-problem", Text.assemble(
                (f"No GPU figures from {state.device}: ", "bold"),  # type: ignore[union-attr]
                strip_control(message, max_line=300)))

    def _show_cards(self, state: DeviceTelemetry | None, *, charts: bool,
                    at_once: bool = False) -> None:
        container = self.query_one("#tel-cards", VerticalScroll)
        gpus = () if state is None or state.gpu_problem else state.gpus
        container.display = bool(gpus)
        wanted = [g.index for g in gpus]
        if list(self._cards) != wanted:
            for card in self._cards.values():
                card.remove()
            self._cards = {i: GpuCard(i, classes="gpu-card") for i in wanted}
            for card in self._cards.values():
                card.compact = self._compact
            self._fit_charts()
            if self._cards:
                mounting = container.mount(*self._cards.values())

                async def draw_when_mounted() -> None:
                    await mounting  # the cards compose on mount: then they can be drawn
                    self._refresh_or_mark(charts=True)

                self.call_later(draw_when_mounted)
            return
        if state is None:
            return
        service = self.hub.get(state.device) if self.hub is not None else None
        history = service.history if service is not None else None
        for gpu in gpus:
            card = self._cards[gpu.index]
            if not card.is_mounted:
                continue
            card.show_numbers(state, gpu)
            if charts:
                card.show_charts(state, gpu, history, self.window_s, self._chart_now(),
                                 at_once=at_once)

    def _chart_now(self) -> float | None:
        """The charts' right edge: where pause froze it; the clock while the device is
        gone (its last sample moves left, the gap after it grows); else None (each
        series' newest sample)."""
        if self.paused:
            return self._frozen_at
        link = self.fleet.get(self.device) if self.device else None
        lost = link is not None and link.lost_at is not None and self.gone_reason is not None
        return time.monotonic() if lost else None

    def _show_processes(self, state: DeviceTelemetry | None) -> None:
        table = self.query_one(ProcessTable)
        processes = () if state is None else state.processes
        serves = {} if state is None else {
            p.pid: row.describe() for p in processes
            if (row := self.fleet.models.for_pid(state.device, p.pid)) is not None
            and row.describe()}
        table.show(processes, serves)
        title = Text(end="", no_wrap=True, overflow="ellipsis")
        compact = self._compact
        dim = self.component_style("telemetry--dim")
        title.append(f"{'GPU procs' if compact else 'GPU processes'} ({len(processes)})",
                     self.component_style("telemetry--label"))
        sort_key = key_hint(self, "telemetry.sort", "o")
        sort_label = BY_KEY[table.sort_key].label.lower()
        title.append(f" · {sort_key} sort" if compact else
                     f"  sorted by {sort_label} ({sort_key})", dim)
        if self.read_only:
            title.append("  read-only: no kill", self.component_style("telemetry--warning"))
        elif self.gone_reason and processes:
            title.append("  last seen; no kill: not connected",
                         self.component_style("telemetry--warning"))
        elif processes:
            kill, force = (key_hint(self, binding_id, default)
                           for binding_id, default in KILL_BINDINGS.items())
            title.append(f" · {kill}/{force} kill" if compact else
                         f"  {kill} SIGTERM · {force} SIGKILL", dim)
        if state is not None and not processes and state.gpus and not compact:
            title.append("  none running (inside a container without the host's PIDs the "
                         "list stays empty)", dim)
        self._say("tel-proc-title", title)

    # -- actions ----------------------------------------------------------------------------
    def action_memory(self) -> None:
        from sparktui.ui.telemetry.memory import MemoryScreen

        service = self.hub.get(self.device) if self.hub is not None and self.device else None
        if service is None or self.hub is None or self.hub.gb10 is None:
            self.notify("No device to show the memory of yet.", markup=False)
            return
        self.app.push_screen(MemoryScreen(service, self.hub.gb10, read_only=self.read_only))

    def action_postmortem(self) -> None:
        from sparktui.ui.telemetry.postmortem import PostmortemScreen

        gb10 = self.hub.gb10 if self.hub is not None else None
        report = gb10.latest_report(self.device) if gb10 is not None and self.device else None
        if report is None:
            self.notify(f"No post-mortem for {self.device or 'this device'} yet: one is made "
                        "when a device comes back after a drop.", markup=False)
            return
        self.app.push_screen(PostmortemScreen(report))

    def action_cycle_window(self) -> None:
        index = WINDOWS_S.index(self.window_s) if self.window_s in WINDOWS_S else -1
        self.window_s = WINDOWS_S[(index + 1) % len(WINDOWS_S)]
        kept = self.hub.settings.history_minutes * 60 if self.hub is not None else None
        note = ""
        if kept is not None and kept < self.window_s:
            note = f" (history keeps {window_label(kept)}: history_minutes)"
        self.notify(f"Chart window: {window_label(self.window_s)}{note}", timeout=3,
                    markup=False)
        self._redraw_charts()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        state = self.focused_state
        self._frozen_at = state.t if self.paused and state is not None else None
        self._redraw_charts()

    def _redraw_charts(self) -> None:
        self._refresh_or_mark(charts=True)

    def action_cycle_sort(self) -> None:
        label = self.query_one(ProcessTable).cycle_sort()
        self.notify(f"GPU processes sorted by {label}", timeout=2, markup=False)
        self._show_processes(self.focused_state)

    def action_sort_reverse(self) -> None:
        self.query_one(ProcessTable).flip_sort()
        self._show_processes(self.focused_state)

    def action_kill_process(self, force: bool = False) -> None:
        if self.read_only:
            self._refuse_read_only()
            return
        process = self.query_one(ProcessTable).selected
        device = self.device
        service = self.hub.get(device) if self.hub is not None and device else None
        if process is None or service is None or device is None:
            self.notify("No GPU process selected.", severity="warning", markup=False)
            return
        signal = "SIGKILL" if force else "SIGTERM"
        question = Text.assemble(
            "Send ", (signal, "bold"), f" to process {process.pid} on ", (device, "bold"), "?\n\n",
            (strip_control(process.command or process.name, max_line=200), "italic"))
        if process.user:
            question.append(f"\nowner: {strip_control(process.user, max_line=32)}")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._kill(service, process, force), group="kill",
                                name=f"kill {process.pid}", exit_on_error=False)

        self.app.push_screen(ConfirmScreen(f"Kill a GPU process ({signal})", question),
                             callback=answered)

    async def _kill(self, service: TelemetryService, process: GpuProcess, force: bool) -> None:
        signal = "SIGKILL" if force else "SIGTERM"
        device = service.link.name
        try:
            result: CommandResult = await service.kill_process(process.pid, force=force)
        except ReadOnlyError as exc:
            self._refuse_read_only(str(exc))
            return
        except (TransportError, OSError, TimeoutError) as exc:
            log.warning("kill %s on %s failed: %s", process.pid, device, exc)
            self.notify(f"could not send {signal} to {process.pid} on {device}: "
                        f"{type(exc).__name__}: {exc}", title="kill failed", severity="error",
                        markup=False)
            return
        if result.ok:
            self.notify(f"Sent {signal} to {process.pid} on {device}.", markup=False)
        else:
            why = strip_control(result.stderr.strip() or result.stdout.strip(), max_line=300)
            self.notify(f"kill {process.pid} on {device} failed (exit {result.exit_status}): "
                        f"{why or 'no message'}", title="kill failed", severity="error",
                        markup=False)
