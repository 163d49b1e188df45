"""The local transport: sparktui runs on the Spark itself (often over SSH in tmux).

Same interface as the SSH transport, with subprocesses and local sockets, so
every service works unchanged. It never drops, so it never reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

from sparktui.core.aio import within
from sparktui.transport.base import (
    CommandResult,
    ConnectionLost,
    Forward,
    LineStream,
    Transport,
)
from sparktui.transport.drain import StderrTail, bounded_lines
from sparktui.transport.splice import Traffic, splice

_SHELL = "/bin/sh"
_READ_LIMIT = 1 << 20  # a 1 MiB line is garbage, but must not crash the reader


class _Splice:
    """Accepts local clients and splices each to a fresh upstream connection."""

    def __init__(self, connect) -> None:
        self._connect = connect
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await self._connect()
        except OSError:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await splice((reader, writer), upstream, Traffic())
        finally:
            self._tasks.discard(task)

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()


class _LocalForward(Forward):
    def __init__(self, server: asyncio.AbstractServer, splice: _Splice,
                 listen: tuple[str, int] | str) -> None:
        self._server = server
        self._splice = splice
        self.listen = listen

    async def close(self) -> None:
        self._server.close()
        self._splice.cancel_all()
        await self._server.wait_closed()
        if isinstance(self.listen, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen)


class _LocalLineStream(LineStream):
    def __init__(self, process: asyncio.subprocess.Process, stall_after: float | None) -> None:
        self._process = process
        self._stall_after = stall_after
        assert process.stderr is not None
        self._stderr = StderrTail(process.stderr.read, "local")

    @property
    def stderr_bytes(self) -> int:  # type: ignore[override]
        return self._stderr.bytes

    async def __aiter__(self) -> AsyncIterator[str]:
        assert self._process.stdout is not None
        async for line in bounded_lines(self._process.stdout.read,
                                        stall_after=self._stall_after, what="local"):
            yield line
        self.stderr = await self._stderr.finish()
        self.exit_status = await self._process.wait()

    async def send(self, text: str) -> None:
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            raise ConnectionLost("the local command has ended")
        try:
            stdin.write(text.encode())
            await stdin.drain()
        except (OSError, BrokenPipeError) as exc:
            raise ConnectionLost(f"the local command has ended: {exc}") from exc

    async def close(self) -> None:
        self._stderr.cancel()
        if not self.stderr:
            self.stderr = self._stderr.text
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                await within(self._process.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._process.pid, signal.SIGKILL)
                await self._process.wait()


class LocalTransport(Transport):
    def __init__(self, device: str = "local") -> None:
        self.device = device
        self._closed = asyncio.Event()
        self._streams: set[_LocalLineStream] = set()
        self._forwards: set[Forward] = set()
        self.close_reason: str | None = None

    def is_alive(self) -> bool:
        return not self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self) -> None:
        for stream in list(self._streams):
            await stream.close()
        for forward in list(self._forwards):
            await forward.close()
        self._closed.set()

    async def _spawn(self, command: str, stdin: int) -> asyncio.subprocess.Process:
        # its own process group, so closing a stream ends the whole pipeline
        return await asyncio.create_subprocess_exec(
            _SHELL, "-c", command, stdin=stdin, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=_READ_LIMIT)

    async def run(self, command: str, *, timeout: float | None = 30.0,
                  input: str | None = None) -> CommandResult:
        process = await self._spawn(
            command, asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL)
        try:
            out, err = await within(
                process.communicate(input.encode() if input is not None else None), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            return CommandResult(-1, "", f"{command!r} timed out after {timeout} s")
        status = process.returncode if process.returncode is not None else -1
        if status < 0:
            status = -1
        return CommandResult(status, out.decode("utf-8", "replace"),
                             err.decode("utf-8", "replace"))

    async def stream(self, command: str, *, stall_after: float | None = None) -> LineStream:
        # stdin stays open (a pipe nobody writes until send()): a loop that reads control
        # lines takes its end (EOF) as "the watcher has gone", as over SSH
        stream = _LocalLineStream(await self._spawn(command, asyncio.subprocess.PIPE),
                                  stall_after)
        self._streams.add(stream)
        return stream

    async def forward_local_port(self, listen_host: str, listen_port: int,
                                 dest_host: str, dest_port: int) -> Forward:
        splice = _Splice(lambda: asyncio.open_connection(dest_host, dest_port))
        server = await asyncio.start_server(splice.handle, listen_host, listen_port)
        port = server.sockets[0].getsockname()[1]
        forward = _LocalForward(server, splice, (listen_host, port))
        self._forwards.add(forward)
        return forward

    async def forward_remote_port(self, remote_host: str, remote_port: int,
                                  local_host: str, local_port: int) -> Forward:
        # the device is this machine: "remote" and "local" are the same network
        return await self.forward_local_port(remote_host, remote_port, local_host, local_port)

    async def forward_local_path_to_port(self, local_path: str, dest_host: str,
                                         dest_port: int) -> Forward:
        splice = _Splice(lambda: asyncio.open_connection(dest_host, dest_port))
        server = await asyncio.start_unix_server(splice.handle, local_path)
        os.chmod(local_path, 0o600)
        forward = _LocalForward(server, splice, local_path)
        self._forwards.add(forward)
        return forward

    async def forward_unix_socket(self, local_path: str, remote_path: str) -> Forward:
        splice = _Splice(lambda: asyncio.open_unix_connection(remote_path))
        server = await asyncio.start_unix_server(splice.handle, local_path)
        os.chmod(local_path, 0o600)
        forward = _LocalForward(server, splice, local_path)
        self._forwards.add(forward)
        return forward

    async def open_connection(self, dest_host: str, dest_port: int):
        return await asyncio.open_connection(dest_host, dest_port)
