"""The settings screen, remembered themes, keymap overrides and a broken config file."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from sparktui.services.config import Config, Settings, load_config
from sparktui.services.devices import Fleet
from sparktui.ui.app import SparkApp
from sparktui.ui.screens import HelpScreen
from sparktui.ui.screens.settings import SettingsScreen
from sparktui.ui.widgets.tickbox import TickBox
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES

CONFIG_TEXT = """\
# sparktui config: my notes stay
[settings]
refresh_interval = 1.0   # seconds
theme = "sparktui-dark"  # green on black

# the devices
[[devices]]
name = "spark-1"
host = "spark-1.local"
"""


def make(path: Path, **kwargs) -> SparkApp:
    kwargs.setdefault("theme_dirs", [REPO_THEMES])
    app = SparkApp(load_config(path), fleet=Fleet(), **kwargs)
    app.title = "sparktui"
    return app


async def open_settings(pilot: Pilot) -> SettingsScreen:
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
    return pilot.app.screen  # type: ignore[return-value]


async def test_settings_round_trip_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = make(path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        screen.query_one("#refresh_interval", Input).value = "2.5"
        screen.query_one("#power_alert_w", Input).value = "180"
        screen.query_one("#units", Select).value = "decimal"
        screen.query_one("#compact", Select).value = "on"
        screen.query_one("#restore_on_start", TickBox).value = False
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert app.settings.refresh_interval == 2.5 and app.settings.units == "decimal"
        assert app.compact  # applied at once
        assert any("used from the next start" in n.message for n in app._notifications)
    text = path.read_text()
    assert text.startswith("# sparktui config: my notes stay\n")
    assert "refresh_interval = 2.5   # seconds" in text
    assert 'theme = "sparktui-dark"  # green on black' in text
    assert "# the devices" in text
    saved = load_config(path)
    assert saved.problems == []
    assert (saved.settings.refresh_interval, saved.settings.power_alert_w,
            saved.settings.units, saved.settings.compact, saved.settings.restore_on_start) \
        == (2.5, 180, "decimal", True, False)
    assert [d.name for d in saved.devices] == ["spark-1"]


async def test_a_bad_value_is_shown_and_nothing_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = make(path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        screen.query_one("#history_minutes", Input).value = "ten"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SettingsScreen)
        error = str(screen.query_one("#settings-errors", Static).render())
        assert "History window (min): 'ten' is not a number" in error
        screen.query_one("#history_minutes", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "must be at least 1" in str(screen.query_one("#settings-errors",
                                                            Static).render())
        await pilot.press("escape")
    assert path.read_text() == CONFIG_TEXT


async def test_a_corrupt_config_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    broken = "[settings]\nrefresh_interval = 1.0\ntheme = sparktui-light\n"
    path.write_text(broken)
    config = load_config(path)
    assert config.settings == Settings()  # defaults meanwhile
    app = make(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert any(str(path) in m and "line 3" in m and "left untouched" in m for m in shown)
        screen = await open_settings(pilot)
        screen.query_one("#refresh_interval", Input).value = "3"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "Not saved" in str(
            screen.query_one("#settings-errors", Static).render()))
        error = str(screen.query_one("#settings-errors", Static).render())
        assert f"{path}:3" in error and "left untouched" in error
        assert isinstance(app.screen, SettingsScreen)  # the form stays open
    assert path.read_text() == broken


async def test_a_theme_switch_is_remembered(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = make(path, persist=True, state_path=tmp_path / "session.toml")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "sparktui-dark"
        app.theme = "sparktui-light"  # what the palette's "Theme: ..." command does
        await wait_until(pilot, lambda: 'theme = "sparktui-light"' in path.read_text())
        screen = await open_settings(pilot)
        screen.query_one("#theme", Select).value = "sparktui-high-contrast"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: 'theme = "sparktui-high-contrast"'
                         in path.read_text())
        assert app.theme == "sparktui-high-contrast"
    text = path.read_text()
    assert "# green on black" in text and text.startswith("# sparktui config")
    assert load_config(path).settings.theme == "sparktui-high-contrast"


async def test_tests_do_not_write_the_config_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = make(path)  # persist defaults to False: a test harness never edits files
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = "sparktui-light"
        await pilot.pause(0.2)
    assert path.read_text() == CONFIG_TEXT


async def test_keymap_overrides_reach_the_new_bindings(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[settings.keymap]\n"app.settings" = "f2"\n"devices.add" = "plus"\n'
                    '"settings.save" = "f10"\n')
    app = make(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not any("keymap" in n.message for n in app._notifications)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.press("escape")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = {(row.binding_id, row.key) for row in app.screen.rows}
        assert {("app.settings", "f2"), ("devices.add", "+"),
                ("app.device.next", "^n")} <= rows


async def test_read_only_from_settings_applies_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = make(path)
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.has_class("-read-only")
        screen = await open_settings(pilot)
        screen.query_one("#read_only", TickBox).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.has_class("-read-only"))
        assert app.read_only and app.telemetry.settings.read_only
        assert app.sub_title == "read-only"
    assert load_config(path).settings.read_only is True


def test_settings_screen_in_the_light_theme(snap_compare, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_TEXT)
    app = SparkApp(Config(path=Path("/nonexistent/sparktui.toml"),
                          settings=Settings(theme="sparktui-light")),
                   fleet=Fleet(), theme_dirs=[REPO_THEMES])
    app.title = "sparktui"

    async def open_it(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))

    assert snap_compare(app, terminal_size=(100, 36), run_before=open_it)
