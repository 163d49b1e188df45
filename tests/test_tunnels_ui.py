"""The Tunnels tab, driven with Pilot: the form, the keys, restore at start, quitting.

Most tests use a local device (LocalTransport: "the device" is this machine, so
its localhost:PORT is a server of this test); the restore test uses a real sshd.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select

from sparktui.core.device import DeviceSpec
from sparktui.services.config import load_config
from sparktui.services.devices import Fleet
from sparktui.services.link import DeviceLink
from sparktui.services.tunnels import TunnelSpec, TunnelState
from sparktui.ui.app import SparkApp
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.tunnels.form import TunnelForm
from sparktui.ui.tunnels.pane import TunnelsIntro, TunnelsPane
from tests.infra.pilot import wait_until
from tests.test_tunnels_sshd import BODY, fetch, http_port, port_is_bindable
from tests.test_ui_shell import REPO_THEMES, LocalConnector, _never_connects, link

__all__ = ["http_port"]  # the fixture, imported for its name


def tunnels_app(tmp_path: Path, links: list[DeviceLink], config_text: str = "",
                specs: tuple[DeviceSpec, ...] = ()) -> SparkApp:
    path = tmp_path / "config.toml"
    path.write_text(config_text)
    app = SparkApp(load_config(path), list(specs), fleet=Fleet(links) if links else None,
                   theme_dirs=[REPO_THEMES])
    app.title = "sparktui"
    return app


def pane_of(app: SparkApp) -> TunnelsPane:
    return app.query_one(TunnelsPane)


def rows(app: SparkApp) -> list[list[str]]:
    table = app.query_one("#tunnels-table", DataTable)
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


def notifications(app: SparkApp) -> list[str]:
    return [n.message for n in app._notifications]


async def open_tab(pilot: Pilot) -> TunnelsPane:
    await pilot.press("4")
    pane = pane_of(pilot.app)  # type: ignore[arg-type]
    await wait_until(pilot, lambda: pane.manager is not None)
    return pane


async def test_add_from_a_preset_then_stop_start_remove(tmp_path: Path, http_port: int):
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        assert app.query_one(TunnelsIntro).display  # nothing yet: say what to do

        await pilot.press("a")
        assert isinstance(app.screen, TunnelForm)
        form = app.screen
        form.query_one("#tunnel-preset", Select).value = "dashboard"
        await pilot.pause()
        assert form.query_one("#tunnel-name", Input).value == "dashboard"
        assert form.query_one("#tunnel-remote-port", Input).value == "11000"
        # the "device" is this machine: send the Dashboard preset to our HTTP server,
        # whose port is taken here, so the local port moves to the next free one
        form.query_one("#tunnel-remote-port", Input).value = str(http_port)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TunnelForm)
                         and len(pane._rows) == 1)
        tunnel = pane._rows[0]
        local = tunnel.spec.local_port
        assert local is not None and local != http_port
        await wait_until(pilot, lambda: f"local port {http_port} is taken: dashboard uses "
                                        f"{local} instead" in notifications(app))
        await wait_until(pilot, lambda: tunnel.status.state is TunnelState.UP)
        assert rows(app)[0][:6] == ["dashboard", "spark-01", f"127.0.0.1:{local}", "->",
                                    f"localhost:{http_port}", "up"]
        assert (await fetch(tunnel.url)).content == BODY
        assert tunnel.traffic.bytes_in > len(BODY)  # the body and the headers
        # the counters column is redrawn every second while the tab is shown
        await wait_until(pilot, lambda: rows(app)[0][7].startswith("23.6 KiB / "), timeout=3)
        saved = (tmp_path / "config.toml").read_text()
        assert 'name = "dashboard"' in saved and f"local_port = {local}" in saved

        await pilot.press("s")
        await wait_until(pilot, lambda: tunnel.status.state is TunnelState.STOPPED)
        assert rows(app)[0][5] == "stopped" and port_is_bindable(local)
        # a stop is kept: the next session does not bring the tunnel back up
        await wait_until(pilot, lambda: "autostart = false"
                         in (tmp_path / "config.toml").read_text())
        await pilot.press("s")
        await wait_until(pilot, lambda: tunnel.status.state is TunnelState.UP)
        assert not port_is_bindable(local)
        await wait_until(pilot, lambda: "autostart" not in (tmp_path / "config.toml").read_text())

        await pilot.press("x")  # asks first; "n" keeps it
        assert isinstance(app.screen, ConfirmScreen)
        assert "dashboard" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        await pilot.pause()
        assert pane._rows == [tunnel] and tunnel.status.state is TunnelState.UP
        await pilot.press("x", "y")
        await wait_until(pilot, lambda: not pane._rows)
        assert port_is_bindable(local)
        assert app.query_one(TunnelsIntro).display
        assert "dashboard" not in (tmp_path / "config.toml").read_text()


async def test_form_refuses_bad_ports_and_says_why(tmp_path: Path):
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        await open_tab(pilot)
        await pilot.press("a")
        form = app.screen
        form.query_one("#tunnel-remote-port", Input).value = "70000"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, TunnelForm)
        error = str(form.query_one("#tunnel-form-error").render())
        assert "remote port 70000 is out of range" in error
        form.query_one("#tunnel-bind", Input).value = "0.0.0.0"
        await pilot.pause()
        assert form.query_one("#tunnel-form-warning").display
        await pilot.press("escape")
        assert not isinstance(app.screen, TunnelForm)


async def test_open_on_a_headless_box_shows_and_copies_the_url(tmp_path: Path, monkeypatch,
                                                               http_port: int):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        result = await pane.manager.add(TunnelSpec(device="spark-01", name="web",  # type: ignore[union-attr]
                                                   remote_port=http_port))
        await wait_until(pilot, lambda: len(pane._rows) == 1)
        pane.table.focus()
        await pilot.press("o")
        url = result.tunnel.url
        assert url is not None
        await wait_until(pilot, lambda: app.clipboard == url)  # sparktui's own paste
        # a headless run has no terminal to copy through: no copy is claimed (it was)
        await wait_until(pilot, lambda: any(m.startswith(f"{url}\n(select it to copy")
                                            for m in notifications(app)))
        assert not any("copied to the clipboard" in m for m in notifications(app))
        assert opened == [], "no browser is started on a headless box"

        monkeypatch.delenv("SSH_CONNECTION")
        monkeypatch.setenv("DISPLAY", ":0")
        await pilot.press("o")
        await wait_until(pilot, lambda: opened == [url])
        await wait_until(pilot, lambda: f"Opened {url}" in notifications(app))


async def test_probing_runs_only_while_the_tab_is_shown(tmp_path: Path):
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = pane_of(app)
        await pilot.pause()
        assert not pane.probing
        await open_tab(pilot)
        await wait_until(pilot, lambda: pane.probing)
        await pilot.press("1")
        await wait_until(pilot, lambda: not pane.probing)


@pytest.mark.sshd
async def test_saved_tunnels_come_back_in_a_fresh_app_and_quitting_frees_them(
        ssh_client, tmp_path: Path, http_port: int):
    from tests.test_tunnels_sshd import free_port

    local = free_port()
    config = (f'[settings]\nkeepalive_interval = 1.0\n\n[[tunnels]]\ndevice = "spark-test"\n'
              f'name = "web"\nremote_port = {http_port}\nlocal_port = {local}\n')
    app = tunnels_app(tmp_path, [], config, specs=(DeviceSpec.parse("spark-test"),))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: len(pane._rows) == 1
                         and pane._rows[0].status.state is TunnelState.UP, timeout=15)
        assert (await fetch(f"http://127.0.0.1:{local}/")).content == BODY
        # a tunnel is up: q asks first, naming it (docs/keys.md rule 2)
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "tunnel web on spark-test" in app.screen.question.plain
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, timeout=10)
    assert port_is_bindable(local), "nothing is left listening after quitting"


async def test_restore_off_lists_saved_tunnels_stopped(tmp_path: Path):
    config = ('[settings]\nrestore_on_start = false\n\n[[tunnels]]\ndevice = "spark-01"\n'
              'name = "lab"\npreset = "jupyter"\n\n[[tunnels]]\ndevice = "elsewhere"\n'
              'name = "ui"\npreset = "open-webui"\n')
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))], config)
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: len(pane._rows) == 2)
        await pilot.pause(0.2)
        assert [row[5] for row in rows(app)] == ["stopped", "no device"]
        assert not any(t.running for t in pane._rows)


# -- the picture -------------------------------------------------------------------------------
SNAPSHOT_CONFIG = """\
[[tunnels]]
device = "spark-01"
name = "dashboard"
preset = "dashboard"
local_port = 47311

