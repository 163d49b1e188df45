"""The first run: nothing configured, the Devices tab offers the ways to a first Spark.

Drives the real SparkApp at 80x24 with an empty config: the guide names each way
with its key in one line; `I` imports a Host of ~/.ssh/config (the form opens
prefilled); `D` opens the simulated Spark in this session and the guide gives way
to the device table. And `sparktui` with nothing configured opens the app.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from sparktui.services.config import load_config
from sparktui.services.devices import Fleet
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.discover import DiscoverScreen
from sparktui.ui.devices.first_run import FirstRunGuide
from sparktui.ui.devices.form import DeviceFormScreen
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES

WAY_LINES = ("Find Sparks on this network", "Import a host you already reach",
             "Add one by address", "Try the demo")


def empty_app(tmp_path: Path, **kwargs) -> SparkApp:
    return SparkApp(load_config(tmp_path / "config.toml"), fleet=Fleet(),
                    theme_dirs=[REPO_THEMES], **kwargs)


async def test_the_guide_offers_each_way_in_one_line_at_80x24(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NV_SYNC_SSH_CONFIG", str(tmp_path / "no-sync"))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host lab-spark\n  HostName 192.0.2.9\n")
    app = empty_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        guide = app.query_one(FirstRunGuide)
        await wait_until(pilot, lambda: guide.display and guide.region.height > 0,
                         what="the first-run guide")
        text = str(guide.render())
        for line in WAY_LINES:
            assert line in text
        assert not app.query_one("#devices-table", DataTable).display
        # every line fits: the guide ends inside the screen, above the footer
        assert guide.region.bottom <= 23
        lines = [line for line in text.splitlines() if any(w in line for w in WAY_LINES)]
        assert len(lines) == 4 and all(len(line) <= 76 for line in lines), lines

        assert app.focused is app.query_one("#devices-table")  # the tab's keys work at once
        await pilot.press("I")
        await wait_until(pilot, lambda: isinstance(app.screen, DiscoverScreen))
        screen = app.screen
        assert screen.mdns is False
        await wait_until(pilot, lambda: [r.name for r in screen.rows] == ["lab-spark"],
                         what="the ssh config host listed")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DeviceFormScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, DeviceFormScreen))


async def test_the_demo_key_opens_the_simulated_spark(tmp_path: Path) -> None:
    app = empty_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        guide = app.query_one(FirstRunGuide)
        await wait_until(pilot, lambda: guide.display, what="the first-run guide")
        await pilot.press("D")
        await wait_until(pilot, lambda: app.fleet.get("spark-demo") is not None, 20,
                         what="the demo device in the fleet")
        table = app.query_one("#devices-table", DataTable)
        await wait_until(pilot, lambda: table.display and not guide.display and
                         table.row_count == 1, what="the table instead of the guide")
        assert app.focused is table
        assert app.demo is not None  # the app stops it at exit
    assert app.demo is None


async def test_no_guide_flashes_while_the_demo_starts(tmp_path: Path) -> None:
    app = empty_app(tmp_path, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        guide = app.query_one(FirstRunGuide)
        assert not guide.display
        await wait_until(pilot, lambda: app.fleet.get("spark-demo") is not None, 20,
                         what="the demo device")
        assert not guide.display
