"""One tunnel at run time: its listener, its splices, its state and its probe.

See sparktui.services.tunnels for the behaviour (what "waiting" does with new
clients, how a reverse forward is relayed); the manager there owns these.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sparktui.core.aio import within
from sparktui.core.device import LinkState, LinkStatus
from sparktui.core.sanitize import strip_control
from sparktui.services.link import DeviceLink
from sparktui.services.tunnel_specs import (
    TunnelSpec,
    local_url,
    pick_local_port,
)
from sparktui.transport.base import ConnectionLost, Forward, Transport, TransportError
from sparktui.transport.splice import Traffic, splice

log = logging.getLogger(__name__)

#: how long a client that arrives while the device is away waits for it
CLIENT_WAIT_S = 10.0
#: how long opening one connection at the far end may take
CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 5.0
#: a reverse forward the device refused (port in use there) is asked for again this often
REVERSE_RETRY_S = 10.0


class TunnelState(enum.Enum):
    STOPPED = "stopped"
    NO_DEVICE = "no device"  # saved for a device this session does not have open
    WAITING = "waiting"  # listening here, the device connection is not up
    UP = "up"
    FAILED = "failed"


@dataclass(frozen=True)
class TunnelStatus:
    state: TunnelState
    reason: str | None = None
    since: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        state = self.state
        if state is TunnelState.UP:
            return "up"
        if state is TunnelState.WAITING:
            return f"waiting for connection ({self.reason})" if self.reason \
                else "waiting for connection"
        if state is TunnelState.FAILED:
            return f"failed: {self.reason}" if self.reason else "failed"
        if state is TunnelState.NO_DEVICE:
            return "device not open in this session"
        return "stopped"


@dataclass(frozen=True)
class ProbeResult:
    """Whether something answered at the far end, and how."""

    answers: bool | None  # None: could not ask (the device is away)
    detail: str
    at: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        if self.answers is None:
            return f"? {self.detail}"
        return f"{'yes' if self.answers else 'no'}: {self.detail}"


@dataclass
class AddResult:
    tunnel: Tunnel
    #: things the user should be told (the local port that was picked)
    notes: list[str] = field(default_factory=list)
    #: things the user should be warned about (a wide bind, a config not saved)
    warnings: list[str] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # "Connection refused", not asyncio's wording
    return strip_control(getattr(exc, "reason", None) or str(exc) or type(exc).__name__)


def _port_taken(spec: TunnelSpec, exc: OSError) -> str:
    return (f"local port {spec.bind}:{spec.local_port} is in use by another program "
            f"({exc.strerror or exc}); free it, or edit the tunnel to use another port")


class Tunnel:
    """One forward at run time: its spec, its state, its counters."""

    def __init__(self, spec: TunnelSpec, on_change: Callable[[Tunnel], None]) -> None:
        self.spec = spec
        self.status = TunnelStatus(TunnelState.STOPPED)
        self.traffic = Traffic()
        self.probe: ProbeResult | None = None
        #: the last client that could not be connected, and why
        self.last_error: str | None = None
        #: where the device listens for a reverse forward (it may pick the port)
        self.device_listen: tuple[str, int] | str | None = None
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._link: DeviceLink | None = None
        self._transport: Transport | None = None
        self._connected = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self._remote: Forward | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # -- what the UI and the CLI read -------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def link(self) -> DeviceLink | None:
        """The device link this tunnel follows while it runs."""
        return self._link if self.running else None

    @property
    def transport(self) -> Transport | None:
        transport = self._transport
        return transport if transport is not None and transport.is_alive() else None

    @property
    def url(self) -> str | None:
        """Where a browser reaches the service (forwards only)."""
        spec = self.spec
        if spec.reverse or spec.local_port is None:
            return None
        return local_url(spec.bind, spec.local_port, spec.url_path)

    @property
    def local_address(self) -> str:
        port = self.spec.local_port if self.spec.local_port is not None else "auto"
        return f"{self.spec.bind}:{port}"

    @property
    def remote_address(self) -> str:
        return f"{self.spec.remote_host}:{self.spec.remote_port}"

    def set_state(self, state: TunnelState, reason: str | None = None) -> None:
        if reason is not None:
            # reasons quote the device and sshd (asyncssh's ChannelOpenError text): no escapes
            reason = strip_control(reason)
        if self.status.state is state and self.status.reason == reason:
            return
        self.status = TunnelStatus(state, reason)
        log.info("tunnel %s/%s: %s", self.spec.device, self.name, self.status.describe())
        try:
            self._on_change(self)
        except Exception:  # a broken listener must not stop the tunnel
            log.exception("tunnel listener failed")

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, link: DeviceLink) -> None:
        if self.running:
            return
        self._link = link
        self.last_error = None
        runner = self._run_reverse if self.spec.reverse else self._run_forward
        self._task = asyncio.get_running_loop().create_task(
            runner(link), name=f"tunnel:{self.spec.device}/{self.name}")
        self._task.add_done_callback(self._runner_ended)

    def _runner_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug, not a network event: say so, do not hide it
            log.error("tunnel %s/%s stopped", self.spec.device, self.name, exc_info=exc)
            self.set_state(TunnelState.FAILED, f"internal error: {type(exc).__name__}: {exc}")

    async def stop(self, state: TunnelState = TunnelState.STOPPED) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._close_listeners()
        self.set_state(state)

    def close_now(self) -> None:
        """Stop listening at once, without waiting (for a UI being torn down)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._close_listeners()
        self.set_state(TunnelState.STOPPED)

    def _close_listeners(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # the port is free from here on
        for handler in list(self._handlers):
            handler.cancel()
        self._connected.clear()
        self._transport = None

    async def _close_remote(self) -> None:
        remote, self._remote = self._remote, None
        self.device_listen = None
        if remote is None:
            return
        try:
            await within(remote.close(), 5)
        except Exception as exc:  # the connection may already be gone: that closes it too
            log.info("closing the device's listener of %s: %s", self.name, _reason(exc))

    # -- following the device ---------------------------------------------------------------
    def _waiting(self, link: DeviceLink, reason: str | None = None) -> None:
        status = link.status
        if reason is None and status.state is not LinkState.CONNECTED:
            reason = f"{link.name} {status.describe()}"
        self.set_state(TunnelState.WAITING, reason)

    def _link_changed(self, link: DeviceLink, status: LinkStatus) -> None:
        # keep the "waiting" reason current (reconnecting, failed: auth, ...)
        if self.status.state is TunnelState.WAITING and status.state is not LinkState.CONNECTED:
            self._waiting(link)

    async def _follow(self, link: DeviceLink, on_session) -> None:
        """Up on every new connection of `link`, waiting in between; runs until cancelled."""
        unsubscribe = link.subscribe(lambda status: self._link_changed(link, status))
        try:
            self._waiting(link)
            async with contextlib.aclosing(link.sessions()) as sessions:
                async for transport in sessions:
                    if not transport.is_alive():
                        continue
                    if not await on_session(transport):
                        self._waiting(link)
                        continue
                    self._transport = transport
                    self._connected.set()
                    self.set_state(TunnelState.UP)
                    await transport.wait_closed()
                    self._connected.clear()
                    self._transport = None
                    self.device_listen = None
                    self._remote = None  # went with the connection
                    lost = getattr(transport, "close_reason", None) or "connection lost"
                    self._waiting(link, f"{link.name}: {lost}")
        finally:
            unsubscribe()

    async def _run_forward(self, link: DeviceLink) -> None:
        if self.spec.local_port is None:  # written to the config without one: automatic
            self.spec = self.spec.with_local_port(
                pick_local_port(self.spec.bind, self.spec.remote_port))
        spec = self.spec
        try:
            self._server = await asyncio.start_server(self._accept_forward, spec.bind,
                                                      spec.local_port)
        except OSError as exc:
            self.set_state(TunnelState.FAILED, _port_taken(spec, exc))
            return

        async def nothing_to_set_up(transport: Transport) -> bool:
            return True

        try:
            await self._follow(link, nothing_to_set_up)
        finally:
            self._close_listeners()

    async def _run_reverse(self, link: DeviceLink) -> None:
        # our relay, on loopback only: the device reaches the service here through it
        self._server = await asyncio.start_server(self._accept_reverse, "127.0.0.1", 0)
        relay_port = self._server.sockets[0].getsockname()[1]
        try:
            await self._follow(link, lambda transport: self._open_reverse(transport, relay_port))
        finally:
            self._close_listeners()
            await self._close_remote()

    async def _open_reverse(self, transport: Transport, relay_port: int) -> bool:
        spec = self.spec
        while transport.is_alive():
            try:
                self._remote = await transport.forward_remote_port(
                    spec.remote_host, spec.remote_port, "127.0.0.1", relay_port)
            except ConnectionLost:
                return False
            except TransportError as exc:
                self.set_state(TunnelState.FAILED,
                          f"{exc}; trying again every {REVERSE_RETRY_S:.0f} s")
                with contextlib.suppress(TimeoutError):
                    await within(transport.wait_closed(), REVERSE_RETRY_S)
                continue
            self.device_listen = self._remote.listen
            return True
        return False

    # -- clients ------------------------------------------------------------------------------
    async def _wait_transport(self) -> Transport | None:
        transport = self.transport
        if transport is not None:
            return transport
        link = self._link
        if link is None or link.status.state in (LinkState.FAILED, LinkState.CLOSED):
            return None  # only the user can bring it back: do not keep the client hanging
        with contextlib.suppress(TimeoutError):
            await within(self._connected.wait(), CLIENT_WAIT_S)
        return self.transport

    def _refuse(self, writer: asyncio.StreamWriter, why: str) -> None:
        self.traffic.refused += 1
        self.last_error = why
        log.info("tunnel %s/%s: client not connected: %s", self.spec.device, self.name, why)
        writer.close()

    async def _accept_forward(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        await self._serve_client(reader, writer, self._connect_device, device_is_upstream=True)

    async def _accept_reverse(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        await self._serve_client(reader, writer, self._connect_here, device_is_upstream=False)

    async def _connect_device(self) -> tuple[object, object] | str:
        """A stream to remote_host:remote_port from the device, or why there is none."""
        spec = self.spec
        transport = await self._wait_transport()
        if transport is None:
            return f"{spec.device} is not connected"
        try:
            return await within(
                transport.open_connection(spec.remote_host, spec.remote_port),
                CONNECT_TIMEOUT_S)
        except Exception as exc:  # refused at the far end, or the connection went away
            return f"{self.remote_address} on {spec.device}: {_reason(exc)}"

    async def _connect_here(self) -> tuple[object, object] | str:
        """A stream to the service on this machine a reverse forward serves, or why not."""
        spec = self.spec
        try:
            return await within(
                asyncio.open_connection(spec.bind, spec.local_port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            return f"nothing answers on {spec.bind}:{spec.local_port} here: {_reason(exc)}"

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            connect, *, device_is_upstream: bool) -> None:
        task = asyncio.current_task()
        assert task is not None
        # tracked so stop() ends client connections too, not only the listener
        self._handlers.add(task)
        try:
            upstream = await connect()
            if isinstance(upstream, str):
                self._refuse(writer, upstream)
                return
            await splice((reader, writer), upstream, self.traffic,
                         device_is_upstream=device_is_upstream)
        except asyncio.CancelledError:
            # stop() cancelled us. asyncio (3.11) reports a cancelled connection task
            # as an error, so end normally: splice's cleanup already closed both ends.
            writer.close()
        finally:
            self._handlers.discard(task)

    # -- the probe -----------------------------------------------------------------------------
    async def check(self) -> ProbeResult:
        """Ask whether something answers at the far end: TCP, or HTTP for a preset."""
        spec = self.spec
        try:
            if spec.reverse:
                _reader, writer = await within(
                    asyncio.open_connection(spec.bind, spec.local_port), PROBE_TIMEOUT_S)
                writer.close()
                result = ProbeResult(True, f"{spec.bind}:{spec.local_port} accepts (TCP)")
            else:
                transport = self.transport
                if transport is None:
                    result = ProbeResult(None, f"{spec.device} is not connected")
                else:
                    result = await self._check_through(transport)
        except Exception as exc:
            result = ProbeResult(False, _reason(exc))
        self.probe = result
        return result

    async def _check_through(self, transport: Transport) -> ProbeResult:
        spec = self.spec
        reader, writer = await within(
            transport.open_connection(spec.remote_host, spec.remote_port), PROBE_TIMEOUT_S)
        try:
            if not spec.preset:
                return ProbeResult(True, "accepts (TCP)")
            writer.write(f"GET {spec.url_path} HTTP/1.0\r\nHost: {self.remote_address}\r\n"
                         "User-Agent: sparktui-probe\r\nConnection: close\r\n\r\n".encode())
            try:
                line = await within(reader.readline(), PROBE_TIMEOUT_S)
            except TimeoutError:
                return ProbeResult(True, "accepts (TCP), no HTTP answer")
            words = bytes(line).decode("latin-1").split()
            if len(words) >= 2 and words[0].startswith("HTTP/") and words[1].isdigit():
                return ProbeResult(True, f"HTTP {words[1]}")
            return ProbeResult(True, "accepts (TCP), not HTTP")
        finally:
            with contextlib.suppress(Exception):
                writer.close()


