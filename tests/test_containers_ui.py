"""The Containers tab, driven with Pilot, over a real sshd and a real dockerd.

Changes made outside sparktui (the docker CLI) must reach the screen from
the events stream within a fraction of a second; the delay from an external
`docker stop` to the changed row is measured and printed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Input, RichLog, Static

from sparktui.core.device import DeviceSpec
from sparktui.services.config import Config, Settings
from sparktui.services.containers import ServiceState
from sparktui.services.devices import Fleet, make_link
from sparktui.services.session import Session
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.containers.deploy import DeployScreen
from sparktui.ui.containers.dialogs import ConfirmDialog
from sparktui.ui.containers.images import ImagesScreen
from sparktui.ui.containers.logs import ContainerLogsScreen
from sparktui.ui.panes import ContainersPane
from sparktui.ui.screens.confirm import ConfirmScreen
from tests.infra.docker import (
    DockerEngine,
    busybox_binary,
    busybox_tar,
    make_samples,
    remove_samples,
)
from tests.infra.pilot import wait_until
from tests.infra.sshd import free_port

pytestmark = pytest.mark.sshd

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"
FAST = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=1.0)


def make_app(tmp_path: Path, *, read_only: bool = False) -> SparkApp:
    """The real shell on one device; its audit log and config are the test's own."""
    link = make_link(DeviceSpec.parse("spark-test"), FAST)
    config = Config(path=tmp_path / "config.toml", settings=Settings(read_only=read_only))
    session = Session(config, fleet=Fleet([link]), data_dir=tmp_path / "data")
    return SparkApp(config, session=session, theme_dirs=[REPO_THEMES])


async def open_tab(pilot: Pilot) -> ContainersPane:
    app = pilot.app
    assert isinstance(app, SparkApp)
    app.action_show_tab("containers")
    pane = app.query_one(ContainersPane)
    await wait_until(pilot, lambda: bool(pane.services)
                     and pane.services[0].state is ServiceState.READY, 15, "docker ready")
    await pilot.pause()
    return pane


def row_key(pane: ContainersPane, container_id: str) -> str:
    return f"spark-test/{container_id}"


def cell(pane: ContainersPane, container_id: str, column: str) -> str:
    value = pane.table.get_cell(row_key(pane, container_id), column)
    return value.plain if isinstance(value, Text) else str(value)


async def select(pilot: Pilot, pane: ContainersPane, container_id: str) -> None:
    await wait_until(pilot, lambda: row_key(pane, container_id) in pane._row_keys, 5,
                     "row shown")
    pane.table.move_cursor(row=pane._row_keys.index(row_key(pane, container_id)))
    pane.table.focus()
    await pilot.pause()


