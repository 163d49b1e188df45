"""The device screens in the shell: add / edit / remove, details, discovery, focus, session,
and the audit of a process kill. The screens' workers update their widgets themselves
(no message pairs): each test reads what the screen shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, LinkState
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Config, Settings, load_config
from sparktui.services.devices import Fleet, make_link
from sparktui.services.state import SavedDevice, SessionState, load_state, save_state
from sparktui.services.telemetry import TelemetryService
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.details import DeviceDetailsScreen
from sparktui.ui.devices.discover import DiscoverScreen
from sparktui.ui.devices.form import DeviceFormScreen
from sparktui.ui.devices.nvsmi import NvsmiScreen
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES, LocalConnector, active_tab, link

CONFIG_TEXT = """\
# lab devices, kept by hand
[settings]
theme = "sparktui-dark"  # the default

[[devices]]
name = "spark-1"  # the first box
host = "spark-1.local"
"""


def app_with(config_path: Path, links=(), **kwargs) -> SparkApp:
    app = SparkApp(load_config(config_path), fleet=Fleet(links), theme_dirs=[REPO_THEMES],
                   **kwargs)
    app.title = "sparktui"
    return app


async def wait_for_screen(pilot: Pilot, kind: type, timeout: float = 10.0):
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), timeout)
    return pilot.app.screen


async def test_add_edit_remove_keep_the_config_comments(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(CONFIG_TEXT)
    app = app_with(config_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        form = await wait_for_screen(pilot, DeviceFormScreen)
        form.query_one("#field-name", Input).value = "spark-2"
        form.query_one("#field-host", Input).value = "nvidia@spark-2.local:2222"
        form.query_one("#field-proxy_jump", Input).value = "lab-gw"
        form.query_one("#field-tags", Input).value = "lab"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, DeviceFormScreen))
        assert form.saved is not None and form.saved.name == "spark-2"
        assert app.fleet.get("spark-2") is not None  # opened in this session at once
        await wait_until(pilot, lambda: app.config.device("spark-2") is not None)

        # edit: the cursor is on spark-2 (the only open device)
        await pilot.press("e")
        form = await wait_for_screen(pilot, DeviceFormScreen)
        assert form.query_one("#field-user", Input).value == "nvidia"
        form.query_one("#field-port", Input).value = "abc"
        await pilot.press("ctrl+s")
        assert "Port: 'abc' is not a port" in str(
            form.query_one("#device-form-errors", Static).render())
        form.query_one("#field-port", Input).value = "22"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, DeviceFormScreen))
        await wait_until(pilot, lambda: app.config.device("spark-2").port == 22)

        # a duplicate name is refused
        await pilot.press("a")
        form = await wait_for_screen(pilot, DeviceFormScreen)
        form.query_one("#field-name", Input).value = "spark-1"
        form.query_one("#field-host", Input).value = "x"
        await pilot.press("ctrl+s")
        assert "already configured" in str(form.query_one("#device-form-errors",
                                                           Static).render())
        await pilot.press("escape")

        await pilot.press("x")
        await pilot.pause()
        await pilot.press("y")
        await wait_until(pilot, lambda: app.config.device("spark-2") is None)
    text = config_path.read_text()
    assert text.startswith("# lab devices, kept by hand\n")
    assert 'name = "spark-1"  # the first box' in text and "spark-2" not in text
    assert [d.name for d in load_config(config_path).devices] == ["spark-1"]


async def test_read_only_disables_the_key_install(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    app = app_with(config_path, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        form = await wait_for_screen(pilot, DeviceFormScreen)
        password = form.query_one("#field-password", Input)
        assert password.disabled
        assert "read-only" in password.placeholder


async def test_next_device_moves_the_focus_everywhere(tmp_path: Path) -> None:
    links = [link(f"spark-0{i}", LocalConnector(f"spark-0{i}")) for i in (1, 2, 3)]
    settings = Settings(keymap={"app.device.next": "f9"})
    app = SparkApp(Config(path=tmp_path / "c.toml", settings=settings), fleet=Fleet(links),
                   theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.focused_device == "spark-01")
        table = app.query_one("#devices-table", DataTable)
        await pilot.press("ctrl+n")  # remapped away: does nothing now
        assert app.focused_device == "spark-01"
        await pilot.press("f9")
        assert app.focused_device == "spark-02" and table.cursor_row == 1
        await pilot.press("f9", "f9")
        assert app.focused_device == "spark-01" and table.cursor_row == 0
        await pilot.press("down", "down")
        assert app.focused_device == "spark-03"  # the table's cursor is the focus too


async def test_the_session_comes_back(tmp_path: Path) -> None:
    state_path = tmp_path / "session.toml"
    config = Config(path=tmp_path / "config.toml")
    specs = [DeviceSpec.parse("local"), DeviceSpec(name="box-b", host="local")]
    app = SparkApp(config, specs, theme_dirs=[REPO_THEMES], persist=True,
                   state_path=state_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.fleet.links) == 2)
        await pilot.press("ctrl+n")
        await pilot.press("2")
        await wait_until(pilot, lambda: app.focused_device == "box-b")
        await app.action_quit()
        await wait_until(pilot, lambda: state_path.exists())
    state, problems = load_state(state_path)
    assert problems == []
    assert state.devices == [SavedDevice("local", "local"), SavedDevice("box-b", "local")]
    assert (state.tab, state.focused, state.demo) == ("telemetry", "box-b", False)

    restored, skipped = state.specs(config)
    assert [s.name for s in restored] == ["local", "box-b"] and skipped == []
    again = SparkApp(config, restored, theme_dirs=[REPO_THEMES], restore=state)
    async with again.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: again.focused_device == "box-b")
        assert active_tab(again) == "telemetry"


def test_state_file_problems_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "session.toml"
    path.write_text("devices = [ oops")
    state, problems = load_state(path)
    assert state == SessionState() and "last session not restored" in problems[0]
    save_state(SessionState(devices=[SavedDevice("x", "bad host!")], tab="chat"), path)
    state, problems = load_state(path)
    specs, skipped = state.specs(Config(path=tmp_path / "c.toml"))
    assert specs == [] and "skipped" in skipped[0]


@pytest.fixture
async def demo() -> AsyncIterator[object]:
    from sparktui.sim.demo import start_demo

    running = await start_demo()
    try:
        yield running
    finally:
        await running.close()


async def test_details_facts_health_and_nvsmi_of_the_demo(tmp_path: Path, demo) -> None:
    spark = make_link(demo.spec, Settings(), ssh_options=demo.ssh_options)
    app = app_with(tmp_path / "config.toml", [spark])
    async with app.run_test(size=(120, 45)) as pilot:
        await wait_until(pilot, lambda: spark.status.state is LinkState.CONNECTED, 20)
        await pilot.press("enter")
        details = await wait_for_screen(pilot, DeviceDetailsScreen)
        await wait_until(pilot, lambda: details.reading is not None, 20)
        facts = str(details.query_one("#details-facts", Static).render())
        for expected in ("NVIDIA DGX Spark", "yes (DGX Spark, GB10)", "580.126.09",
                         "Cortex-X925", "Ubuntu 24.04.3 LTS", "28.3.3"):
            assert expected in facts, expected
        links = str(details.query_one("#details-links", Static).render())
        assert "rocep1s0f0  ACTIVE  200 Gb/sec" in links and "rocep1s0f1  DOWN" in links

        first = details.reading
        await pilot.press("r")  # a refresh reads again and gives rates
        await wait_until(pilot, lambda: details.reading is not first, 20)
        assert "now rx" in str(details.query_one("#details-links", Static).render())

        await pilot.press("h")
        await wait_until(pilot, lambda: "DCGM is not installed on spark-demo" in str(
            details.query_one("#details-health", Static).render()), 20)

        await pilot.press("n")
        nvsmi = await wait_for_screen(pilot, NvsmiScreen)
        await wait_until(pilot, lambda: bool(nvsmi.sections), 20)
        picker = nvsmi.query_one("#nvsmi-sections", OptionList)
        titles = [nvsmi.sections[i].title for i in range(picker.option_count)]
        assert "Clocks" in titles
        picker.highlighted = titles.index("Clocks")
        await pilot.pause()
        assert "Graphics" in str(nvsmi.query_one("#nvsmi-body", Static).render())
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, DeviceDetailsScreen))


async def test_discovery_screen_lists_mdns_and_ssh_config_hosts(tmp_path: Path,
                                                                monkeypatch) -> None:
    from tests.infra.zeroconf import MdnsPublisher

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NV_SYNC_SSH_CONFIG", str(tmp_path / "sync_config"))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host lab-box\n  HostName 10.1.1.1\n")
    (tmp_path / "sync_config").write_text("Host spark-sync\n  HostName spark-sync.local\n")
    app = app_with(tmp_path / "config.toml")
    async with MdnsPublisher() as pub:
        await pub.publish("spark-found", "spark-found.local", ["127.0.0.1"])
        async with app.run_test(size=(120, 40)) as pilot:
            from sparktui.ui.devices.actions import add_device

            await app.push_screen(DiscoverScreen(timeout=4.0, interfaces=["127.0.0.1"]),
                                  callback=lambda spec: spec and add_device(app, app.session,
                                                                            spec))
            screen = app.screen
            await wait_until(pilot, lambda: any(r.name == "spark-found" for r in screen.rows),
                             20)
            await wait_until(pilot, lambda: any(r.name == "spark-sync" for r in screen.rows))
            names = [row.name for row in screen.rows]
            assert "lab-box" in names
            status = str(screen.query_one("#discover-status", Static).render())
            assert "Sparks" in status
            screen.query_one("#discover-table", DataTable).move_cursor(
                row=names.index("spark-found"))
            await pilot.press("enter")
            form = await wait_for_screen(pilot, DeviceFormScreen)
            assert form.query_one("#field-host", Input).value == "spark-found.local"
            assert form.query_one("#field-tags", Input).value == "spark"


async def test_a_process_kill_is_audited_and_read_only_refuses(tmp_path: Path,
                                                                demo) -> None:
    spark = make_link(demo.spec, Settings(), ssh_options=demo.ssh_options)
    spark.start()
    audit = AuditLog(tmp_path / "audit.jsonl")
    try:
        await within(spark.wait_connected(), 20)
        demo.server.device.set_load(0.5)  # a GPU process of the user's own: one to kill
        pid = next(p.pid for p in demo.server.device.compute_apps() if not p.container_id)
        refusing = TelemetryService(spark, Settings(read_only=True), audit=audit)
        with pytest.raises(ReadOnlyError):
            await refusing.kill_process(pid)
        assert audit.entries() == []
        service = TelemetryService(spark, Settings(), audit=audit)
        result = await service.kill_process(pid)
        assert result.ok
        missing = await service.kill_process(pid)  # gone now: the failure is recorded too
        assert not missing.ok and missing.stderr == "sh: 1: kill: No such process\n"
    finally:
        await spark.close()
    entries = audit.entries()
    assert [(e["device"], e["action"], e["target"], e["signal"]) for e in entries] == [
        ("spark-demo", "kill-process", str(pid), "TERM")] * 2
    assert entries[0]["result"] == "sent"
    assert entries[1]["result"].startswith("failed (exit 1)")
    assert pid not in {p.pid for p in demo.server.device.compute_apps()}


async def test_two_cabled_sparks_show_each_other(tmp_path: Path) -> None:
    from sparktui.sim.device.gpu_model import SimDevice
    from sparktui.sim.ssh.server import start_sim
    from sparktui.transport.ssh_types import SSHOptions

    devices = [SimDevice(hostname="spark-a"), SimDevice(hostname="spark-b")]
    devices[0].cx7_peer, devices[1].cx7_peer = devices[1], devices[0]
    servers = [await start_sim(device=device) for device in devices]
    links = []
    try:
        for name, server in zip(("spark-a", "spark-b"), servers, strict=True):
            identity, known_hosts = server.write_client_files(str(tmp_path / name))
            spec = DeviceSpec(name=name, host="127.0.0.1", port=server.port, user="nvidia",
                              identity_file=identity)
            links.append(make_link(spec, Settings(), ssh_options=SSHOptions(
                known_hosts=known_hosts, use_ssh_config=False)))
        app = app_with(tmp_path / "config.toml", links)
        async with app.run_test(size=(120, 45)) as pilot:
            await wait_until(pilot, lambda: all(x.status.state is LinkState.CONNECTED
                                                for x in links), 20)
            await pilot.press("enter")
            details = await wait_for_screen(pilot, DeviceDetailsScreen)
            await wait_until(pilot, lambda: details.reading is not None, 20)
            text = str(details.query_one("#details-links", Static).render())
            assert "other end spark-b rocep1s0f0 (matched by neighbour 169.254." in text
    finally:
        for server in servers:
            await server.close()