[[tunnels]]
device = "spark-01"
name = "lab"
preset = "jupyter"
local_port = 47312

[[tunnels]]
device = "spark-02"
name = "ollama"
preset = "ollama"
local_port = 47313

[[tunnels]]
device = "spark-01"
name = "clash"
remote_port = 8000
local_port = 47314

[[tunnels]]
device = "spark-01"
name = "webhook"
remote_port = 47315
local_port = 3000
reverse = true

[[tunnels]]
device = "spark-09"
name = "comfy"
preset = "comfyui"
local_port = 47316
"""


def test_tunnels_tab_snapshot(snap_compare, tmp_path: Path) -> None:
    import socket

    from sparktui.services.tunnel_runtime import ProbeResult

    blocker = socket.socket()  # another program holds the "clash" tunnel's port
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 47314))
    blocker.listen()
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"), user="nvidia"),
                                 link("spark-02", _never_connects, host="10.20.0.12")],
                      SNAPSHOT_CONFIG)

    async def settle(pilot: Pilot) -> None:
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: len(pane._rows) == 6)
        by_name = {t.name: t for t in pane._rows}
        await pane.manager.stop(by_name["lab"])  # type: ignore[union-attr]
        expected = {"dashboard": TunnelState.UP, "lab": TunnelState.STOPPED,
                    "ollama": TunnelState.WAITING, "clash": TunnelState.FAILED,
                    "webhook": TunnelState.UP, "comfy": TunnelState.NO_DEVICE}
        await wait_until(pilot, lambda: all(by_name[n].status.state is s
                                            for n, s in expected.items()), timeout=10)
        await pilot.app.workers.wait_for_complete()
        # fixed figures, so the picture only changes when the UI does
        dashboard = by_name["dashboard"]
        dashboard.traffic.bytes_in, dashboard.traffic.bytes_out = 1_234_567, 4_321
        dashboard.traffic.open_connections, dashboard.traffic.total_connections = 2, 9
        dashboard.probe = ProbeResult(True, "HTTP 200")
        by_name["webhook"].probe = ProbeResult(False, "Connection refused")
        pane._stop_timers()
        pane._rebuild_table()
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=(140, 30), run_before=settle)
    finally:
        blocker.close()


async def test_quitting_mid_connection_leaves_nothing_bound(tmp_path: Path, http_port: int):
    app = tunnels_app(tmp_path, [link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        result = await pane.manager.add(TunnelSpec(device="spark-01", name="web",  # type: ignore[union-attr]
                                                   remote_port=http_port))
        tunnel = result.tunnel
        await wait_until(pilot, lambda: tunnel.status.state is TunnelState.UP)
        # a client holding a connection open while the app quits
        reader, writer = await asyncio.open_connection("127.0.0.1", tunnel.spec.local_port)
        await wait_until(pilot, lambda: tunnel.traffic.open_connections == 1)
        local = tunnel.spec.local_port
    assert await reader.read() == b"", "the open connection was closed"
    writer.close()
    assert port_is_bindable(local)