def docker_cli(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def samples(docker_engine: DockerEngine):
    made = make_samples(docker_engine, f"sp-ui-{docker_engine.session}")
    yield made
    remove_samples(made)


async def test_table_events_and_markup(ssh_client, docker_engine: DockerEngine, samples,
                                       tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_tab(pilot)
        for sample in (samples.colours, samples.markup, samples.health):
            await wait_until(pilot, lambda s=sample: row_key(pane, s.id) in pane._row_keys, 5)
        assert row_key(pane, samples.exits.id) not in pane._row_keys  # running only
        await wait_until(pilot, lambda: cell(pane, samples.health.id, "state")
                         == "running · healthy", 10, "health shown")
        assert cell(pane, samples.markup.id, "name") == samples.markup.name
        await pilot.press("a")
        assert cell(pane, samples.exits.id, "state") == "exited (3)"

        # markup in labels and command is shown as text, never applied
        await select(pilot, pane, samples.markup.id)
        detail = pane.query_one("#container-detail", Static).content
        assert "[bold red]x[/]" in detail.plain
        assert not any("red" in str(span.style) for span in detail.spans)

        # sorting by a column and filtering
        await pilot.press("o")
        assert pane.order.column == "image"
        await pilot.press("slash")
        # the name is this module's own: other tests may share the dockerd, and
        # their samples carry the same labels
        await pilot.press(*samples.markup.name)
        await pilot.press("enter")
        assert pane._row_keys == [row_key(pane, samples.markup.id)]
        await pilot.press("escape")
        assert len(pane._row_keys) >= 4

        # changes made outside sparktui reach the screen from the events stream
        name = f"sp-ui-ext-{docker_engine.session}"
        started = time.monotonic()
        container_id = docker_cli("run", "-d", "--init", "--network", "none", "--name", name,
                                  "--label", f"io.sparktui.test={docker_engine.session}",
                                  docker_engine.image, "sleep", "600")
        ran = time.monotonic()
        await wait_until(pilot, lambda: row_key(pane, container_id) in pane._row_keys, 2,
                         "docker run on screen")
        shown = time.monotonic()
        before = time.monotonic()
        docker_cli("stop", "-t", "5", name)
        stopped = time.monotonic()
        await wait_until(pilot, lambda: cell(pane, container_id, "state").startswith("exited"),
                         2, "docker stop on screen")
        changed = time.monotonic()
        print(f"\ndocker run  -> on screen: {shown - started:.3f} s from the command, "
              f"{shown - ran:.3f} s after it returned")
        print(f"docker stop -> on screen: {changed - before:.3f} s from the command, "
              f"{changed - stopped:.3f} s after it returned")
        assert changed - stopped < 0.5
        docker_cli("rm", container_id)
        await wait_until(pilot, lambda: row_key(pane, container_id) not in pane._row_keys, 2,
                         "docker rm on screen")


async def test_logs_screen_sanitizes_searches_and_saves(ssh_client, docker_engine, samples,
                                                        tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        await select(pilot, pane, samples.colours.id)
        pane.update_watched()  # CPU and memory only for the rows on screen...
        service = pane.services[0]
        assert samples.colours.id in service._watched
        assert samples.exits.id not in service._watched  # stopped: not a row here
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, ContainerLogsScreen)
        pane.update_watched()  # ...and none while another screen covers the pane
        assert service._watched == frozenset()
        view = screen.query_one("#logs-view", RichLog)
        await wait_until(pilot, lambda: len(view.lines) >= 5, 5, "log lines")
        texts = [strip.text for strip in view.lines]
        assert texts[:5] == ["red plain", "cursor-moved", "after-osc", "[bold red]markup[/] stays",
                             "bin\ufffdary"]
        assert not any("\x1b" in t or "evil title" in t for t in texts)
        red = [seg for seg in view.lines[0] if seg.text == "red"]
        assert red and red[0].style.color.number == 1  # SGR 31 kept as colour (red)
        markup_line = list(view.lines[3])
        assert all(seg.style is None or not seg.style.bold for seg in markup_line)

        # reading older lines pauses follow: new lines no longer yank the view down
        status = screen.query_one("#logs-status", Static)
        assert "following" in str(status.render())
        await pilot.press("k")
        assert not view.auto_scroll and "paused" in str(status.render())
        await pilot.press("G")  # the newest line, following again
        assert view.auto_scroll and "following" in str(status.render())

        await pilot.press("t")  # timestamps
        await wait_until(pilot, lambda: view.lines and view.lines[0].text[:2] == "20", 2)
        await pilot.press("t", "w")
        assert view.wrap
        await pilot.press("slash", *"markup", "enter")
        assert [s.text for s in view.lines] == ["[bold red]markup[/] stays"]
        await pilot.press("slash", "escape")
        assert len(view.lines) >= 5

        target = tmp_path / "saved.log"
        await pilot.press("ctrl+s")
        field = screen.query_one("#logs-save-path", Input)
        field.value = str(target)
        await pilot.press("enter")
        await wait_until(pilot, target.exists, 5, "saved")
        saved = target.read_text()
        assert "red plain\n" in saved and "\x1b" not in saved and "evil" not in saved
        await pilot.press("escape")
        assert not isinstance(app.screen, ContainerLogsScreen)


async def test_actions_from_keys_are_audited(ssh_client, docker_engine, samples, tmp_path,
                                             caplog, monkeypatch):
    box = docker_engine.run(["sleep", "600"], init=True, network_mode="none",
                            name=f"sp-ui-act-{docker_engine.session}")
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("a")
        await select(pilot, pane, box.id)

        async def press_and_wait(key: str, state: str) -> None:
            await pilot.press(key)
            await wait_until(pilot, lambda: cell(pane, box.id, "state").startswith(state), 10,
                             f"{key} -> {state}")

        await press_and_wait("p", "paused")
        await press_and_wait("p", "running")
        await pilot.press("s")
        # stop asks first, naming the container and the device
        assert isinstance(app.screen, ConfirmScreen)
        assert box.name in app.screen.question.plain and "spark-test" in app.screen.question.plain
        await press_and_wait("y", "exited")
        # the toast says what docker reports after the stop, not what was asked
        await wait_until(pilot, lambda: any(f"{box.name} stopped (exited" in n.message
                                            for n in app._notifications), 10, "stopped toast")
        await press_and_wait("S", "running")
        # a surprise inside the action's worker reaches the log file's logger
        service = pane.services[0]

        async def broken(action: str, container_id: str):
            raise RuntimeError("a surprise from the action")

        monkeypatch.setattr(service, "run_action", broken)
        with caplog.at_level("ERROR", logger="sparktui.workers"):
            await pilot.press("p")
            await wait_until(pilot, lambda: "a surprise from the action" in caplog.text, 10,
                             "the worker's failure logged")
        monkeypatch.undo()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        app.screen.query_one("#dialog-check", Checkbox).value = True
        await pilot.press("y")
        await wait_until(pilot, lambda: row_key(pane, box.id) not in pane._row_keys, 10,
                         "removed")
    entries = app.session.audit.entries()
    assert [(e["action"], e["result"]) for e in entries] == [
        ("container.pause", "ok"), ("container.unpause", "ok"), ("container.stop", "ok"),
        ("container.start", "ok"), ("container.remove", "ok")]
    assert entries[-1]["volumes"] is True


async def test_read_only_refuses_with_a_message(ssh_client, docker_engine, samples, tmp_path):
    app = make_app(tmp_path, read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        pane = await open_tab(pilot)
        await select(pilot, pane, samples.markup.id)
        for key in ("s", "d", "E", "D"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is pane.screen  # no dialog, no form
        messages = [n.message for n in app._notifications]
        assert sum("read-only mode" in m for m in messages) == 4
        samples.markup.reload()
        assert samples.markup.status == "running"
    assert app.session.audit.entries() == []


async def test_images_view_removes_with_confirmation(ssh_client, docker_engine, tmp_path):
    repository, tag = "sparktui-test/unused", docker_engine.session
    docker_engine.client.api.import_image_from_data(busybox_tar(busybox_binary()),
                                                    repository=repository, tag=tag)
    image_id = docker_engine.client.images.get(f"{repository}:{tag}").id
    app = make_app(tmp_path)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await open_tab(pilot)
            await pilot.press("i")
            screen = app.screen
            assert isinstance(screen, ImagesScreen)
            await wait_until(pilot, lambda: screen.loaded, 5, "images listed")
            table = screen.query_one("#images-table", DataTable)
            assert table.get_cell(image_id, "used").plain == "unused"
            await pilot.press("U")
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog)
            assert f"{repository}:{tag}" in dialog.question.plain
            await pilot.press("n")  # nothing goes without a yes
            table.move_cursor(row=table.get_row_index(image_id))
            await pilot.press("d", "y")
            await wait_until(pilot, lambda: image_id not in table.rows, 10, "image removed")
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{repository}:{tag}"], capture_output=True)
    assert not docker_engine.client.images.list(name=repository)
    assert app.session.audit.entries()[-1]["action"] == "image.remove"


async def test_deploy_form_until_ready_and_the_offer(ssh_client, docker_engine, tmp_path,
                                                     monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    app = make_app(tmp_path)
    name = f"sp-ui-deploy-{docker_engine.session}"
    async with app.run_test(size=(160, 50)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("D")
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        screen.fill("vllm")
        await pilot.pause()
        for field_id, value in (("name", name), ("image", docker_engine.image),
                                ("command", "httpd -f -p 8000 -h /www"),
                                ("host_port", str(free_port()))):
            screen.query_one(f"#field-{field_id}", Input).value = value
        screen.query_one("#field-gpus", Checkbox).value = False
        screen.query_one("#secret-HF_TOKEN", Input).value = "hf_typed_once"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.result is not None, 20, "deployed")
        assert screen.result.ok, screen.result.message
        offer = screen.query_one("#deploy-offer", Button)
        assert offer.display and app.focused is offer
        await pilot.press("enter")
        # the real app makes what was offered: a saved, started tunnel to the server's
        # port, and a chat endpoint the Chat tab picks
        port = screen.result.ready.port
        await wait_until(pilot, lambda: any(t.spec.remote_port == port and t.running
                                            for t in app.session.tunnels.tunnels), 10,
                         "the offered tunnel is up")
        chat = app.query_one(ChatPane)
        url = f"http://127.0.0.1:{port}/v1"
        await wait_until(pilot, lambda: (endpoint := chat.selected_endpoint()) is not None
                         and endpoint.spec.url == url and endpoint.spec.device == "spark-test",
                         10, "the Chat tab picks the offered endpoint")
        saved = app.config.path.read_text()
        assert f'remote_port = {port}' in saved and url in saved
        await pane.services[0].remove(screen.result.container_id)
    assert "hf_typed_once" not in app.session.audit.path.read_text()


async def test_in_the_shell_docker_is_reached_when_the_tab_opens(ssh_client, docker_engine,
                                                                 samples, tmp_path):
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    link = make_link(DeviceSpec.parse("spark-test"), FAST)
    config = Config(path=tmp_path / "config.toml", settings=Settings())
    app = SparkApp(config, fleet=Fleet([link]),
                   theme_dirs=[Path(__file__).resolve().parent.parent / "themes"])
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(ContainersPane)
        await pilot.pause(0.3)
        assert pane.services == []  # not looked at yet: no forward, no events stream
        await pilot.press("3")
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: row_key(pane, samples.markup.id) in pane._row_keys, 5)
        assert app.focused is pane.table


async def test_a_side_pane_holds_a_whole_row(tmp_path, monkeypatch):
    """At 50 columns (a tmux side pane) name, state, CPU and memory fit, not scrolled."""
    from sparktui.services.config import Config
    from sparktui.ui.app import SparkApp

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = SparkApp(Config(path=tmp_path / "config.toml"), [], demo=True,
                   theme_dirs=[Path(__file__).resolve().parent.parent / "themes"])
    async with app.run_test(size=(50, 40)) as pilot:
        await pilot.press("3")
        pane = await open_tab(pilot)
        # the demo's vLLM container has a health check and stats after a second or two
        await wait_until(pilot, lambda: any(
            str(pane.table.get_row(key)[1]) == "healthy"
            and str(pane.table.get_row(key)[3]).endswith(("M", "G"))
            for key in pane._row_keys), 10, "the healthy vLLM row with its figures")
        await pilot.pause()
        assert pane.table.virtual_size.width <= pane.table.scrollable_content_region.width
