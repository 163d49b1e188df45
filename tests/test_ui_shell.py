"""The shell, driven with Textual's Pilot over fleets that never touch the network."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TabbedContent

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, FailureKind, LinkState, LinkStatus
from sparktui.services.config import Config, Settings
from sparktui.services.devices import Fleet
from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
from sparktui.services.telemetry import TelemetryHub, TelemetryService
from sparktui.transport.base import Transport
from sparktui.transport.local import LocalTransport
from sparktui.transport.ssh_types import UnknownHostKey
from sparktui.ui.app import SparkApp
from sparktui.ui.messages import LinkStatusChanged
from sparktui.ui.panes import PANES, DevicesPane
from sparktui.ui.screens import HelpScreen, HostKeyScreen
from tests.infra.pilot import wait_until

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"
#: backoff long enough that a test sees exactly one wait, with no jitter
SLOW_BACKOFF = Backoff(initial=60.0, jitter=0.0, cap=60.0)


# -- fake links: real DeviceLinks over connectors that stay on this machine ------------
class LocalConnector:
    """Hands out LocalTransports and keeps them, so a test can check they were closed."""

    def __init__(self, name: str, gate: asyncio.Event | None = None) -> None:
        self.name = name
        self.gate = gate
        self.transports: list[LocalTransport] = []

    async def __call__(self) -> Transport:
        if self.gate is not None:
            await self.gate.wait()
        transport = LocalTransport(self.name)
        self.transports.append(transport)
        return transport


class FailingConnector:
    def __init__(self, kind: FailureKind, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        self.calls = 0

    async def __call__(self) -> Transport:
        self.calls += 1
        raise ConnectFailure(self.kind, self.reason)


class DroppingConnector:
    """Connects once to a connection that is already gone, then never answers again."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    async def __call__(self) -> Transport:
        self.calls += 1
        if self.calls > 1:
            await asyncio.Event().wait()
        transport = LocalTransport(self.name)
        await transport.close()
        return transport


async def _never_connects() -> Transport:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def link(name: str, connector: Callable, host: str | None = None,
         port: int | None = None, user: str | None = None) -> DeviceLink:
    spec = DeviceSpec(name=name, host=host or f"{name}.lan", port=port, user=user)
    return DeviceLink(spec, connector, backoff=SLOW_BACKOFF)


class QuietHub(TelemetryHub):
    """A hub whose services never start: the shell's pictures must not show this
    machine's own CPU and memory (the fake links connect to it)."""

    def attach(self, link: DeviceLink) -> TelemetryService:
        service = self.services.get(link.name)
        if service is None:
            service = self.services[link.name] = TelemetryService(link, self.settings)
        return service


def make_app(links: Sequence[DeviceLink] = (), settings: Settings | None = None,
             problems: Sequence[str] = (), *, live_telemetry: bool = False,
             **kwargs) -> SparkApp:
    """An app over `links`; telemetry is attached but silent unless live_telemetry."""
    settings = settings or Settings()
    config = Config(path=Path("/nonexistent/sparktui.toml"), settings=settings,
                    problems=list(problems))
    kwargs.setdefault("theme_dirs", [REPO_THEMES])
    if not live_telemetry:
        read_only = kwargs.get("read_only")
        kwargs.setdefault("telemetry", QuietHub(dataclasses.replace(
            settings, read_only=settings.read_only if read_only is None else read_only)))
    app = SparkApp(config, fleet=Fleet(links), **kwargs)
    app.title = "sparktui"  # the version would make every snapshot stale at each release
    return app


def fixed_fleet() -> list[DeviceLink]:
    """Four devices whose states settle and stay: connected, connecting, reconnecting, failed."""
    return [
        link("spark-01", LocalConnector("spark-01"), user="nvidia"),
        link("spark-02", _never_connects, host="10.20.0.12", port=2222),
        link("spark-03", DroppingConnector("spark-03"), user="lab"),
        link("spark-04", FailingConnector(
            FailureKind.AUTH, "authentication failed for spark-04.lan: no key was accepted "
            "(check IdentityFile, ssh-agent, and the device's authorized_keys)")),
    ]


FIXED_STATES = [LinkState.CONNECTED, LinkState.CONNECTING, LinkState.RECONNECTING,
                LinkState.FAILED]


