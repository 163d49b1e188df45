"""A hostile model server: answers that never end, or end in ways that hurt.

One small asyncio HTTP server whose behaviour is picked per request path's
mode. Every mode is something a LAN peer on a probed port (11434, 8000,
30000, ...) could do on purpose. `sent` counts the bytes it pushed, so a test
can show how much the client had to take before it stopped.

Run by hand: `python -m tests.reliability.hostile_http MODE PORT`.
"""

from __future__ import annotations

import asyncio
import json
import sys

MODES = (
    "endless-models",  # 200 with a /v1/models body that never ends
    "endless-error",  # 500 with an error body that never ends
    "endless-json",  # 200 with `[[[[...` forever
    "sse-no-blank",  # data: lines with no blank line between them, forever
    "sse-keepalive",  # an SSE stream that sends only `: ping` every 0.2 s
    "sse-huge-chunk",  # one 4 MiB data: line, then [DONE]
    "sse-endless-text",  # valid chunks of text, forever
    "slow-answer",  # a valid stream that takes 30 s (for drops mid-answer)
    "trickle-json",  # 200, then one byte of JSON every 0.1 s, forever (a tarpit)
)

_MB = b"x" * 65536


class HostileServer:
    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.mode = mode
        self.sent = 0
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> HostileServer:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        self.sent += len(data)
        await writer.drain()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in request.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            self.requests += 1
            await getattr(self, "_" + self.mode.replace("-", "_"))(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _head(self, writer, status: str, content_type: str) -> None:
        await self._write(writer, f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                                  "connection: close\r\n\r\n".encode())

    async def _endless_models(self, writer) -> None:
        await self._head(writer, "200 OK", "application/json")
        await self._write(writer, b'{"data": [{"id": "')
        while True:
            await self._write(writer, _MB)

    async def _endless_error(self, writer) -> None:
        await self._head(writer, "500 Oops", "application/json")
        await self._write(writer, b'{"error": {"message": "')
        while True:
            await self._write(writer, _MB)

    async def _endless_json(self, writer) -> None:
        await self._head(writer, "200 OK", "application/json")
        while True:
            await self._write(writer, b"[" * 65536)

    async def _sse_no_blank(self, writer) -> None:
        await self._head(writer, "200 OK", "text/event-stream")
        line = b"data: " + b"y" * 8000 + b"\n"
        while True:
            await self._write(writer, line * 8)

    async def _sse_keepalive(self, writer) -> None:
        await self._head(writer, "200 OK", "text/event-stream")
        while True:
            await self._write(writer, b": ping\n\n")
            await asyncio.sleep(0.2)

    async def _sse_huge_chunk(self, writer) -> None:
        await self._head(writer, "200 OK", "text/event-stream")
        text = "z" * (4 * 1024 * 1024)
        chunk = {"choices": [{"delta": {"content": text}, "finish_reason": None}]}
        await self._write(writer, b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await self._write(writer, b"data: [DONE]\n\n")

    async def _sse_endless_text(self, writer) -> None:
        await self._head(writer, "200 OK", "text/event-stream")
        chunk = {"choices": [{"delta": {"content": "w" * 4000}, "finish_reason": None}]}
        event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        while True:
            await self._write(writer, event * 16)

    async def _trickle_json(self, writer) -> None:
        await self._head(writer, "200 OK", "application/json")
        await self._write(writer, b'{"status": "success", "data": {"result": [')
        while True:
            await self._write(writer, b" ")
            await asyncio.sleep(0.1)

    async def _slow_answer(self, writer) -> None:
        await self._head(writer, "200 OK", "text/event-stream")
        for _ in range(300):
            chunk = {"choices": [{"delta": {"content": "tok "}, "finish_reason": None}]}
            await self._write(writer, b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await asyncio.sleep(0.1)
        await self._write(writer, b"data: [DONE]\n\n")


async def _main(mode: str, port: int) -> None:
    server = await HostileServer(mode).start(port=port)
    print(f"{mode} on {server.url}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2])))
