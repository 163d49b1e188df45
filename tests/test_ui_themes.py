"""Themes from TOML files: the shipped ones, a user's, and broken ones."""

from __future__ import annotations

from pathlib import Path

from sparktui.ui.themes import load_theme_file, load_themes, shipped_theme_dir
from tests.infra.pilot import wait_until
from tests.test_ui_shell import LocalConnector, link, make_app, state_cell

SHIPPED = {"sparktui-dark", "sparktui-light", "sparktui-high-contrast", "sparktui-mono16"}


def test_shipped_themes_load_cleanly() -> None:
    loaded = load_themes([shipped_theme_dir()])
    assert loaded.problems == []
    assert SHIPPED <= set(loaded.themes)
    assert loaded.themes["sparktui-dark"].primary.upper() == "#76B900"
    assert loaded.themes["sparktui-light"].dark is False


def test_mono16_uses_only_ansi_colours() -> None:
    theme = load_theme_file(shipped_theme_dir() / "sparktui-mono16.toml")
    assert theme.ansi
    colours = [theme.primary, theme.secondary, theme.accent, theme.foreground,
               theme.background, theme.surface, theme.panel, theme.success, theme.warning,
               theme.error, *(v for k, v in theme.variables.items() if not k.endswith("style"))]
    assert all(c and c.startswith("ansi_") for c in colours), colours


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("name = 'x'\nprimary = \n")
    (tmp_path / "no-primary.toml").write_text("name = 'x'\n")
    (tmp_path / "bad-colour.toml").write_text("name = 'x'\nprimary = 'not-a-colour'\n")
    (tmp_path / "bad-type.toml").write_text("name = 'x'\nprimary = '#fff'\ndark = 'yes'\n")
    (tmp_path / "bad-vars.toml").write_text("name = 'x'\nprimary = '#fff'\nvariables = 3\n")
    (tmp_path / "extra.toml").write_text("name = 'mine'\nprimary = '#123456'\nshade = 1\n")
    loaded = load_themes([tmp_path])
    assert set(loaded.themes) == {"mine"}  # loaded, with the unknown key reported
    assert len(loaded.problems) == 6
    for fragment in ("broken.toml", "no-primary.toml", "bad-colour.toml", "bad-type.toml",
                     "bad-vars.toml", "unknown key 'shade'"):
        assert any(fragment in problem for problem in loaded.problems), fragment


def test_a_user_theme_overrides_a_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "dark.toml").write_text("name = 'sparktui-dark'\nprimary = '#FF00FF'\n")
    loaded = load_themes([shipped_theme_dir(), tmp_path, tmp_path / "missing"])
    assert loaded.themes["sparktui-dark"].primary == "#FF00FF"


async def test_app_reports_bad_theme_files_and_runs(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("this is not toml")
    app = make_app(theme_dirs=[shipped_theme_dir(), tmp_path])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "sparktui-dark"
        assert any("broken.toml" in n.message and n.severity == "warning"
                   for n in app._notifications)


async def test_every_shipped_theme_renders_the_states() -> None:
    app = make_app([link("spark-01", LocalConnector("spark-01"))])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: state_cell(app, 0) == "connected")
        for name in sorted(SHIPPED):
            app.theme = name
            await pilot.pause()
            table = app.query_one("#devices-table")
            style = table.get_cell("0", "state").style
            assert style.color is not None, name  # connected is coloured in every theme
        app.theme = "sparktui-mono16"
        await pilot.pause()
        style = app.query_one("#devices-table").get_cell("0", "state").style
        assert style.color.number == 2  # ANSI green: the terminal's own palette
