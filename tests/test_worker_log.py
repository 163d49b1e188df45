"""A failed worker reaches the log file with its traceback, whoever ran it.

Workers run with exit_on_error=False so a failed read never ends the app; before,
their errors went nowhere a user or a developer could read them.
"""

from __future__ import annotations

import ast
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from sparktui.ui.devices.pane import DevicesPane
from sparktui.ui.screens.settings import SettingsScreen
from sparktui.ui.widgets.worker_log import LogsWorkerFailures
from tests.infra.pilot import wait_until

ROOT = Path(__file__).resolve().parent.parent
REPO_THEMES = ROOT / "themes"


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


#: workers allowed to end the app when they fail: quitting must end it either way
ENDS_THE_APP = {"quit"}


def _worker_calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str]]:
    """Every run_worker(...) and @work(...) call, with the name it gives its worker."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in ("run_worker", "work"):
            continue
        name = next((k.value.value for k in node.keywords if k.arg == "name"
                     and isinstance(k.value, ast.Constant)), "")
        yield node, str(name)


def test_every_worker_in_the_ui_is_logged_and_never_ends_the_app() -> None:
    """The one logger (LogsWorkerFailures) sits on every class that runs workers, and
    every worker runs with exit_on_error=False: a failure is logged, never swallowed,
    and never takes the app down."""
    not_logged, ending = [], []
    for path in sorted((ROOT / "sparktui" / "ui").rglob("*.py")):
        module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for node, name in _worker_calls(tree):
            keeps_running = any(k.arg == "exit_on_error" and isinstance(k.value, ast.Constant)
                                and k.value.value is False for k in node.keywords)
            if not keeps_running and name not in ENDS_THE_APP:
                ending.append(f"{module_name}:{node.lineno}")
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            if any(True for _ in _worker_calls(cls)):
                runner = getattr(importlib.import_module(module_name), cls.name)
                if not issubclass(runner, LogsWorkerFailures):
                    not_logged.append(f"{module_name}.{cls.name}")
    assert not not_logged, f"run workers without LogsWorkerFailures: {not_logged}"
    assert not ending, f"workers without exit_on_error=False: {ending}"
