"""Every tab with its rows and every dialog, pictured at 80x24 (designed for first), 50x40
(a tmux side pane) and 200x50, on the real SparkApp (tests/test_keys_snapshots.py has the
Devices and Telemetry tabs, help and the quit question).

The fleet never touches the network: the Containers tab is fed a fixed list
(tests/infra/fed.py), the other dialogs open on devices that never connect, so
each picture changes only when the UI does. Regenerate with --snapshot-update and
look at every picture you change (rsvg-convert turns an SVG into a PNG).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from sparktui.core.device import LinkState
from sparktui.ui.containers.deploy import DeployScreen
from sparktui.ui.containers.dialogs import ConfirmDialog
from sparktui.ui.containers.images import ImagesScreen
from sparktui.ui.containers.logs import ContainerLogsScreen
from sparktui.ui.devices.form import DeviceFormScreen
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.screens.settings import SettingsScreen
from sparktui.ui.telemetry.memory import MemoryScreen
from sparktui.ui.tunnels.form import TunnelForm
from tests.infra.fed import fed_app, feed_containers
from tests.infra.pilot import wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((50, 40), id="50x40"),
         pytest.param((200, 50), id="200x50")]

Opener = Callable[[Pilot], Awaitable[None]]


async def _opened(pilot: Pilot, keys: tuple[str, ...], kind: type[Screen]) -> None:
    await pilot.press(*keys)
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, kind), what=kind.__name__)
    # the dialog's own footer fills in once its bindings are known (a refresh later)
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("Footer FooterKey")),
                     what="the dialog's footer")
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking caret would be in one picture and not the next
    await pilot.pause()


def on_containers(*keys: str, kind: type[Screen] | None = None) -> Opener:
    async def opener(pilot: Pilot) -> None:
        await feed_containers(pilot)
        if kind is not None:
            await _opened(pilot, keys, kind)
    return opener


async def _connected(pilot: Pilot) -> None:
    link = pilot.app.fleet.links[0]  # type: ignore[attr-defined]
    # the tab behind the dialog shows the device connected, on every run
    await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED)


def on_tab(tab_key: str, *keys: str, kind: type[Screen]) -> Opener:
    async def opener(pilot: Pilot) -> None:
        await _connected(pilot)
        await pilot.press(tab_key)
        await pilot.pause()
        await _opened(pilot, keys, kind)
    return opener


def host_key_question() -> Opener:
    async def opener(pilot: Pilot) -> None:
        from sparktui.services.link_types import UnknownHostKey
        from sparktui.ui.screens.host_key import HostKeyScreen

        offer = UnknownHostKey("spark-09.lan", 22, "ssh-ed25519",
                               "SHA256:Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg",
                               "~/.ssh/known_hosts")
        await _connected(pilot)
        pilot.app.push_screen(HostKeyScreen(offer))
        await _opened(pilot, (), HostKeyScreen)
    return opener


VIEWS = {
    "containers": on_containers(),
    "stop-question": on_containers("s", kind=ConfirmScreen),
    "remove-container": on_containers("d", kind=ConfirmDialog),
    "logs": on_containers("l", kind=ContainerLogsScreen),
    "images": on_containers("i", kind=ImagesScreen),
    "deploy": on_containers("D", kind=DeployScreen),
    "add-device": on_tab("1", "a", kind=DeviceFormScreen),
    "settings": on_tab("1", "ctrl+s", kind=SettingsScreen),
    "add-tunnel": on_tab("4", "a", kind=TunnelForm),
    "memory": on_tab("2", "m", kind=MemoryScreen),
    "host-key": host_key_question(),
}


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("size", SIZES)
def test_view(snap_compare, size: tuple[int, int], view: str) -> None:
    app = fed_app()
    assert snap_compare(app, terminal_size=size, run_before=VIEWS[view])
