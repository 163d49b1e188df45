"""The one HTTP/1.1 layer of the simulator's servers, on h11 (already here through httpx).

A handler gets the whole request and answers once (`reply`) or streams
(`start`, `send`, `end`: chunked). Framing, keep-alive and status lines are
h11's. A client gone mid-stream ends the handler with ConnectionError at its
next send; `close()` aborts every connection, so the long streams end with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import h11

log = logging.getLogger(__name__)


@dataclass
class Request:
    method: str
    path: str  # unquoted, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes

    def arg(self, name: str) -> str | None:
        return self.query.get(name, [None])[-1]

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").strip().lower() not in ("", "0", "false", "no")


class Exchange:
    """The answer to one request, on its connection."""

    def __init__(self, connection: h11.Connection, writer: asyncio.StreamWriter,
                 headers: list[tuple[str, str]], method: str = "GET") -> None:
        self._connection, self._writer, self._headers = connection, writer, headers
        self.method, self.answered = method, False

    async def _write(self, event: Any) -> None:
        if data := self._connection.send(event):
            if self._writer.is_closing():
                raise ConnectionResetError("the client went away")
            self._writer.write(data)
            await self._writer.drain()

    async def reply(self, status: int, payload: Any = None, *,
                    content_type: str = "application/json") -> None:
        """A whole answer: bytes or text as they are, anything else as JSON; None: no body."""
        body = (b"" if payload is None else payload if isinstance(payload, bytes)
                else payload.encode() if isinstance(payload, str)
                else (json.dumps(payload) + "\n").encode())
        head = [*self._headers, *([("Content-Type", content_type)] if body else [])]
        if status not in (204, 304):
            head.append(("Content-Length", str(len(body))))
        self.answered = True
        await self._write(h11.Response(status_code=status, headers=head))
        if body and self.method != "HEAD":
            await self._write(h11.Data(data=body))
        await self._write(h11.EndOfMessage())

    async def start(self, content_type: str, first: bytes = b"") -> None:
        """Begin a streamed 200 answer (chunked), with its first bytes."""
        self.answered = True
        await self._write(h11.Response(status_code=200, headers=[
            *self._headers, ("Content-Type", content_type), ("Transfer-Encoding", "chunked")]))
        await self.send(first)

    async def send(self, data: bytes) -> None:
        if data:
            await self._write(h11.Data(data=data))

    async def end(self) -> None:
        await self._write(h11.EndOfMessage())


Handler = Callable[[Request, Exchange], Awaitable[None]]


class HttpServer:
    """Serves `handler` on TCP or a UNIX socket; `close()` drops the connections too."""

    def __init__(self, handler: Handler, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.handler, self.headers = handler, list(headers)
        self.server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def listen(self, host: str = "127.0.0.1", port: int = 0, *,
                     path: str | None = None) -> HttpServer:
        self.server = await (asyncio.start_unix_server(self._serve, path) if path
                             else asyncio.start_server(self._serve, host, port))
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self._writers):  # abort: asyncio logs a cancelled handler
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=65536)
        try:
            while await self._one(connection, reader, writer):
                connection.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass  # the client went, or broke the protocol mid-answer: nobody to tell
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _one(self, connection: h11.Connection, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        head, body = None, b""
        # a request h11 cannot read ends the connection (RemoteProtocolError, in _serve)
        while not isinstance(event := connection.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(65536))  # b"": the client closed
            elif isinstance(event, h11.ConnectionClosed):
                return False
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
        assert head is not None
        parts = urlsplit(head.target.decode("latin-1"))
        request = Request(head.method.decode().upper(), unquote(parts.path),
                          parse_qs(parts.query, keep_blank_values=True),
                          {k.decode().lower(): v.decode("latin-1") for k, v in head.headers},
                          body)
        exchange = Exchange(connection, writer, self.headers, request.method)
        try:
            await self.handler(request, exchange)
        except (ConnectionError, h11.ProtocolError):
            raise
        except Exception as exc:  # a bug in the simulation: say so, as a server would
            log.exception("simulated server: %s %s failed", request.method, request.path)
            if not exchange.answered:
                await exchange.reply(500, {"message": f"simulated server error: {exc}"})
            return False
        return connection.our_state is h11.DONE and connection.their_state is h11.DONE
