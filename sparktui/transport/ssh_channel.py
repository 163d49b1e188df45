"""One SSH session channel whose client memory stays bounded, however fast the device writes.

Why not asyncssh's own process streams: asyncssh 2.24.1 counts a received
packet against the channel window when it arrives, but the first time it
delivers a buffered packet after a pause it re-opens the whole window, crediting
the device for the packets still sitting in the channel's buffer. A command that
writes faster than we read (nvidia-smi output without newlines, `yes`) then
grows the client without bound: about 120 MB/s against a local sshd, 0.9 GB in
the 6 s before the stall bound fired (RELIABILITY.md, case 3.3). 2.24.0 counted
at delivery instead and held.

So this session never pauses the channel in the middle of a delivery. Once its
own buffer passes `limit` it pauses on the next turn of the loop, and a resume
lets the channel hand over its whole buffer at once. At most `limit` plus two
windows are held per channel (about 5 MiB), whatever the peer does, on either
asyncssh version. Only public asyncssh API is used (SSHClientSession, and the
channel's pause_reading/resume_reading).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh

from sparktui.transport.base import Forward
from sparktui.transport.splice import Traffic, splice

log = logging.getLogger(__name__)

STDOUT = None
STDERR = asyncssh.EXTENDED_DATA_STDERR
#: bytes buffered here (stdout and stderr together) before the channel is paused
BUFFER_LIMIT = 1024 * 1024


class _Buffer:
    def __init__(self) -> None:
        self.chunks: collections.deque[bytes] = collections.deque()
        self.ready = asyncio.Event()


class BoundedSession(asyncssh.SSHClientSession[bytes]):
    """Bytes of one command's stdout and stderr, read with `read(n, datatype)`."""

    def __init__(self, limit: int = BUFFER_LIMIT) -> None:
        self._limit = limit
        self._buffers = {STDOUT: _Buffer(), STDERR: _Buffer()}
        self._buffered = 0
        self._paused = False
        self._pause_pending = False
        self._ended = False  # no more data will come (EOF, or the channel closed)
        self._closed = False  # the channel is gone: nothing can be written either
        self._error: BaseException | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None

    # -- asyncssh's callbacks ---------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:  # type: ignore[override]
        self._chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        buffer = self._buffers.get(datatype)
        if buffer is None or not data:
            return  # a stream type we never asked for
        buffer.chunks.append(data)
        buffer.ready.set()
        self._buffered += len(data)
        if self._buffered >= self._limit and not self._paused and not self._pause_pending:
            # not now: this may be the channel flushing its buffer, and pausing in the
            # middle of that is what makes asyncssh credit data it has not delivered
            self._pause_pending = True
            asyncio.get_running_loop().call_soon(self._pause_if_full)

    def eof_received(self) -> bool:
        self._end(None)
        return True  # keep the channel half open: the exit status comes after EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._end(exc)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- ours -------------------------------------------------------------------------------
    def _end(self, exc: BaseException | None) -> None:
        self._ended = True
        if exc is not None and self._error is None:
            self._error = exc
        for buffer in self._buffers.values():
            buffer.ready.set()

    def _pause_if_full(self) -> None:
        self._pause_pending = False
        if self._chan is not None and not self._ended and not self._paused \
                and self._buffered >= self._limit:
            self._paused = True
            self._chan.pause_reading()

    async def read(self, n: int, datatype: asyncssh.DataType = STDOUT) -> bytes:
        """Up to `n` bytes; b"" at the end. Raises the connection's error once drained.

        Safe to cancel (a timeout around it loses nothing): bytes are taken only
        after the wait.
        """
        buffer = self._buffers[datatype]
        while not buffer.chunks:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            buffer.ready.clear()
            await buffer.ready.wait()
        parts: list[bytes] = []
        size = 0
        while buffer.chunks and size < n:
            chunk = buffer.chunks.popleft()
            if size + len(chunk) > n:
                buffer.chunks.appendleft(chunk[n - size:])
                chunk = chunk[:n - size]
            parts.append(chunk)
            size += len(chunk)
        self._buffered -= size
        if self._paused and self._buffered < self._limit and self._chan is not None:
            self._paused = False
            self._chan.resume_reading()  # hands over the channel's whole buffer
        return b"".join(parts)

    def reader(self, datatype: asyncssh.DataType = STDOUT):
        """`read(n)` bound to one stream, for the line and stderr drainers."""
        async def read(n: int) -> bytes:
            return await self.read(n, datatype)
        return read

    async def write(self, data: bytes) -> None:
        """Write to the command's stdin, waiting while the channel's send buffer is full."""
        if self._chan is None or self._closed:
            raise BrokenPipeError("the channel is closed")
        self._chan.write(data)
        await self.drain()

    async def drain(self) -> None:
        await self._writable.wait()
        if self._closed and self._error is not None:
            raise self._error


class ChannelReader:
    """The reading half of a TCP stream over one channel, as splice and the probes use it."""

    def __init__(self, session: BoundedSession) -> None:
        self._session = session
        self._pending = b""

    async def read(self, n: int = -1) -> bytes:
        if self._pending:
            cut = n if n > 0 else len(self._pending)
            data, self._pending = self._pending[:cut], self._pending[cut:]
            return data
        return await self._session.read(n if n > 0 else 65536)

    async def readline(self, limit: int = 65536) -> bytes:
        """Up to and including the next newline; at most `limit` bytes (then cut)."""
        line = b""
        while b"\n" not in line and len(line) < limit:
            chunk = await self.read(limit - len(line))
            if not chunk:
                break
            line += chunk
        end = line.find(b"\n")
        if end >= 0:
            line, self._pending = line[:end + 1], line[end + 1:] + self._pending
        return line


class ChannelWriter:
    """The writing half: write, drain, half-close, close."""

    def __init__(self, channel: asyncssh.SSHTCPChannel[bytes], session: BoundedSession) -> None:
        self._channel = channel
        self._session = session

    def write(self, data: bytes) -> None:
        self._channel.write(data)

    async def drain(self) -> None:
        await self._session.drain()

    def can_write_eof(self) -> bool:
        return self._channel.can_write_eof()

    def write_eof(self) -> None:
        self._channel.write_eof()

    def close(self) -> None:
        self._channel.close()

    async def wait_closed(self) -> None:
        await self._channel.wait_closed()


class ChannelForward(Forward):
    """A local UNIX socket whose every client is spliced onto a new channel of its own.

    Used instead of asyncssh's forwarders for the same reason as BoundedSession:
    their flow control lets a device-side server that writes faster than the
    local client reads (a Docker daemon, a model server) grow this process.
    """

    def __init__(self, local_path: str,
                 open_channel: Callable[[], Awaitable[tuple[Any, BoundedSession]]]) -> None:
        self.listen = local_path
        self._open_channel = open_channel
        self._clients: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self.traffic = Traffic()

    async def start(self) -> ChannelForward:
        self._server = await asyncio.start_unix_server(self._serve, self.listen)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            try:
                channel, session = await self._open_channel()
            except Exception as exc:  # refused on the device, or the connection went
                log.info("forward %s: no channel: %s", self.listen, exc)
                writer.close()
                return
            device_side = (ChannelReader(session), ChannelWriter(channel, session))
            await splice((reader, writer), device_side, self.traffic)
        except asyncio.CancelledError:
            writer.close()  # close() ended us: splice's cleanup closed both ends
        finally:
            self._clients.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
