"""Group 7: the process ends within a few seconds, however its terminal goes away.

Each case runs the real `sparktui --demo` in tmux, puts it in a tab or dialog
state, then closes the terminal under it (tmux kill-session, which hangs up
the pty) or sends SIGHUP, and checks the process is gone within the bound.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sparktui.ui.exit_guard import EXIT_DEADLINE_S, ExitGuard
from tests.reliability.tmux_app import TmuxApp, wait_gone

#: the exit deadline, plus time for a loaded CI machine to run the orderly part
BOUND_S = EXIT_DEADLINE_S + 6

STATES = {
    "devices": ("1",),
    "telemetry": ("2",),
    "containers": ("3",),
    "tunnels": ("4",),
    "chat": ("5",),
    "help dialog": ("question",),
    "settings dialog": ("C-s",),
    "command palette": ("C-p",),
}


@pytest.mark.parametrize("state", sorted(STATES))
def test_killing_the_terminal_ends_the_process(tmp_path, state: str) -> None:
    app = TmuxApp(tmp_path)
    try:
        app.wait_for("spark-demo")
        for key in STATES[state]:
            app.keys(key)
        time.sleep(0.5)
        app.kill_session()
        gone = wait_gone(app.pid, BOUND_S)
        assert gone is not None, f"sparktui outlived its terminal in the {state} state"
    finally:
        app.close()


def test_sighup_ends_the_process(tmp_path) -> None:
    app = TmuxApp(tmp_path)
    try:
        app.wait_for("spark-demo")
        os.kill(app.pid, signal.SIGHUP)
        assert wait_gone(app.pid, BOUND_S) is not None
    finally:
        app.close()


def test_the_watchdog_ends_a_shutdown_that_cannot_finish() -> None:
    ended: list[int] = []
    done = threading.Event()

    def end(code: int) -> None:
        ended.append(code)
        done.set()

    guard = ExitGuard(0.2, end_process=end)
    guard.arm("test", 129)
    guard.arm("again", 0)  # armed once: the first reason and code stand
    assert done.wait(5) and ended == [129] and guard.reason == "test"


def test_a_hung_up_terminal_is_noticed_without_a_signal() -> None:
    leader, follower = os.openpty()
    lost = threading.Event()
    guard = ExitGuard(60, end_process=lambda code: None)
    guard.watch_terminal(lost.set, fds=(follower,))
    os.close(leader)  # the terminal emulator went away
    try:
        assert lost.wait(5) and guard.armed
    finally:
        os.close(follower)
