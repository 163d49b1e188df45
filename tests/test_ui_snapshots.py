"""Pictures of the shell (pytest-textual-snapshot): regenerate with --snapshot-update.

The fleet is fixed (names, addresses, states) so a picture only changes when
the UI does.
"""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from sparktui.core.device import LinkState
from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from tests.infra.pilot import wait_until
from tests.test_ui_shell import (
    REPO_THEMES,
    QuietHub,
    fixed_fleet,
    make_app,
    wait_for_fixed_states,
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


def test_demo_connected(snap_compare) -> None:
    config = Config(path=Path("/nonexistent/sparktui.toml"))
    # the demo's figures move: this picture is of the connection, so telemetry stays quiet
    app = SparkApp(config, [], demo=True, demo_port=DEMO_PORT, theme_dirs=[REPO_THEMES],
                   telemetry=QuietHub(config.settings))
    app.title = "sparktui"

    async def connected(pilot: Pilot) -> None:
        await wait_until(pilot, lambda: bool(app.fleet.links) and
                         app.fleet.links[0].status.state is LinkState.CONNECTED, timeout=20)

    assert snap_compare(app, terminal_size=(120, 40), run_before=connected)


# -- the Telemetry tab, fed exact figures (the live demo's move every second) ------------------
def _telemetry_app(size: tuple[int, int]):
    from tests.test_ui_shell import LocalConnector, link
    from tests.test_ui_telemetry import fill_history, settle_cards, state

    # connected: the fed figures are live (a device not connected shows them as stale)
    app = make_app([link("spark-01", LocalConnector("spark-01"))])

    async def fed(pilot: Pilot) -> None:
        from sparktui.ui.messages import TelemetryUpdated
        from sparktui.ui.panes import TelemetryPane

        await wait_until(pilot, lambda: app.fleet.links[0].status.state is LinkState.CONNECTED)
        await pilot.press("2")
        service = app.telemetry.get("spark-01")
        assert service is not None
        fill_history(service.history, 100.0)
        app.post_message(TelemetryUpdated(state("spark-01", t=100.0)))
        pane = app.query_one(TelemetryPane)
        await settle_cards(pilot, pane, charts=1 if size[0] < 80 else 4)
        await pilot.pause()

    return app, fed


def test_telemetry_wide(snap_compare) -> None:
    app, fed = _telemetry_app((120, 40))
    assert snap_compare(app, terminal_size=(120, 40), run_before=fed)


def test_telemetry_side_pane(snap_compare) -> None:
    app, fed = _telemetry_app((50, 40))
    assert snap_compare(app, terminal_size=(50, 40), run_before=fed)
