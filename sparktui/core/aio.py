"""`within(awaitable, timeout)`: asyncio.wait_for, minus Python 3.11's lost cancellations.

On Python 3.11, `asyncio.wait_for` swallows a cancellation that arrives in the same
loop iteration as its inner future's result (CPython gh-86296, fixed in 3.12 by
rewriting wait_for on top of `asyncio.timeout`). A task cancelled while it reads a
stream that answers five times a second then reads on, and whoever awaits it after
cancelling waits forever: seen as a telemetry service whose close() never returned.
`asyncio.timeout` (3.11+) has no inner task, so it has no such race, and it spares
the task that wait_for creates for every read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """`await awaitable`, raising TimeoutError after `timeout` seconds (None: no limit)."""
    async with asyncio.timeout(timeout):
        return await awaitable
