"""The UI core's shape: panes read the app through typed state, never by probing it.

The static check walks every module of sparktui/ui: no getattr/hasattr whose
object is an app (`app`, `self.app`, `node.app`, ...). Typed attributes
(`self.session.read_only`), `data_bind` (`compact`, `focused_device`) and the
GrammarApp methods (`key_for`) are the ways in.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names_an_app(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "app") or (
        isinstance(node, ast.Attribute) and node.attr == "app")


def test_the_ui_never_probes_the_app_with_getattr_or_hasattr() -> None:
    probes = []
    for path in sorted((ROOT / "sparktui" / "ui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("getattr", "hasattr") and node.args \
                    and _names_an_app(node.args[0]):
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not probes, f"probes of the app: {probes}"


async def test_chart_titles_move_with_the_gauges_on_every_tick() -> None:
    """The line is redrawn at most every MIN_REDRAW_S; the figure in its title is not
    held back with it: two ticks within that time, and the title says the second's."""
    from sparktui.core.units import fmt_percent
    from sparktui.ui.messages import TelemetryUpdated
    from sparktui.ui.panes import TelemetryPane
    from sparktui.ui.telemetry.chart import Chart
    from sparktui.ui.telemetry.gauge import Gauge
    from tests.infra.pilot import wait_until
    from tests.test_ui_telemetry import fill_history, gb10, quiet_app, settle_cards, state

    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        pane = app.query_one(TelemetryPane)
        service = app.telemetry.get("spark-01")
        assert service is not None
        fill_history(service.history, 100.0)
        app.post_message(TelemetryUpdated(state(gpus=(gb10(100.0, util_gpu=20),))))
        await settle_cards(pilot, pane)
        chart = pane._cards[0].query_one("#chart-util", Chart)
        gauge = pane._cards[0].query_one("#gauge-util", Gauge)
        for t, util in ((101.0, 63), (102.0, 87)):  # well within MIN_REDRAW_S of the draw
            service.history.record_gpu(gb10(t, util_gpu=util))
            app.post_message(TelemetryUpdated(state(t=t, gpus=(gb10(t, util_gpu=util),))))
            await wait_until(pilot, lambda u=util: fmt_percent(u) in gauge.reading.text)
            head = chart.render().plain.splitlines()[0]
            assert head == f"Utilisation {fmt_percent(util)}", head
