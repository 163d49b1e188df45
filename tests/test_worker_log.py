"""A failed worker reaches the log file with its traceback, whoever ran it.

Workers run with exit_on_error=False so a failed read never ends the app; before,
their errors went nowhere a user or a developer could read them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.screens.settings import SettingsScreen
from tests.infra.pilot import wait_until

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


async def _fails(what: str) -> None:
    raise RuntimeError(f"{what} broke")


async def test_failed_workers_of_the_app_a_pane_and_a_screen_are_logged(
        tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="sparktui.workers")
    app = SparkApp(Config(path=tmp_path / "config.toml"), theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        app.run_worker(_fails("the app's"), name="app-work", exit_on_error=False)
        app.query_one(DevicesPane).run_worker(_fails("the pane's"), name="pane-work",
                                             exit_on_error=False)
        app.action_settings()
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        app.screen.run_worker(_fails("the screen's"), name="screen-work", exit_on_error=False)
        failed = lambda: {r.getMessage().split("'")[1] for r in caplog.records  # noqa: E731
                          if r.name == "sparktui.workers"}
        await wait_until(pilot, lambda: failed() >= {"app-work", "pane-work", "screen-work"})
    records = [r for r in caplog.records if r.name == "sparktui.workers"]
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in records)
    assert "the pane's broke" in caplog.text and "Traceback" in caplog.text
