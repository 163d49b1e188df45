"""The sparktui shell: header, one tab per pane, footer, and the session behind them.

The app owns one typed `Session` (sparktui.services.session: the fleet of
device links, telemetry, facts, tunnels, the demo) and hands it to every pane;
the panes bind the app's `compact` and `focused_device` with `data_bind`.
The session is opened in a worker once the screen is up, so a slow DNS lookup
or the demo server starting never holds up the first frame. Quitting closes
every link and the demo before the app exits: nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerCancelled

from sparktui import __version__
from sparktui.core.device import DeviceSpec
from sparktui.core.events import DeviceEvent, Severity
from sparktui.core.sanitize import strip_control
from sparktui.services.clipboard import tmux_passes_copies
from sparktui.services.config import Config, Settings
from sparktui.services.deploy import DeployReady as DeployedServer
from sparktui.services.devices import Fleet
from sparktui.services.endpoints import manual_spec
from sparktui.services.gb10 import make_gb10
from sparktui.services.link_types import UnknownHostKey
from sparktui.services.postmortem import PostMortem
from sparktui.services.session import Session
from sparktui.services.state import SessionState
from sparktui.services.store import ConfigStore
from sparktui.services.telemetry import DeviceTelemetry, TelemetryHub
from sparktui.ui import readings
from sparktui.ui.chat.endpoint import ChatEndpointScreen
from sparktui.ui.chat.history import ChatHistoryScreen
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.message import ChatMessageView
from sparktui.ui.containers.deploy import DeployScreen
from sparktui.ui.containers.dialogs import ConfirmDialog
from sparktui.ui.containers.images import ImagesScreen
from sparktui.ui.containers.logs import ContainerLogsScreen
from sparktui.ui.devices.actions import DEVICE_SCREENS
from sparktui.ui.exit_guard import EXIT_TERMINAL_LOST, ExitGuard
from sparktui.ui.grammar import GrammarApp
from sparktui.ui.keys import binding_keys
from sparktui.ui.messages import DeployReady, FleetChanged, TelemetryUpdated
from sparktui.ui.palette import app_commands
from sparktui.ui.panes import (
    PANES,
    ChatPane,
    DevicesPane,
    PaneSpec,
    ShowsTelemetry,
    TunnelsPane,
)
from sparktui.ui.screens import ConfirmScreen, HelpScreen, HostKeyScreen
from sparktui.ui.screens.help import collect_key_help
from sparktui.ui.screens.settings import AppliesSettings, SettingsScreen, remember_settings
from sparktui.ui.telemetry.memory import MemoryScreen
from sparktui.ui.telemetry.postmortem import PostmortemScreen
from sparktui.ui.themes import DEFAULT_THEME, load_themes
from sparktui.ui.widgets.clipboard import ClipboardReach
from sparktui.ui.widgets.pane_common import SessionPane
from sparktui.ui.widgets.worker_log import LogsWorkerFailures

if TYPE_CHECKING:
    from sparktui.services.demo import DemoDevice

log = logging.getLogger(__name__)

#: screens and widgets the panes open, whose binding ids a keymap may remap
PANE_SCREENS: tuple[type[DOMNode], ...] = (
    ContainerLogsScreen, ImagesScreen, DeployScreen, ConfirmDialog,
    ChatHistoryScreen, ChatEndpointScreen, ChatInput, ChatMessageView, MemoryScreen,
    PostmortemScreen)

#: narrower than this, the shell lays out for a tmux side pane
COMPACT_BELOW_COLUMNS = 80


def _tab_bindings() -> list[Binding]:
    # not in the footer: the tab labels show them. priority: switched the moment the key
    # is read, so what is typed next reaches the new tab (see GrammarApp.check_action)
    return [Binding(pane.key, f"show_tab('{pane.id}')", pane.title, show=False,
                    priority=True, id=f"app.tab.{pane.id}",
                    tooltip=f"Show the {pane.title} tab") for pane in PANES]


class SparkApp(LogsWorkerFailures, AppliesSettings, GrammarApp):
    """The full-screen shell around the panes."""

    CSS_PATH = ["app.tcss", *(pane.css_path for pane in PANES)]
    BINDINGS = [
        *_tab_bindings(),
        Binding("question_mark", "help", "Help", id="app.help"),
        # not in the footer (it is full): ? and the palette list them
        Binding("ctrl+n", "next_device", "Next device", show=False, id="app.device.next"),
        Binding("ctrl+s", "settings", "Settings", show=False, id="app.settings"),
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True,
                id="app.palette"),
    ]

    compact: reactive[bool] = reactive(False)
    #: the device every pane shows first; `app.device.next` cycles it (panes watch it)
    focused_device: reactive[str | None] = reactive(None)

    def __init__(self, config: Config, specs: Sequence[DeviceSpec] = (), *,
                 fleet: Fleet | None = None, demo: bool = False, demo_port: int = 0,
                 accept_new_host_keys: bool = False, read_only: bool | None = None,
                 compact: bool | None = None, theme_dirs: Sequence[Path] | None = None,
                 telemetry: TelemetryHub | None = None, persist: bool = False,
                 restore: SessionState | None = None, state_path: Path | None = None,
                 session: Session | None = None, link_policy: str = "start") -> None:
        super().__init__()
        #: everything the panes show and act on; an injected one (the CLI's demo sandbox)
        #: comes with its own store
        self.session = session if session is not None else Session(
            config, specs, store=ConfigStore(config.path, state_path=state_path), fleet=fleet,
            telemetry=telemetry, read_only=read_only,
            accept_new_host_keys=accept_new_host_keys, demo=demo, demo_port=demo_port,
            restore=restore, link_policy=link_policy)
        self.confirm_quit = self.settings.confirm_quit
        #: remember theme switches and the session on quit (the real app; tests opt in)
        self.persist = persist
        #: None follows the terminal width; True/False forces the layout
        self.compact_setting = self.settings.compact if compact is None else compact
        if self.telemetry.gb10 is None:  # guards, flight recorder, post-mortems
            # the demo's sandbox keeps no recordings in the user's data dir
            keep = persist and self.session.sandbox is None
            self.telemetry.gb10 = make_gb10(self.telemetry.settings, keep=keep)
        self.telemetry.gb10.on_report.append(self._postmortem_ready)
        #: the newest DeviceTelemetry per device, as handed to the panes
        self.telemetry_states: dict[str, DeviceTelemetry] = {}
        self._telemetry_panes: list[ShowsTelemetry] = []
        self._banner_lines: list[tuple[str, readings.Level]] = []
        self._alerts = readings.AlertBoard()
        self.title = f"sparktui {__version__}"
        self.sub_title = "read-only" if self.read_only else ""
        self._session_worker: Worker[None] | None = None
        self._session_closed = False
        self._quitting = False
        #: ends the process if an exit cannot finish (run_tui sets it; tests leave it None)
        self.exit_guard: ExitGuard | None = None
        self._reported_clashes: set[frozenset[str]] = set()
        self._tabs_ready = False  # until on_mount: a tab key waits for the first frame

        self._default_keys = binding_keys(
            [type(self), GrammarApp, *(p.widget for p in PANES if isinstance(p.widget, type)),
             HelpScreen, HostKeyScreen, ConfirmScreen, *DEVICE_SCREENS, *PANE_SCREENS])
        self._keymap_problems = [
            f"keymap: no binding has the id {binding_id!r} (known: "
            f"{', '.join(sorted(self._default_keys))})"
            for binding_id in self.settings.keymap if binding_id not in self._default_keys]
        self.user_keymap = {k: v for k, v in self.settings.keymap.items()
                            if k in self._default_keys}
        self.set_keymap(self.user_keymap)
        if "app.palette" in self.user_keymap:
            # the footer finds the palette key by this name
            self.COMMAND_PALETTE_BINDING = self._first_key("app.palette")

        # theme files are tiny and read before the app runs, not on its event loop
        loaded = load_themes(None if theme_dirs is None else list(theme_dirs))
        self._theme_problems = loaded.problems
        self.sparktui_themes = list(loaded.themes)
        for theme in loaded.themes.values():
            self.register_theme(theme)

    # -- the session, as the panes and tests read it ---------------------------------------
    @property
    def config(self) -> Config:
        return self.session.config

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def fleet(self) -> Fleet:
        return self.session.fleet

    @property
    def telemetry(self) -> TelemetryHub:
        return self.session.telemetry

    @property
    def demo(self) -> DemoDevice | None:
        return self.session.demo

    @property
    def read_only(self) -> bool:
        return self.session.read_only

    # -- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(id="header")
        yield Static(id="alert-banner")
        with TabbedContent(id="tabs", initial=PANES[0].id):
            for pane in PANES:
                with TabPane(self._tab_label(pane, compact=False), id=pane.id):
                    yield pane.build(self.session).data_bind(SparkApp.compact,
                                                             SparkApp.focused_device)
        yield Footer(id="footer")

    def _tab_label(self, pane: PaneSpec, *, compact: bool) -> str:
        key = self.key_for(f"app.tab.{pane.id}") or pane.key
        return f"{key} {pane.short_title if compact else pane.title}"

    def on_mount(self) -> None:
        self._telemetry_panes = [
            widget for pane in PANES
            if isinstance(widget := self.query_one(f"#{pane.id}-pane"), ShowsTelemetry)]
        self.query_one("#alert-banner", Static).display = False
        self._select_theme()
        self._persisted_theme = self.theme  # a switch away from it is saved to the config
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_class(self.read_only, "-read-only")
        self._update_compact(self.size.width)
        for problem in [*self.config.problems, *self._theme_problems, *self._keymap_problems]:
            # config mistakes are shown, not hidden: the app runs on defaults meanwhile
            self.notify(problem, title="configuration", severity="warning", timeout=20,
                        markup=False)
        # The devices are known (and their telemetry services made) at once; they start
        # connecting once the first frame is on screen: that imports asyncssh (and, for
        # the demo, the simulated Spark), a few hundred ms that the user should spend
        # looking at the app, not at a blank terminal.
        self.run_worker(self._check_clipboard, name="clipboard-check", thread=True,
                        exit_on_error=False)
        self.session.host_key_prompt = self.ask_host_key
        self.session.subscribe_telemetry(self._telemetry_listener)
        self.session.subscribe_fleet(self._fleet_listener)
        self.session.add_configured_links()
        first_frame = asyncio.Event()
        self.call_after_refresh(first_frame.set)
        self._session_worker = self.run_worker(self._open_session(first_frame),
                                               name="session", exit_on_error=False)
        self.watch(self.query_one(TabbedContent), "active", self._on_active_tab, init=True)
        # Closing the terminal (SIGHUP) must clean up like `q` does: the demo's temp
        # dir holds a private key, and tunnels must not stay bound.
        loop = asyncio.get_running_loop()
        try:
            signal.signal(signal.SIGHUP,
                          lambda *_: self._terminal_lost("SIGHUP", loop))
        except ValueError:  # not the main thread (an embedding or a test): nothing to do
            log.debug("no SIGHUP handler: the app runs outside the main thread")
        self._focus_pane(PANES[0].id)
        # the Tabs pick their first tab when they mount, after this (see action_show_tab)
        self.call_after_refresh(setattr, self, "_tabs_ready", True)

    def _terminal_lost(self, why: str, loop: asyncio.AbstractEventLoop) -> None:
        """The terminal is gone: exit, and never wait on it for more than the guard's bound."""
        if self.exit_guard is not None:
            self.exit_guard.arm(why, EXIT_TERMINAL_LOST)
        loop.call_soon_threadsafe(self.exit, None, EXIT_TERMINAL_LOST)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every toast (widgets' notify lands here too) crosses strip_control: toasts
        quote container names, daemon errors and SSH reasons."""
        super().notify(strip_control(message, keep_newlines=True), title=strip_control(title),
                       severity=severity, timeout=timeout, markup=markup)

    def exit(self, result: None = None, return_code: int = 0,
             message: object | None = None) -> None:
        # however the exit began (q, the palette, a signal, a crash), it ends in bounded time
        if self.exit_guard is not None:
            self.exit_guard.arm("exit", return_code)
        super().exit(result, return_code, message)  # type: ignore[arg-type]

    def on_resize(self, event: events.Resize) -> None:
        self._update_compact(event.size.width)

    @staticmethod
    def _check_clipboard() -> None:
        # a subprocess (tmux): in a thread, never on the event loop
        if not tmux_passes_copies():
            ClipboardReach.passes = False
            ClipboardReach.why_not = "tmux drops copies: set -g set-clipboard on"

    def _update_compact(self, width: int) -> None:
        setting = self.compact_setting
        self.compact = setting if setting is not None else width < COMPACT_BELOW_COLUMNS

    def watch_compact(self, compact: bool) -> None:
        self.set_class(compact, "-compact")
        if not self.is_mounted:
            return
        tabs = self.query_one(TabbedContent)
        for pane in PANES:
            tabs.get_tab(pane.id).label = self._tab_label(pane, compact=compact)
        self.query_one(Footer).compact = compact

    def _select_theme(self) -> None:
        wanted = self.settings.theme
        if wanted in self.available_themes:
            self.theme = wanted
            return
        self.notify(f"theme {wanted!r} not found; using {DEFAULT_THEME} "
                    f"(available: {', '.join(sorted(self.sparktui_themes))})",
                    title="configuration", severity="warning", timeout=20, markup=False)
        if DEFAULT_THEME in self.available_themes:
            self.theme = DEFAULT_THEME

    # -- keys ----------------------------------------------------------------------
    def _first_key(self, binding_id: str) -> str | None:
        keys = self.user_keymap.get(binding_id) or self._default_keys.get(binding_id)
        return keys.split(",")[0].strip() if keys else None

    def keys_for(self, binding_id: str) -> list[str]:
        """Every key bound to `binding_id` now (Textual key names), after the keymap."""
        keys = self.user_keymap.get(binding_id) or self._default_keys.get(binding_id) or ""
        return [key.strip() for key in keys.split(",") if key.strip()]

    def key_for(self, binding_id: str) -> str | None:
        """The key that runs `binding_id` now (after the keymap), as the footer shows it."""
        key = self._first_key(binding_id)
        return self.get_key_display(Binding(key, "")) if key else None

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node: DOMNode) -> None:
        # called on every key press while the clash stands: say it once
        ids = frozenset(b.id or b.action for b in clashed_bindings)
        if ids in self._reported_clashes:
            return
        self._reported_clashes.add(ids)
        self.notify(f"keymap: {', '.join(sorted(ids))} are bound to the same key; "
                    "only one of them works", title="configuration", severity="warning",
                    timeout=20, markup=False)

    # -- session -------------------------------------------------------------------
    async def _open_session(self, first_frame: asyncio.Event) -> None:
        await first_frame.wait()
        for problem in await self.session.open():
            self.notify(problem, title="demo", severity="error", timeout=30, markup=False)
        self._restore_view()
        if self.focused_device is None and self.fleet.links:
            self.focused_device = self.fleet.links[0].name

    def _restore_view(self) -> None:
        """Bring back the last session's tab and focused device (once links exist)."""
        state = self.session.restore_state
        if state is None:
            return
        names = [link.name for link in self.fleet.links]
        if state.focused in names:
            self.focused_device = state.focused
        if state.tab in {pane.id for pane in PANES}:
            self.action_show_tab(state.tab)
        elif state.tab:
            log.warning("last session's tab %r does not exist any more", state.tab)

    def _current_tab(self) -> str | None:
        try:
            return self.query_one(TabbedContent).active or None
        except (NoMatches, ScreenStackError):  # the screen is already gone (the app is ending)
            return None

    def _fleet_listener(self) -> None:
        # called by the session on the event loop: every pane adopts the new links
        for pane in PANES:
            with contextlib.suppress(NoMatches):  # the app is tearing its screens down
                self.query_one(f"#{pane.id}-pane").post_message(FleetChanged())

    def on_session_pane_focus_device(self, message: SessionPane.FocusDevice) -> None:
        self.focused_device = message.device  # every pane follows through data_bind

    # -- the deploy's offer ------------------------------------------------------------------
    def on_deploy_ready(self, message: DeployReady) -> None:
        self.run_worker(self._accept_deploy(message), name="deploy-offer", exit_on_error=False)

    async def _accept_deploy(self, message: DeployReady) -> None:
        """Make what the deploy offered: a tunnel to the server, and a chat endpoint."""
        info = message.info
        name = info.container if isinstance(info, DeployedServer) else f"server-{message.port}"
        try:
            result = await self.session.add_deploy_tunnel(message.device, message.port, name)
        except Exception as exc:  # the endpoint is still worth adding
            log.exception("the deploy's tunnel was not made")
            self.notify(f"no tunnel to {message.base_url}: {exc}", title="deploy",
                        severity="error", markup=False)
        else:
            url = result.tunnel.url or message.base_url
            self.notify(f"tunnel {result.tunnel.spec.name}: {url}", title="deploy",
                        markup=False)
        endpoint = manual_spec(message.base_url, device=message.device, name=name)
        await self.query_one(ChatPane).use_endpoint(endpoint)

    def watch_focused_device(self, name: str | None) -> None:
        # with Prometheus as the source, a device connects only once someone looks at it
        # (its containers, tunnels and chat need the connection; its figures do not)
        if self.session.link_policy == "on_select" and name is not None:
            link = self.fleet.get(name)
            if link is not None and link.generation == 0:
                link.start()

    def _postmortem_ready(self, report: PostMortem) -> None:
        key = "P"
        self.notify(f"{report.device} came back: {report.verdict.cause.value}. "
                    f"{report.verdict.summary} ({key} on the Telemetry tab shows the "
                    "post-mortem)", title="post-mortem", severity="error", timeout=30,
                    markup=False)

    # -- telemetry -----------------------------------------------------------------------
    def _telemetry_listener(self, state: DeviceTelemetry) -> None:
        # called by the service on the event loop: only queue a message, draw later
        self.post_message(TelemetryUpdated(state))

    def on_telemetry_updated(self, message: TelemetryUpdated) -> None:
        state = message.telemetry
        previous = self.telemetry_states.get(state.device)
        self.telemetry_states[state.device] = state
        self._update_banner(state)
        if previous is not None and state.events is not previous.events:
            self._announce(previous.events, state.events)
        for pane in self._telemetry_panes:
            # a tick can still be queued while the app tears its screens down
            if pane.is_attached:
                pane.show_telemetry(state)

    def _announce(self, before: tuple[DeviceEvent, ...], now: tuple[DeviceEvent, ...]) -> None:
        """Toast the new events worth it (guard steps, Xids, power advice) on any screen."""
        last = before[-1] if before else None
        at = next((i for i in range(len(now) - 1, -1, -1) if now[i] is last), -1)
        for event in now[at + 1:]:
            # the guard's routine reclaims stay in the memory view; its stops, Xids and
            # power advice are news wherever the user is
            if event.severity is Severity.INFO or (event.severity is Severity.WARNING
                                                   and event.kind == "guard"):
                continue
            self.notify(strip_control(event.text, max_line=400),
                        title=f"{strip_control(event.device, max_line=40)}: {event.kind}",
                        severity="error" if event.severity is Severity.ALARM else "warning",
                        timeout=20, markup=False)

    def _update_banner(self, state: DeviceTelemetry) -> None:
        lines = self._alerts.update(state)
        if lines == self._banner_lines:
            return
        self._banner_lines = lines
        banner = self.query_one("#alert-banner", Static)
        banner.display = bool(lines)
        text = Text(end="")
        for i, (line, level) in enumerate(lines):
            if i:
                text.append("\n")
            text.append("⚠ " + line, "bold" if level is readings.Level.ERROR else "")
        banner.update(text)
        banner.set_class(any(level is readings.Level.ERROR for _, level in lines), "-error")

    @property
    def banner_text(self) -> str:
        """What the alert banner says now; empty when hidden."""
        return "\n".join(line for line, _ in self._banner_lines)

    async def on_unmount(self) -> None:
        # however the app ends (quit, crash, a test harness), nothing is left running
        await self.close_session()

    async def close_session(self) -> None:
        """Stop opening, close every link, stop the demo. Safe to call twice."""
        if self._session_closed:
            return
        self._session_closed = True
        if self.persist:  # before the links go: it lists them
            await self.session.save(tab=self._current_tab(), focused=self.focused_device)
        worker = self._session_worker
        if worker is not None and not worker.is_finished:
            worker.cancel()
            with contextlib.suppress(WorkerCancelled):
                await worker.wait()
        await self.session.close()

    async def ask_host_key(self, offer: UnknownHostKey) -> bool:
        """Ask the user to trust an unknown host key (the links' HostKeyPrompt)."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def settle(accepted: bool | None) -> None:
            if not answer.done():
                answer.set_result(bool(accepted))

        await self.push_screen(HostKeyScreen(offer), callback=settle)
        return await answer

    # -- actions ---------------------------------------------------------------------
    def action_show_tab(self, tab_id: str) -> None:
        tabs = self.query_one(TabbedContent)
        if not self._tabs_ready:  # the tabs would undo it when they pick their first
            self.call_after_refresh(self.action_show_tab, tab_id)
            return
        tabs.active = tab_id
        self._focus_pane(tab_id)  # at once: the letters typed next reach the new tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # keys and mouse both land here: give the new pane the focus so its keys work
        if event.pane.id is not None:
            self._focus_pane(event.pane.id)

    def _on_active_tab(self, tab_id: str) -> None:
        # the process list costs the devices an nvidia-smi start per poll: poll
        # briskly only while the Telemetry tab (which shows it) is in front
        self.telemetry.watch_processes(tab_id == "telemetry")

    def _focus_pane(self, tab_id: str) -> None:
        pane = self.query_one(f"#{tab_id}-pane")
        spec = next(p for p in PANES if p.id == tab_id)  # its choice (Chat: the prompt)
        chosen = pane.query(spec.focus) if spec.focus else None
        target = chosen.first() if chosen else next(
            (w for w in pane.query("*") if isinstance(w, Widget) and w.focusable), None)
        if target is not self.focused:
            self.set_focus(target)

    def action_next_device(self) -> None:
        names = [link.name for link in self.fleet.links]
        if not names:
            self.notify("No devices yet.", severity="warning")
            return
        current = self.focused_device
        index = names.index(current) + 1 if current in names else 0
        self.focused_device = names[index % len(names)]

    def action_settings(self) -> None:
        if isinstance(self.screen, SettingsScreen):
            return
        self.push_screen(SettingsScreen(self.settings, self.config.path,
                                        list(self.available_themes)),
                         callback=self.apply_settings)

    def set_read_only(self, read_only: bool) -> None:
        """Turn read-only on for the running session (the settings screen's switch)."""
        self.session.set_read_only(read_only)
        self.set_class(read_only, "-read-only")
        self.sub_title = "read-only" if read_only else ""
        self.refresh_bindings()

    def _remember_theme(self, theme) -> None:
        if theme.name == self._persisted_theme:
            return
        self._persisted_theme = self.settings.theme = theme.name
        if self.persist:
            remember_settings(self, self.config.path, theme=theme.name)

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        rows = collect_key_help(self, self.screen.active_bindings)
        self.push_screen(HelpScreen(rows))

    def action_retry_selected(self) -> None:
        self.query_one(DevicesPane).action_retry()

    def quit_would_end(self) -> list[str]:
        cut = [f"tunnel {name}" for name in self.query_one(TunnelsPane).live_tunnels()]
        if self.query_one(ChatPane).streaming:
            cut.append("the answer being streamed in Chat")
        return cut

    async def action_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.notify("Closing connections…", timeout=5)
        # in a worker: the screen keeps drawing while SSH connections say goodbye
        self.run_worker(self._close_then_exit(), name="quit", group="quit")

    async def _close_then_exit(self) -> None:
        await self.close_session()
        self.exit()

    # -- command palette -----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from app_commands(self)
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):  # ours close the session / list all
                yield command
