"""Joining two byte streams, counting what crosses: the one splice every tunnel uses.

Forwards and reverse forwards both end up here, so connection and byte counts
mean the same thing in both: "in" is what came from the device's side, "out"
what went to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CHUNK = 65536


@dataclass
class Traffic:
    """Counters of one tunnel, kept across reconnects until the tunnel is removed."""

    bytes_in: int = 0  # from the device's side
    bytes_out: int = 0  # to the device's side
    open_connections: int = 0
    total_connections: int = 0
    #: clients that could not be connected (device away, nothing listening)
    refused: int = 0


async def _pump(reader: Any, writer: Any, count: Callable[[int], None]) -> bool:
    """Copy until EOF; True on a clean EOF (passed on as a half-close), False on an error."""
    try:
        while data := await reader.read(CHUNK):
            count(len(data))
            writer.write(data)
            await writer.drain()
        # pass the half-close on: an HTTP/1.0 client may still be waiting for its answer
        if writer.can_write_eof():
            writer.write_eof()
        return True
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # either end going away (OSError, asyncssh's errors) ends it
        log.debug("splice side ended: %s: %s", type(exc).__name__, exc)
        return False


def _close(writer: Any) -> None:
    with contextlib.suppress(Exception):
        writer.close()


async def splice(client: tuple[Any, Any], upstream: tuple[Any, Any], traffic: Traffic, *,
                 device_is_upstream: bool = True) -> None:
    """Copy both ways between `client` and `upstream` (reader, writer pairs) until both end.

    `device_is_upstream`: True for a forward (the client is here, upstream on the
    device), False for a reverse forward (the client came from the device).
    """
    def count_in(n: int) -> None:
        traffic.bytes_in += n

    def count_out(n: int) -> None:
        traffic.bytes_out += n

    up_count, down_count = (count_out, count_in) if device_is_upstream else (count_in, count_out)
    traffic.open_connections += 1
    traffic.total_connections += 1
    pumps = [asyncio.ensure_future(_pump(client[0], upstream[1], up_count)),
             asyncio.ensure_future(_pump(upstream[0], client[1], down_count))]
    try:
        for finished in asyncio.as_completed(pumps):
            if not await finished:
                break  # one side broke: the other cannot finish cleanly either
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        _close(client[1])
        _close(upstream[1])
        traffic.open_connections -= 1
