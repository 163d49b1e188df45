"""The servers inside containers deployed on the simulated engine, at their published ports.

A deploy (services.deploy) polls the new server's health endpoint through the
device's SSH connection until it answers; without this nothing would listen
on the simulated Spark's port and every demo deploy would wait until its
timeout. `AppFront` is one loopback HTTP listener that the sim maps each
published port of a running, API-created container to (see
`SimDockerEngine.attach`). It tells the containers apart by the Host header's
port, answers 503 while a server is still starting, answers the few paths
the OpenAI-compatible model server does not know (Ollama's /api/tags, NIM's
readiness, a web UI's /) itself, and relays everything else to the demo's
model server, so a deployed endpoint can also be chatted with.

The seeded containers' ports are left alone: the Chat tab probes the usual
ports of the demo device and should keep finding just its model server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sparktui.sim.docker.state import DockerState, SimContainer

log = logging.getLogger(__name__)

_HTML = ("<!doctype html><html><head><title>{title}</title></head>"
         "<body><h1>{title}</h1><p>served by the simulated Spark</p></body></html>")


def published_ports(c: SimContainer) -> set[int]:
    """The device ports a container's servers answer on (host network: its own ports)."""
    if c.host_config.get("NetworkMode") == "host":
        specs = list(c.exposed)
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

    def __init__(self, state: DockerState, upstream_port: int | None) -> None:
        self.state = state
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> AppFront:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    def container_on(self, port: int) -> SimContainer | None:
        for c in self.state.containers.values():
            if not c.seeded and c.running and port in published_ports(c):
                return c
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            await self._answer(head, reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            log.debug("a deployed app's client went: %s", exc)  # nothing left to answer
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, head: bytes, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, target = [*lines[0].split(" "), "", ""][:2]
        host = next((line.split(":", 1)[1].strip() for line in lines[1:]
                     if line.lower().startswith("host:")), "")
        port = host.rsplit(":", 1)[-1]
        c = self.container_on(int(port)) if port.isdigit() else None
        path = target.split("?", 1)[0]
        if c is None or c.state != "running" or c.pending:
            # still loading its model (or paused): a real server would not answer yet
            await _reply(writer, 503, "application/json",
                         b'{"error": "the server is starting"}')
            return
        local = _local_answer(c, method, path)
        if local is not None:
            await _reply(writer, *local)
            return
        if self.upstream_port is None:
            await _reply(writer, 404, "application/json", b'{"error": "not found"}')
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _reply(writer: asyncio.StreamWriter, status: int, content_type: str,
                 body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError as exc:
        log.debug("relay to a deployed app ended: %s", exc)  # either side going ends it
    finally:
        with contextlib.suppress(ConnectionError):
            writer.close()
