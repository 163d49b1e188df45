"""The Serving tab on the live demo: the simulated Spark's model server publishes vLLM's
metrics (written by prometheus-client's own registry), and the tab's figures move."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from sparktui.services.config import Config
from sparktui.services.session import Session
from sparktui.services.store import ConfigStore
from sparktui.ui.app import SparkApp
from sparktui.ui.containers.pane import ContainersPane
from sparktui.ui.screens.confirm import ConfirmScreen
from sparktui.ui.serving.fit import FitScreen
from sparktui.ui.serving.models import ModelsScreen
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


async def test_demo_models_on_disk_fit_and_delete(tmp_path) -> None:
    """The demo's Models screen lists its caches (through MODELS_SCRIPT's marker), marks
    the model the seeded vLLM container mounts as in use, shows the download in
    progress, weighs the MLA model with its latent, and deletes an unused model."""
    config = Config(path=tmp_path / "sparktui.toml")
    session = Session(config, [], store=ConfigStore(config.path), demo=True,
                      data_dir=tmp_path / "data")
    app = SparkApp(config, session=session, theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        pane = app.query_one(ServingPane)
        await wait_until(pilot, lambda: bool(pane.results), timeout=60,
                         what="the demo's endpoint")
        await pilot.press("m")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsScreen)
                         and bool(app.screen.models), timeout=30, what="the models listed")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        by_name = {m.name: m for m in screen.models}
        assert set(by_name) == {"meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
                                "deepseek-ai/DeepSeek-V2-Lite-Chat", "Qwen/Qwen3-30B-A3B",
                                "Qwen/Qwen2.5-0.5B-Instruct", "gpt-oss-20b-mxfp4.gguf"}
        assert by_name["meta-llama/Llama-3.1-8B-Instruct"].in_use_by == ("vllm-llama31-8b",)
        assert by_name["Qwen/Qwen3-30B-A3B"].downloading
        assert "6 models" in str(screen.query_one("#models-status").render())

        def select(name: str) -> None:
            screen.query_one(DataTable).move_cursor(
                row=[m.name for m in screen.models].index(name))

        select("deepseek-ai/DeepSeek-V2-Lite-Chat")
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, FitScreen)
                         and "MLA latent" in str(app.screen.query_one("#fit-result").render()),
                         what="the MLA model's fit, from its config.json")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the models")

        select("meta-llama/Llama-3.1-8B-Instruct")
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # in use: refused, not asked
        assert any("in use by vllm-llama31-8b" in n.message for n in app._notifications)

        # read-only mode switched on while the screen is open: the delete is refused
        select("Qwen/Qwen2.5-7B-Instruct")
        session.set_read_only(True)
        await pilot.press("d")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("read-only mode: not deleting Qwen/Qwen2.5-7B-Instruct" in n.message
                   for n in app._notifications)
        session.set_read_only(False)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen),
                         what="the delete's confirmation")
        assert "Qwen/Qwen2.5-7B-Instruct" in str(app.screen.question)
        await pilot.press("y")
        await wait_until(pilot, lambda: "Qwen/Qwen2.5-7B-Instruct" not in
                         {m.name for m in screen.models} and len(screen.models) == 5,
                         timeout=30, what="the deleted model gone from the list")
        audit = (tmp_path / "data" / "audit.log").read_text()
        assert '"model.delete"' in audit and "Qwen/Qwen2.5-7B-Instruct" in audit


async def test_a_dropped_demo_device_leaves_its_endpoints_stale_and_refuses_models() -> None:
    # honest state: the demo box freezes (the simulator's wedge: every connection dies and
    # none is answered until it reboots); Serving keeps the last figures, dimmed and struck,
    # with their age, and `m` is refused with the reason, as Containers and Chat do
    from rich.text import Text

    from sparktui.core.device import LinkState
    from tests.test_ui_telemetry import demo_app

    app = demo_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        pane = app.query_one(ServingPane)
        await wait_until(pilot, lambda: bool(pane.results) and pane.results[0].figures
                         is not None, timeout=60, what="a first scrape of the demo's endpoint")
        seen = pane.results[0].figures
        link = app.fleet.get("spark-demo")
        assert link is not None and seen is not None
        memory = app.demo.server.device.memory  # type: ignore[union-attr]
        memory.down_s = 600.0  # down for the rest of the test
        memory.wedge()

        def detail() -> str:
            return str(pane.query_one("#serving-detail").render())

        await wait_until(pilot, lambda: link.status.state is not LinkState.CONNECTED
                         and "STALE: last scrape" in detail(), timeout=30,
                         what="the endpoint marked stale")
        assert "s ago, spark-demo is not connected" in " ".join(detail().split()), detail()
        # a few scrapes later: still the last figures seen, not blanks, and still stale
        await wait_until(pilot, lambda: any(
            r.error for r in pane.monitor.latest), timeout=30, what="a failed scrape")
        assert pane.results[0].figures is seen
        table = pane.query_one("#serving-table")
        cell = table.get_cell(pane.results[0].id, "model")
        assert isinstance(cell, Text) and cell.plain != "—"
        assert any(not isinstance(span.style, str) and span.style.strike and span.style.dim
                   for span in cell.spans), cell.spans
        await pilot.press("m")  # the models on a disk that cannot be reached: refused
        await wait_until(pilot, lambda: any("Not done: spark-demo is not connected" in n.message
                                            for n in app._notifications), timeout=10)
        assert not isinstance(app.screen, ModelsScreen)
