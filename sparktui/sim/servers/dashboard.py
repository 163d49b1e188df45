"""A stand-in for the DGX Dashboard (port 11000 on a real Spark), for the demo.

Just enough for a browser, curl and the tunnel probe: `GET /` (and HEAD)
answers a small HTML page, anything else 404.
"""

from __future__ import annotations

from sparktui.sim.http import Exchange, HttpServer, Request

DASHBOARD_PORT = 11000
PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>DGX Dashboard (simulated)</title></head>
<body><h1>DGX Dashboard (simulated)</h1>
<p>This page comes from sparktui's simulated DGX Spark, through a sparktui tunnel.</p>
</body></html>
"""


async def _page(request: Request, exchange: Exchange) -> None:
    if request.method not in ("GET", "HEAD"):
        await exchange.reply(405, b"", content_type="text/plain")
    elif request.path == "/":
        await exchange.reply(200, PAGE, content_type="text/html; charset=utf-8")
    else:
        await exchange.reply(404, b"not found\n", content_type="text/plain")


async def start_dashboard(host: str = "127.0.0.1", port: int = 0) -> HttpServer:
    """Serve the page on host:port (0: any free port; read it from `.port`)."""
    return await HttpServer(_page).listen(host, port)
