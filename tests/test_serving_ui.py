"""The Serving tab on the live demo: the simulated Spark's model server publishes vLLM's
metrics (written by prometheus-client's own registry), and the tab's figures move."""

from __future__ import annotations

from pathlib import Path

from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from sparktui.ui.containers.pane import ContainersPane
from sparktui.ui.serving.pane import ServingPane
from sparktui.ui.telemetry.chart import Chart
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES, active_tab


async def test_serving_tab_on_the_demo_moves(tmp_path) -> None:
    app = SparkApp(Config(path=Path("/nonexistent/sparktui.toml")), [], demo=True,
                   theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        await wait_until(pilot, lambda: active_tab(app) == "serving", what="Serving tab")
        pane = app.query_one(ServingPane)
        await wait_until(pilot, lambda: len(pane.monitor.history.keys()) > 0
                         and pane.results and pane.results[0].figures is not None,
                         timeout=60, what="a first scrape of the demo's endpoint")
        first = pane.results[0]
        assert first.figures.engine == "vllm"
        assert first.endpoint.spec.device == "spark-demo"
        key = (first.id, "running")
        await wait_until(pilot, lambda: len(pane.monitor.history.series(key)) >= 3,
                         timeout=60, what="three scrapes")
        figures = pane.results[0].figures
        assert figures.running is not None and figures.kv_cache_pct is not None
        assert figures.ttft is not None and figures.ttft.p95 is not None
        assert figures.generation_tps is not None  # a rate: two readings were needed
        detail = str(pane.query_one("#serving-detail").render())
        assert "TTFT" in detail and "p95" in detail
        chart = pane.query_one("#chart-queue", Chart)
        assert chart.data is not None and chart.data.points
        # the container the demo's endpoint runs in is named in its row, with its GPU
        # process (found by the process's cgroup), and the Containers tab says what that
        # container serves
        await wait_until(pilot, lambda: any(r.pid and r.container for r in pane.rows),
                         timeout=30, what="a GPU process joined to its container")
        row = next(row for row in pane.rows if row.pid and row.container)
        assert row.container == "vllm-llama31-8b" and row.port == 8000
        assert row.models == ("nvidia/llama-3.1-8b-instruct-sim",)
        assert app.fleet.models.for_pid("spark-demo", row.pid) is row
        assert app.fleet.models.for_container("spark-demo", row.container_id) is row
        await pilot.press("3")
        containers = app.query_one(ContainersPane)
        await wait_until(pilot, lambda: any(
            info.name == row.container for s in containers.services
            for info in s.containers.values()), timeout=30, what="the demo's containers")
        for _ in range(containers.table.row_count):
            if "serves" in str(containers.query_one("#container-detail").render()):
                break
            await pilot.press("down")
        assert "nvidia/llama-3.1-8b-instruct-sim on :8000" in str(
            containers.query_one("#container-detail").render())
        # the process's pid is the container's own, as Docker reports it
        service = containers.services[0]
        state = await service.call(lambda client: client.api.inspect_container(
            row.container_id)["State"])
        assert state["Pid"] == row.pid
