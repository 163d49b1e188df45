"""Running the full-screen UI as a process: the app, its exit guard, the session's close.

`sparktui` (cli.run_tui) and the data-source commands call `run_tui`; tests
build SparkApp themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sparktui.core.device import DeviceSpec
from sparktui.services.config import Config
from sparktui.services.session import Session
from sparktui.services.state import SessionState
from sparktui.services.telemetry import TelemetryHub
from sparktui.ui.app import SparkApp
from sparktui.ui.exit_guard import EXIT_TERMINAL_LOST, ExitGuard


def run_tui(config: Config, specs: Sequence[DeviceSpec], *, demo: bool = False,
            accept_new_host_keys: bool = False, read_only: bool = False,
            compact: bool | None = None, restore: SessionState | None = None,
            telemetry: TelemetryHub | None = None, link_policy: str = "start",
            session: Session | None = None) -> int:
    """Run the full-screen UI until the user quits; returns the process exit code."""
    app = SparkApp(config, specs, demo=demo, accept_new_host_keys=accept_new_host_keys,
                   read_only=read_only or None, compact=compact, persist=True,
                   restore=restore, telemetry=telemetry, link_policy=link_policy,
                   session=session)

    guard = ExitGuard()
    app.exit_guard = guard

    async def run() -> int:
        loop = asyncio.get_running_loop()
        # a closed pty or EIO may come without SIGHUP (the process is not in the tty's
        # foreground group, or the signal is ignored): watch the descriptors as well
        guard.watch_terminal(lambda: loop.call_soon_threadsafe(app.exit, None,
                                                               EXIT_TERMINAL_LOST))
        try:
            await app.run_async()
        finally:
            # the app may also end by a crash: links and the demo still get closed
            guard.arm("the app ended")
            await app.close_session()
        return app.return_code if app.return_code is not None else 0

    return asyncio.run(run())
