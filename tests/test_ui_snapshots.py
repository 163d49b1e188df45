"""Pictures of the shell (pytest-textual-snapshot): regenerate with --snapshot-update.

The fleet is fixed (names, addresses, states) so a picture only changes when
the UI does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from textual.pilot import Pilot

from sparktui.core.device import LinkState
from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from tests.test_ui_shell import (
    REPO_THEMES,
    fixed_fleet,
    make_app,
    wait_for_fixed_states,
    wait_until,
)

DEMO_PORT = 47022


async def _settle(pilot: Pilot) -> None:
    await wait_for_fixed_states(pilot)


async def _settle_and_select_failed(pilot: Pilot) -> None:
    await wait_for_fixed_states(pilot)
    await pilot.press("down", "down", "down")  # the detail line shows the full reason


def test_shell_wide(snap_compare) -> None:
    assert snap_compare(make_app(fixed_fleet()), terminal_size=(120, 40),
                        run_before=_settle_and_select_failed)


def test_shell_side_pane(snap_compare) -> None:
    # a 50-column tmux side pane: compact tabs, no address column
    assert snap_compare(make_app(fixed_fleet()), terminal_size=(50, 40), run_before=_settle)


def test_shell_read_only_help(snap_compare) -> None:
    assert snap_compare(make_app(fixed_fleet(), read_only=True), terminal_size=(120, 40),
                        run_before=_settle, press=["question_mark"])


@pytest.mark.skipif(importlib.util.find_spec("sparktui.sim.server") is None,
                    reason="the simulated Spark (sparktui.sim.server) is not there yet")
def test_demo_connected(snap_compare) -> None:
    config = Config(path=Path("/nonexistent/sparktui.toml"))
    app = SparkApp(config, [], demo=True, demo_port=DEMO_PORT, theme_dirs=[REPO_THEMES])
    app.title = "sparktui"

    async def connected(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: bool(app.fleet.links) and
                         app.fleet.links[0].status.state is LinkState.CONNECTED, timeout=20)

    assert snap_compare(app, terminal_size=(120, 40), run_before=connected)