async def wait_for_fixed_states(pilot: Pilot) -> None:
    links = pilot.app.fleet.links  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: [x.status.state for x in links] == FIXED_STATES)


def state_cell(app: SparkApp, index: int) -> str:
    table = app.query_one("#devices-table", DataTable)
    return table.get_cell(str(index), "state").plain


def active_tab(app: SparkApp) -> str:
    return app.query_one(TabbedContent).active


# -- tabs --------------------------------------------------------------------------------
async def test_number_keys_and_clicks_switch_tabs() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        # Chat last: its prompt takes the focus, and digits typed there are text
        for pane in sorted(PANES, key=lambda pane: pane.id == "chat"):
            await pilot.press(pane.key)
            assert active_tab(app) == pane.id
        await pilot.press("4")
        assert active_tab(app) == "chat"  # typed into the prompt, not a tab switch
        await pilot.click("#--content-tab-tunnels")
        assert active_tab(app) == "tunnels"
        await pilot.press("1")
        assert active_tab(app) == "devices"
        assert app.focused is app.query_one("#devices-table")  # so `r` works at once


async def test_placeholder_panes_point_to_working_keys() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        for pane in [p for p in PANES if p.id not in ("devices", "telemetry", "containers")]:
            await pilot.press(pane.key)
            text = str(app.query_one(f"#{pane.id}-pane .pane-intro", Static).render())
            assert pane.title in text
            assert "1     Devices" in text and "?     every key" in text


# -- help ----------------------------------------------------------------------------------
@pytest.mark.parametrize("close_key", ["escape", "question_mark", "q"])
async def test_help_lists_the_keys_in_force(close_key: str) -> None:
    app = make_app([link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = {(row.key, row.description) for row in app.screen.rows}
        assert {("?", "Help"), ("q", "Quit"), ("r", "Retry now"), ("1", "Devices"),
                ("5", "Chat"), ("^p", "Palette")} <= shown
        assert {row.binding_id for row in app.screen.rows} >= {"app.help", "devices.retry"}
        await pilot.press(close_key)
        assert not isinstance(app.screen, HelpScreen)
        assert app.is_running  # q closed help, it did not quit


# -- command palette ----------------------------------------------------------------------
async def test_palette_reaches_every_action() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {f"Go to {pane.title}" for pane in PANES} <= titles
        assert {"Help: keys", "Retry selected device", "Quit"} <= titles
        for theme in ("sparktui-dark", "sparktui-light", "sparktui-high-contrast",
                      "sparktui-mono16"):
            assert f"Theme: {theme}" in titles

        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*("space" if c == " " else c for c in "go to chat"))
        commands = app.screen.query_one(CommandList)
        # the palette searches in the background
        await wait_until(pilot, lambda: commands.option_count > 0
                         and "Go to Chat" in str(commands.get_option_at_index(0).prompt))
        await pilot.press("enter")
        await wait_until(pilot, lambda: active_tab(app) == "chat")


async def test_palette_has_every_tab_key_and_runs_it_on_its_tab() -> None:
    from textual.binding import Binding

    from sparktui.ui.palette import COVERED_ELSEWHERE
    from sparktui.ui.tunnels.form import TunnelForm

    app = make_app([link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for pane in PANES:
            for binding in pane.widget.BINDINGS:
                assert isinstance(binding, Binding)
                assert binding.id in COVERED_ELSEWHERE or \
                    f"{pane.title}: {binding.description}" in commands, binding.id
        assert "key ^t" in commands["Chat: New chat"].help
        # from the Devices tab, "Tunnels: Add" opens the Tunnels tab's form
        await pilot.press("ctrl+p")
        await pilot.press(*("space" if c == " " else c for c in "tunnels: add"))
        found = app.screen.query_one(CommandList)
        await wait_until(pilot, lambda: found.option_count > 0
                         and "Tunnels: Add" in str(found.get_option_at_index(0).prompt))
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TunnelForm))
        assert active_tab(app) == "tunnels"


async def test_theme_command_switches_theme() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "sparktui-dark"
        command = next(c for c in app.get_system_commands(app.screen)
                       if c.title == "Theme: sparktui-mono16")
        command.callback()
        await pilot.pause()
        assert app.theme == "sparktui-mono16"


# -- quitting --------------------------------------------------------------------------------
@pytest.mark.parametrize("quit_key", ["q", "ctrl+c"])
async def test_quit_closes_every_link(quit_key: str) -> None:
    connectors = [LocalConnector("spark-01"), LocalConnector("spark-02")]
    failing = FailingConnector(FailureKind.UNREACHABLE, "no route to host")
    links = [link(c.name, c) for c in connectors] + [link("spark-03", failing)]
    app = make_app(links)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: links[0].status.state is LinkState.CONNECTED
                         and links[1].status.state is LinkState.CONNECTED
                         and links[2].status.state is LinkState.RECONNECTING)
        await pilot.press(quit_key)
        await wait_until(pilot, lambda: not app.is_running)
    assert app.return_code == 0
    assert all(x.status.state is LinkState.CLOSED for x in links)
    assert all(not t.is_alive() for c in connectors for t in c.transports)
    assert all(c.transports for c in connectors)


