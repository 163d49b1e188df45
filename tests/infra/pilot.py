"""Waiting on a Textual app under Pilot: one helper for every UI test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0,
                     what: str = "condition") -> None:
    """Let the app run until `predicate()` holds (then one more refresh), or fail saying
    what was awaited. The timeout only bounds a failure; a pass returns at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await pilot.pause(0.02)
    await pilot.pause()
