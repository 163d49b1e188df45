"""The Session behind the real SparkApp: removing a device, the demo's throwaway device.

Driven with Pilot on the real app (tests/infra/pilot.py), never a stand-in.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from sparktui.core.device import LinkState
from sparktui.services.config import Config, load_config
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.screens.confirm import ConfirmScreen
from tests.infra.pilot import wait_until
from tests.infra.sshd import free_port

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


async def _select(pilot: Pilot, name: str) -> DevicesPane:
    pane = pilot.app.query_one(DevicesPane)
    await wait_until(pilot, lambda: any(link.name == name for link in pane._links))
    pane.table.move_cursor(row=[link.name for link in pane._links].index(name))
    pane.table.focus()
    await pilot.pause()
    return pane


async def test_a_removed_device_stops_reconnecting(tmp_path: Path) -> None:
    # nothing listens on this port: the device fails and keeps retrying until removed
    path = tmp_path / "config.toml"
    path.write_text("[settings]\nreconnect_max_delay = 1.0\n\n[[devices]]\nname = \"gone\"\n"
                    f"host = \"127.0.0.1\"\nport = {free_port()}\nuser = \"nobody\"\n")
    config = load_config(path)
    app = SparkApp(config, config.devices, theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        link = app.fleet.get("gone")
        assert link is not None
        await wait_until(pilot, lambda: link.status.state in (LinkState.RECONNECTING,
                                                              LinkState.FAILED), 15)
        await _select(pilot, "gone")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.fleet.get("gone") is None, 10,
                         "the link is dropped from the session")
        assert link.status.state is LinkState.CLOSED, link.status
        assert app.telemetry.get("gone") is None  # no stream left trying either
        assert "gone" not in path.read_text()
        attempts: list[LinkState] = []
        link.subscribe(lambda status: attempts.append(status.state))
        await pilot.pause(2.5)  # longer than the 1 s backoff: a live link would have retried
        assert attempts == [] and link.status.state is LinkState.CLOSED


async def test_editing_the_demo_device_offers_nothing_to_save(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    app = SparkApp(Config(path=tmp_path / "config.toml"), [], demo=True,
                   theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.demo is not None and bool(app.fleet.links), 30)
        screens = len(app.screen_stack)
        await _select(pilot, app.demo.spec.name)  # type: ignore[union-attr]
        await pilot.press("e")
        await pilot.pause()
        assert len(app.screen_stack) == screens  # no form with its throwaway port and key
        assert any("nothing to save" in str(n.message) for n in app._notifications)
    assert not (tmp_path / "config.toml").exists()