# -- keymap ------------------------------------------------------------------------------------
async def test_keymap_from_settings_rebinds_keys() -> None:
    settings = Settings(keymap={"app.help": "f1", "app.tab.chat": "c", "devices.retry": "t",
                                "no.such.binding": "x"})
    app = make_app([link("spark-01", FailingConnector(FailureKind.AUTH, "no key"))],
                   settings=settings)
    notes: list[tuple[str, str]] = []
    real_notify = app.notify
    app.notify = lambda message, **kw: (notes.append((message, kw.get("severity", ""))),
                                        real_notify(message, **kw))[1]  # type: ignore
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        keys = {(row.key, row.description) for row in app.screen.rows}
        assert {("f1", "Help"), ("t", "Retry now")} <= keys
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.fleet.links[0].status.state is LinkState.FAILED)
        assert "press t to try again" in str(app.query_one("#device-detail", Static).render())
        await pilot.press("c")
        assert active_tab(app) == "chat"
        assert app.query_one(TabbedContent).get_tab("chat").label.plain == "c Chat"
    assert any("no.such.binding" in message and severity == "warning"
               for message, severity in notes)


# -- the devices table ---------------------------------------------------------------------------
async def test_state_column_follows_the_link() -> None:
    gate = asyncio.Event()
    gated = LocalConnector("spark-01", gate)
    unreachable = FailingConnector(FailureKind.UNREACHABLE, "cannot reach spark-02.lan")
    links = [link("spark-01", gated), link("spark-02", unreachable)]
    app = make_app(links)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(DevicesPane)
        await wait_until(pilot, lambda: state_cell(app, 0) == "connecting…")
        await wait_until(pilot, lambda: state_cell(app, 1).startswith("reconnecting"))
        # 60 s, or 59 s when a second went by before the cell was read (a loaded machine)
        assert re.search(r"next try in (59|60) s", state_cell(app, 1))
        assert "cannot reach spark-02.lan" in state_cell(app, 1)
        assert pane.countdown_running  # a retry is pending: the countdown ticks
        await wait_until(pilot, lambda: "next try in 59 s" in state_cell(app, 1), timeout=3)

        gate.set()
        await wait_until(pilot, lambda: state_cell(app, 0) == "connected")

        # r on the selected (unreachable) device tries again at once, skipping the 60 s
        await pilot.press("down")
        detail = str(app.query_one("#device-detail", Static).render())
        assert "spark-02" in detail and "cannot reach spark-02.lan" in detail
        await pilot.press("r")
        await wait_until(pilot, lambda: unreachable.calls == 2)

        await links[1].close()
        await wait_until(pilot, lambda: state_cell(app, 1) == "closed")
        assert not pane.countdown_running  # nothing to count down: no idle redraws


async def test_device_text_is_never_markup() -> None:
    name = "[bold red]x[/]"
    app = make_app([link(name, LocalConnector(name), host="[link=evil]h")])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: state_cell(app, 0) == "connected")
        table = app.query_one("#devices-table", DataTable)
        assert table.get_cell("0", "name").plain == name
        detail = str(app.query_one("#device-detail", Static).render())
        assert name in detail
        assert name in "".join(strip.text for strip in app.screen._compositor.render_strips())


