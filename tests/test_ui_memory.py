"""The memory view and the post-mortem screen, on the real app with the simulated Spark at 80x24.

A simulated model load fills page cache and unified memory: the view's "free for
CUDA" falls, the load guard steps in (drop caches, compact), and the loading
container is stopped with the reason. Then the simulated box wedges and reboots,
and the post-mortem screen names the cause with its evidence and charts.
"""

from __future__ import annotations

import os

from sparktui.core.postmortem import Cause
from sparktui.ui.app import SparkApp
from sparktui.ui.screens import ConfirmScreen
from sparktui.ui.telemetry.memory import MemoryScreen
from sparktui.ui.telemetry.postmortem import PostmortemScreen
from tests.infra.pilot import wait_until
from tests.test_ui_telemetry import demo_app, screen_text

GIB = 1024**3


def _save(name: str, text: str) -> None:
    """Keep the screen for the record (bench/screens), when asked to."""
    folder = os.environ.get("SPARKTUI_SCREENS_DIR")
    if folder:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


async def open_memory(pilot, app: SparkApp) -> MemoryScreen:
    await pilot.press("2")
    await wait_until(pilot, lambda: (s := app.telemetry.get("spark-demo")) is not None
                     and s.latest.memory_truth is not None, timeout=30, what="memory figures")
    await pilot.press("m")
    await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen), what="memory view")
    return app.screen  # type: ignore[return-value]


async def test_memory_view_guard_and_postmortem_at_80x24() -> None:
    app = demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_memory(pilot, app)
        shown = screen_text(app)
        for label in ("Free for CUDA now (MemFree)", "Available after reclaim (MemAvailable)",
                      "Page cache + buffers, reclaimable", "Shared memory, /dev/shm (Shmem)",
                      "Locked, never reclaimed (Unevictable)", "Memory pressure (PSI",
                      "Large free blocks (buddyinfo)", "c drop caches"):
            assert label in shown, label

        # c asks first, naming the device; y drops the simulated caches
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen),
                         what="the drop-caches question")
        assert "spark-demo" in str(app.screen.question)
        await pilot.press("y")
        await wait_until(pilot, lambda: any("dropping caches on spark-demo: done" in n.message
                                            for n in app._notifications), what="drop done")

        # a simulated oversized model load, guarded as a deploy from sparktui would be
        device = app.demo.server.device  # type: ignore[union-attr]
        device.memory.rate_gib_s = 12.0
        service = view.service
        gb10 = view.gb10
        guard = gb10.guard("spark-demo")
        assert guard is not None
        stopped: list[str] = []

        async def stop() -> None:
            device.memory.end_load("llama-70b")
            stopped.append("llama-70b")

        guard.watch_load("c0ffee", "llama-70b", stop)
        device.memory.start_load("llama-70b", 140.0)
        await wait_until(pilot, lambda: any("dropping caches and compacting" in e.text
                                            for e in service.latest.events), timeout=30,
                         what="the guard's reclaim")
        _save("memory-reclaim.txt", screen_text(app))
        await wait_until(pilot, lambda: bool(stopped), timeout=40, what="the guard's stop")
        await wait_until(pilot, lambda: "stopped by the load guard" in screen_text(app),
                         what="the stop on screen")
        shown = screen_text(app)
        _save("memory-guard.txt", shown)
        assert "hard floor" in " ".join(e.text for e in service.latest.events)
        assert not device.memory.down

        # the box wedges and reboots: the post-mortem is made and shown with P
        device.memory.down_s = 2.0
        device.memory.wedge()
        await wait_until(pilot, lambda: gb10.watches["spark-demo"].reports, timeout=40,
                         what="a post-mortem")
        report = gb10.watches["spark-demo"].reports[-1]
        assert report.verdict.cause is Cause.GPU_WEDGE
        await pilot.press("P")
        await wait_until(pilot, lambda: isinstance(app.screen, PostmortemScreen))
        await pilot.pause(0.5)
        shown = screen_text(app)
        _save("postmortem.txt", shown)
        assert "GPU driver wedge" in shown and "NV_ERR_NO_MEMORY" in shown
        assert "free for CUDA" in shown
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MemoryScreen))


async def test_read_only_refuses_the_memory_actions() -> None:
    app = demo_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await open_memory(pilot, app)
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("g")
        guard = view.gb10.guard("spark-demo")
        assert guard is not None and guard.mode == "auto"
        assert any("read-only" in n.message for n in app._notifications)
        assert "read-only: no drop/compact/guard" in screen_text(app)
