"""The servers inside containers deployed on the simulated engine, at their published ports.

A deploy (services.deploy) polls the new server's health endpoint through the
device's SSH connection until it answers; without this nothing would listen
on the simulated Spark's port and every demo deploy would wait until its
timeout. `AppFront` is one loopback HTTP listener that the sim maps each
published port of a running, API-created container to (see
`SimDockerEngine.attach`). It tells the containers apart by the Host header's
port, answers 503 while a server is still starting, answers the few paths
the OpenAI-compatible model server does not know (Ollama's /api/tags, NIM's
readiness, a web UI's /) itself, and hands everything else to the demo's
model server's handler, so a deployed endpoint can also be chatted with.

The seeded containers' ports are left alone: the Chat tab probes the usual
ports of the demo device and should keep finding just its model server.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sparktui.sim.docker.state import DockerState, SimContainer
from sparktui.sim.http import Exchange, Handler, HttpServer, Request

_HTML = ("<!doctype html><html><head><title>{title}</title></head>"
         "<body><h1>{title}</h1><p>served by the simulated Spark</p></body></html>")


def published_ports(c: SimContainer) -> set[int]:
    """The device ports a container's servers answer on (host network: its own ports)."""
    if c.host_config.get("NetworkMode") == "host":
        specs = c.exposed
    else:
        specs = [b.get("HostPort") or "" for bs in c.ports.values() for b in bs or []]
    return {int(p.split("/")[0]) for p in specs if p.split("/")[0].isdigit()}


def _local_answer(c: SimContainer, method: str, path: str) -> tuple[int, str, bytes] | None:
    """(status, content type, body) for paths answered here; None: relay it."""
    def body(payload: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(payload).encode()

    kind = c.profile.kind
    if method != "GET":
        return None
    if path == "/api/tags":
        model = c.context.get("model") or "llama3.1:8b"
        return body({"models": [{"name": model, "model": model, "size": 4_920_753_328}]})
    if path == "/api/version":
        return body({"version": "0.12.6"})
    if path in ("/v1/health/ready", "/v1/health/live", "/health_generate"):
        return body({"status": "ready"})
    if path == "/" and kind in ("webui", "comfyui", "ollama"):
        if kind == "ollama":
            return 200, "text/plain", b"Ollama is running"
        title = "Open WebUI" if kind == "webui" else "ComfyUI"
        return 200, "text/html", _HTML.format(title=title).encode()
    return None


class AppFront:
    """One listener for every deployed container's published ports."""

    def __init__(self, state: DockerState, model_server: Handler | None) -> None:
        self.state = state
        self.model_server = model_server  # answers what a deployed model server would
        self.port = 0
        self._http: HttpServer | None = None

    async def start(self) -> AppFront:
        self._http = await HttpServer(self._answer).listen("127.0.0.1", 0)
        self.port = self._http.port
        return self

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def container_on(self, port: int) -> SimContainer | None:
        for c in self.state.containers.values():
            if not c.seeded and c.running and port in published_ports(c):
                return c
        return None

    async def _answer(self, request: Request, exchange: Exchange) -> None:
        port = request.headers.get("host", "").rsplit(":", 1)[-1]
        c = self.container_on(int(port)) if port.isdigit() else None
        if c is None or not c.running or time.monotonic() < c.ready_at:
            # still loading its model: a real server would not answer yet
            await exchange.reply(503, {"error": "the server is starting"})
            return
        local = _local_answer(c, request.method, request.path)
        if local is not None:
            status, content_type, body = local
            await exchange.reply(status, body, content_type=content_type)
        elif self.model_server is None:
            await exchange.reply(404, {"error": "not found"})
        else:
            await self.model_server(request, exchange)
