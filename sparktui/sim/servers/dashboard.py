"""A stand-in for the DGX Dashboard (port 11000 on a real Spark), for the demo.

Just enough HTTP for a browser, curl and the tunnel probe: `GET /` (and HEAD)
answers a small HTML page, anything else 404. One request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

DASHBOARD_PORT = 11000
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>DGX Dashboard (simulated)</title></head>
<body><h1>DGX Dashboard (simulated)</h1>
<p>This page comes from sparktui's simulated DGX Spark, through a sparktui tunnel.</p>
</body></html>
"""
_MAX_HEADER = 16384


def _response(status: str, body: bytes, *, head: bool = False,
              content_type: str = "text/html; charset=utf-8") -> bytes:
    header = (f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
              f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return header if head else header + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        words = request[:_MAX_HEADER].split(b"\r\n", 1)[0].split()
        method = words[0] if words else b""
        path = words[1].split(b"?", 1)[0] if len(words) > 1 else b""
        if method not in (b"GET", b"HEAD"):
            writer.write(_response("405 Method Not Allowed", b"", content_type="text/plain"))
        elif path == b"/":
            writer.write(_response("200 OK", PAGE, head=method == b"HEAD"))
        else:
            writer.write(_response("404 Not Found", b"not found\n", head=method == b"HEAD",
                                   content_type="text/plain"))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
            ConnectionError) as exc:
        log.debug("simulated dashboard: request dropped: %s", exc)
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def start_dashboard(host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    """Serve the page on host:port (0: any free port; read it from `.sockets`)."""
    return await asyncio.start_server(_serve, host, port)