def test_status_bursts_coalesce_per_device() -> None:
    first, second = link("a", _never_connects), link("b", _never_connects)
    older = LinkStatusChanged(first, LinkStatus(LinkState.CONNECTING))
    assert older.can_replace(LinkStatusChanged(first, LinkStatus(LinkState.CONNECTED)))
    assert not older.can_replace(LinkStatusChanged(second, LinkStatus(LinkState.CONNECTED)))


# -- host keys -----------------------------------------------------------------------------------
OFFER = UnknownHostKey(host="spark-07.lan", port=2222, key_type="ssh-ed25519",
                       fingerprint="SHA256:q1w2e3r4t5y6u7i8o9p0AbCdEfGhIjKlMnOpQrStUvW",
                       known_hosts_path="/home/me/.ssh/known_hosts")


@pytest.mark.parametrize(("key", "accepted"), [("y", True), ("escape", False), ("n", False)])
async def test_host_key_modal_returns_the_choice(key: str, accepted: bool) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        answer = asyncio.create_task(app.ask_host_key(OFFER))
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        shown = "".join(strip.text for strip in app.screen._compositor.render_strips())
        for fact in ("spark-07.lan:2222", "ssh-ed25519", OFFER.fingerprint,
                     OFFER.known_hosts_path, "Accept (y)", "Reject (n)"):
            assert fact in shown
        await pilot.press(key)
        assert await within(answer, 5) is accepted
        assert not isinstance(app.screen, HostKeyScreen)


async def test_host_key_enter_does_not_accept() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        answer = asyncio.create_task(app.ask_host_key(OFFER))
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        await pilot.press("enter")  # the focused button is Reject
        assert await within(answer, 5) is False


# -- start-up -------------------------------------------------------------------------------------
async def test_config_problems_are_shown_as_warnings() -> None:
    problem = "/etc/sparktui.toml:3: refresh_interval must be int or float, got 'x'"
    app = make_app(problems=[problem])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        notes = [(n.message, n.severity) for n in app._notifications]
        assert (problem, "warning") in notes


async def test_unknown_theme_falls_back_to_sparktui_dark() -> None:
    app = make_app(settings=Settings(theme="no-such-theme"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "sparktui-dark"
        assert any("no-such-theme" in n.message for n in app._notifications)


async def test_read_only_is_visible() -> None:
    app = make_app(read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.has_class("-read-only")
        top = app.screen._compositor.render_strips()[0].text
        assert "read-only" in top


@pytest.mark.parametrize(("size", "forced", "compact"), [
    ((120, 40), None, False), ((50, 40), None, True), ((120, 40), True, True),
    ((50, 40), False, False)])
async def test_compact_mode(size: tuple[int, int], forced: bool | None, compact: bool) -> None:
    app = make_app([link("spark-01", LocalConnector("spark-01"))], compact=forced)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert app.has_class("-compact") is compact
        label = app.query_one(TabbedContent).get_tab("devices").label.plain
        assert label == ("1 Dev" if compact else "1 Devices")
        columns = [str(c.key.value) for c in app.query_one("#devices-table", DataTable)
                   .columns.values()]
        # below 100 columns the address gives way to State and Power (detail line has it)
        assert ("address" in columns) is (not compact and size[0] >= 100)
        # the palette key sits on the right edge, covering the bindings scrolled under it
        # (the footer recomposes when the bindings in force settle: query it afresh)
        await wait_until(pilot, lambda: app.query_one(
            "Footer FooterKey.-command-palette").region.right == size[0],
                         what="the palette key at the right edge")


async def test_goes_compact_when_the_terminal_narrows() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.compact
        await pilot.resize_terminal(50, 40)
        await wait_until(pilot, lambda: app.compact)
        await pilot.resize_terminal(100, 40)
        await wait_until(pilot, lambda: not app.compact)


async def test_leaving_the_app_any_way_closes_the_session() -> None:
    connector = LocalConnector("spark-01")
    links = [link("spark-01", connector)]
    app = make_app(links)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: links[0].status.state is LinkState.CONNECTED)
    # no q: the harness just stopped the app
    assert links[0].status.state is LinkState.CLOSED
    assert not connector.transports[0].is_alive()
