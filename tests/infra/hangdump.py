"""What a test was waiting on when it ran out of time.

pytest-timeout ends a hung test with the main thread's stack, which for an asyncio test
is the event loop's idle `select()`: it says nothing of the task that never finished.
Shortly before the timeout this dumps every thread's stack and every pending asyncio
task's stack to stderr, which pytest shows with the failure. A test that ends in time
prints nothing.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import sys
import threading

#: how long before pytest-timeout's deadline the dump is written
MARGIN_S = 8.0


def _pending_tasks_text() -> str:
    out = io.StringIO()
    loops = [obj for obj in gc.get_objects()
             if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_closed()]
    for loop in loops:
        for _ in range(3):  # the loop's thread may change the task set meanwhile
            try:
                tasks = list(asyncio.all_tasks(loop))
                break
            except RuntimeError:
                continue
        else:
            tasks = []
        print(f"-- event loop {loop!r}: {len(tasks)} pending tasks", file=out)
        for task in tasks:
            print(f"  task {task.get_name()}:", file=out)
            try:
                for line in _await_chain(task.get_coro()):
                    print(f"    {line}", file=out)
            except Exception as error:  # a task finishing under our feet: say so, go on
                print(f"    ({error!r})", file=out)
    return out.getvalue()


def _await_chain(awaitable: object) -> list[str]:
    """Where a coroutine is suspended, and what it awaits, down to the innermost frame
    (a task's own stack stops at its outermost coroutine)."""
    lines: list[str] = []
    for _ in range(40):
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None) \
            or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(f"awaiting {awaitable!r:.200}")
            break
        lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None) \
            or getattr(awaitable, "gi_yieldfrom", None)
        if awaitable is None:
            break
    return lines


def _dump(name: str) -> None:
    sys.stderr.write(f"\n==== {name} is about to time out: threads and pending tasks ====\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.write(_pending_tasks_text())
    sys.stderr.flush()


class HangDump:
    """A timer that dumps stacks `MARGIN_S` before `timeout_s`, unless cancelled first."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self._timer = threading.Timer(max(1.0, timeout_s - MARGIN_S), _dump, args=(name,))
        self._timer.daemon = True

    def __enter__(self) -> HangDump:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
