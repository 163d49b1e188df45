"""A device link: one connection per device that keeps itself alive.

A transport (sparktui.transport) is one live connection; when it dies it stays
dead. A DeviceLink owns the device's current transport, replaces it with a
fresh one after a drop (exponential backoff with jitter, capped), and publishes
every state change as a LinkStatus. Services that run streams or forwards over
the device take transports from `sessions()`: it yields the transport of every
new connection once, so each owner re-issues its work exactly once after a
reconnect and never runs two copies of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, FailureKind, LinkState, LinkStatus
from sparktui.core.sanitize import clean_reason
from sparktui.transport.base import CommandResult, ConnectionLost, LineStream, Transport

log = logging.getLogger(__name__)

StatusListener = Callable[[LinkStatus], None]


class ConnectFailure(Exception):
    """A connection attempt failed for a reason the user can act on."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        reason = clean_reason(reason)  # it quotes the peer
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class NotConnected(ConnectionLost):
    """An operation was asked of a link that has no live connection right now."""


Connector = Callable[[], Awaitable[Transport]]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: first retry soon, later ones spaced out, capped."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.25  # +- fraction, so a fleet does not reconnect in lock step

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = min(self.cap, self.initial * self.factor ** max(0, attempt - 1))
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.cap, base * spread)


class DeviceLink:
    """The persistent connection to one device."""

    def __init__(self, spec: DeviceSpec, connector: Connector, *,
                 backoff: Backoff | None = None) -> None:
        self.spec = spec
        self._connector = connector
        self._backoff = backoff or Backoff()
        self._status = LinkStatus(LinkState.CLOSED)
        self._listeners: list[StatusListener] = []
        self._transport: Transport | None = None
        self._generation = 0  # bumps on every successful connect
        self._lost_at: float | None = None
        self._unreachable_since: float | None = self._status.since
        self._changed = asyncio.Condition()
        self._retry_now = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- state -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def status(self) -> LinkStatus:
        return self._status

    @property
    def transport(self) -> Transport | None:
        return self._transport

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def lost_at(self) -> float | None:
        """time.monotonic() when the last connection was lost; None while connected or
        before the first one. What was read over it is this old (shown as stale)."""
        return self._lost_at

    @property
    def unreachable_since(self) -> float | None:
        """time.monotonic() since when the device has not been connected; None while it is.
        Unlike `status.since` it does not restart at every retry: a link cycling between
        connecting and reconnecting faster than an alert's delay is down all along."""
        return self._unreachable_since

    def subscribe(self, listener: StatusListener) -> Callable[[], None]:
        """Call `listener(status)` on every change (on the event loop). Returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _publish(self, status: LinkStatus) -> None:
        self._status = status
        if status.state is LinkState.CONNECTED:
            self._unreachable_since = None
        elif self._unreachable_since is None:
            self._unreachable_since = status.since
        log.info("%s: %s", self.spec.name, status.describe())
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # a broken listener must not take the link down
                log.exception("status listener failed for %s", self.spec.name)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"link:{self.spec.name}")

    def retry(self) -> None:
        """Skip the backoff wait, or try again after a failure that stopped retries."""
        self._retry_now.set()
        if self._task is None or self._task.done():
            self.start()

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()
        self._publish(LinkStatus(LinkState.CLOSED))

    async def _wait_retry(self, delay: float | None) -> None:
        self._retry_now.clear()
        with contextlib.suppress(TimeoutError):
            await within(self._retry_now.wait(), delay)

    async def _supervise(self) -> None:
        attempt = 0
        lost_reason: str | None = None
        while not self._closing:
            if attempt == 0 and lost_reason is None:
                self._publish(LinkStatus(LinkState.CONNECTING))
            else:
                self._publish(LinkStatus(LinkState.RECONNECTING, attempt=attempt + 1,
                                         reason=lost_reason, failure=FailureKind.LOST))
            try:
                transport = await self._connector()
            except ConnectFailure as failure:
                attempt += 1
                if not failure.kind.retryable:
                    # auth and host-key problems need the user, not a retry loop
                    self._publish(LinkStatus(LinkState.FAILED, attempt=attempt,
                                             reason=failure.reason, failure=failure.kind))
                    await self._wait_retry(None)
                    attempt, lost_reason = 0, None
                    continue
                delay = self._backoff.delay(attempt)
                self._publish(LinkStatus(
                    LinkState.RECONNECTING, attempt=attempt,
                    next_retry_at=time.monotonic() + delay,
                    reason=failure.reason, failure=failure.kind))
                lost_reason = failure.reason
                await self._wait_retry(delay)
                continue
            attempt, lost_reason = 0, None
            self._transport = transport
            self._generation += 1
            self._lost_at = None
            self._publish(LinkStatus(LinkState.CONNECTED))
            await transport.wait_closed()
            self._transport = None
            self._lost_at = time.monotonic()
            if self._closing:
                break
            lost_reason = getattr(transport, "close_reason", None) or "connection lost"
            # the first retry after a drop goes at once: most drops are brief
            attempt = 0

    # -- for the owners of streams and forwards -------------------------------
    async def wait_connected(self) -> Transport:
        async with self._changed:
            await self._changed.wait_for(lambda: self._transport is not None)
            assert self._transport is not None
            return self._transport

    async def sessions(self) -> AsyncIterator[Transport]:
        """Yield the transport of each new connection, once each.

        An owner loops over this, (re)issues its stream on every transport it
        gets, and comes back for the next when the stream raises ConnectionLost.
        """
        seen = [0]  # a cell, so the predicate reads the current value
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: self._transport is not None and self._generation != seen[0])
                transport = self._transport
                seen[0] = self._generation
            assert transport is not None
            yield transport

    def _require(self) -> Transport:
        transport = self._transport
        if transport is None or not transport.is_alive():
            raise NotConnected(f"{self.spec.name} is not connected ({self._status.describe()})")
        return transport

    async def run(self, command: str, *, timeout: float | None = 30.0,
                  input: str | None = None) -> CommandResult:
        return await self._require().run(command, timeout=timeout, input=input)

    async def stream(self, command: str, *, stall_after: float | None = None) -> LineStream:
        return await self._require().stream(command, stall_after=stall_after)
