"""Honest state on the Containers, Chat and Telemetry tabs when a device drops, and the
rediscovery of model endpoints when it comes back.

The real SparkApp against a real sshd (the stand-in nvidia-smi on its PATH, the
shared dockerd behind its socket forward). While connected, each Telemetry chart's
title carries the same figure as its gauge on every tick. Then the sshd is stopped
and its sessions killed: within the keepalive bound the Containers rows are dimmed
and struck, its status line says STALE with the age, and acting on a row is refused
with the reason; the Chat endpoint on that device is marked STALE with its age and
a prompt is not sent; the Telemetry history has a gap at the drop and its charts
move on past the last sample (the gap grows, no line is carried over). The sshd is
started again: Chat and Serving look for endpoints on the device again (their one
watcher, RediscoveringPane) and the marks go.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Static

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.core.units import fmt_percent
from sparktui.services.config import Config, Settings
from sparktui.services.endpoints import manual_spec
from sparktui.ui.app import SparkApp
from sparktui.ui.chat.input import ChatInput
from sparktui.ui.chat.pane import ChatPane
from sparktui.ui.chat.status import ChatStatus
from sparktui.ui.containers.pane import ContainersPane
from sparktui.ui.serving.pane import ServingPane
from sparktui.ui.telemetry.chart import Chart
from sparktui.ui.telemetry.pane import TelemetryPane
from tests.infra import SshdServer
from tests.infra.docker import DockerEngine
from tests.infra.pilot import wait_until
from tests.infra.sshd import free_port

pytestmark = pytest.mark.sshd

KEEPALIVE_S, KEEPALIVE_COUNT = 1.0, 2
#: a dead peer is noticed within interval * count; a tick of the stale timers on top
STALE_BOUND_S = KEEPALIVE_S * KEEPALIVE_COUNT + 3.0


def _counting(connector) -> list[str]:
    """Record each device the connector is asked to search (the real search still runs)."""
    searched: list[str] = []
    real = connector.discover_device

    async def discover_device(link):
        searched.append(link.name)
        return await real(link)

    connector.discover_device = discover_device
    return searched


def _text(widget: Static) -> str:
    return str(widget.render())


async def test_a_dropped_device_is_stale_on_containers_chat_and_charts_then_rediscovered(
        ssh_client, sshd: SshdServer, fake_gpu, docker_engine: DockerEngine,
        tmp_path: Path) -> None:
    fake_gpu("gb10")
    mine = docker_engine.run(["sleep", "3600"], name=f"sp-stale-{docker_engine.session}",
                             network_mode="none", init=True)
    settings = Settings(refresh_interval=0.5, keepalive_interval=KEEPALIVE_S,
                        keepalive_count_max=KEEPALIVE_COUNT, reconnect_max_delay=1.0)
    app = SparkApp(Config(path=tmp_path / "config.toml", settings=settings),
                   [DeviceSpec.parse("spark-test")])
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            link = app.fleet.links[0]
            await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED, 20)

            # -- while connected: chart titles in step with the gauges, every tick --------
            await pilot.press("2")
            telemetry = app.query_one(TelemetryPane)
            await wait_until(pilot, lambda: bool(telemetry._cards) and all(
                c.is_mounted for c in telemetry._cards.values())
                and telemetry.chart_render_count > 0, 20, "the charts drawn")
            for _ in range(6):
                count = telemetry.refresh_count
                await wait_until(pilot, lambda c=count: telemetry.refresh_count > c, 10)
                gpu = telemetry.focused_state.gpus[0]
                util = telemetry._cards[0].query_one("#chart-util", Chart)
                head = util.render().plain.splitlines()[0]
                assert head == f"Utilisation {fmt_percent(gpu.util_gpu)}", head

            # -- the other tabs see the device: its containers, an endpoint on it --------
            await pilot.press("3")
            containers = app.query_one(ContainersPane)
            row = f"spark-test/{mine.id}"
            await wait_until(pilot, lambda: row in containers._rows, 30, "my container")
            await pilot.press("5")
            chat = app.query_one(ChatPane)
            chat_searches = _counting(chat.connector)
            await chat.use_endpoint(manual_spec(f"http://127.0.0.1:{free_port()}/v1",
                                                device="spark-test", name="on-spark"))
            # the prompt has the focus: digits are text there, so the tabs are shown directly
            app.action_show_tab("serving")
            serving = app.query_one(ServingPane)
            serving_searches = _counting(serving.connector)
            app.action_show_tab("containers")

            # -- the device drops ------------------------------------------------------------
            sshd.stop(kill_sessions=True)
            dropped = time.monotonic()
            await wait_until(pilot, lambda: link.status.state is not LinkState.CONNECTED
                             and "STALE: list from" in _text(
                                 app.query_one("#containers-status", Static)),
                             STALE_BOUND_S, "Containers marked stale")
            noticed = time.monotonic() - dropped
            status = _text(app.query_one("#containers-status", Static))
            assert "s ago, spark-test is not connected" in status, status
            table = containers.table
            table.move_cursor(row=table.get_row_index(row))
            name_cell = table.get_cell(row, "name")
            assert isinstance(name_cell, Text)
            assert any(span.style.strike and span.style.dim for span in name_cell.spans
                       if not isinstance(span.style, str)), name_cell.spans
            await pilot.press("s")  # stop: refused, with the reason, nothing asked
            await wait_until(pilot, lambda: any(
                "Not done: spark-test is not connected" in n.message
                for n in app._notifications), 5)

            app.action_show_tab("chat")
            await wait_until(pilot, lambda: "STALE: last seen" in (status := _text(
                chat.query_one(ChatStatus))) and "spark-test is not connected" in status,
                5, "Chat marked stale")
            chat.query_one(ChatInput).text = "still there?"
            await pilot.press("enter")
            await wait_until(pilot, lambda: any("Not sent" in n.message
                                                for n in app._notifications), 5)
            assert chat.query_one(ChatInput).text == "still there?"  # nothing lost

            app.action_show_tab("telemetry")
            history = app.telemetry.get("spark-test").history
            series = history.series(("gpu0", "util_gpu"))
            assert series is not None and series.last is not None
            assert series.last[1] is None  # the line ends at the drop
            gap_at = series.last[0]
            await wait_until(pilot, lambda: (util.data is not None
                                             and util.data.now - gap_at >= 3.0), 10,
                             "the chart moving on past the drop")

            # -- it comes back: Chat and Serving search it again, the marks go ----------------
            chat_before, serving_before = len(chat_searches), len(serving_searches)
            sshd.restart()  # on the same port, with the same host key
            link.retry()
            await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED, 20)
            await wait_until(pilot, lambda: len(chat_searches) > chat_before
                             and len(serving_searches) > serving_before, 20,
                             "Chat and Serving searching the device again")
            app.action_show_tab("containers")
            await wait_until(pilot, lambda: "STALE" not in _text(
                app.query_one("#containers-status", Static)), 20,
                f"no STALE on Containers: {_text(app.query_one('#containers-status', Static))} "
                f"{link.status} {containers.services[0].state}")
            print(f"\ndevice drop marked stale on Containers after {noticed:.2f} s "
                  f"(bound {STALE_BOUND_S:.0f} s)")
    finally:
        mine.remove(force=True)
