"""A simulated Docker Engine: the API subset the demo shows, over HTTP/1.1 on a UNIX socket.

`attach(server)` makes the simulated Spark's docker.sock lead here, so the Containers tab
reaches it through the real SSH socket forward and the real docker-py. Routes: `_ROUTES`;
anything else answers 404 saying so. A deployed container's published ports answer on one
loopback "front": 503 while it starts, the few health paths the model server does not know,
then the demo's model server, so a deployed endpoint can be chatted with. The seeded
containers' ports are left alone: Chat should keep finding just the demo's model server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import struct
import time
from typing import Any

from sparktui.core.aio import within
from sparktui.sim.device.gpu_model import MEM_TOTAL_KB, NCPU
from sparktui.sim.device.root import KERNEL_RELEASE, DeviceRoot
from sparktui.sim.device.standin import CONTAINERS, DOCKER_VERSION
from sparktui.sim.docker.seed import SEED_HOME
from sparktui.sim.docker.state import Container, DockerState, EngineError, rfc3339
from sparktui.sim.http import Exchange, Handler, HttpServer, Request

API_VERSION = "1.51"  # Docker 28.3's, the Engine the simulated Spark's facts report
_PAGES = {"/api/tags": None, "/v1/health/ready": {"status": "ready"}}  # Ollama's, NIM's


class SimDockerEngine:
    """The engine; `start()` it on the loop that will serve it, `close()` it there too."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state = DockerState()
        self._servers: list[HttpServer] = []
        self._ticker: asyncio.Task[None] | None = None
        self._model_server: Handler | None = None
        self._device_root: DeviceRoot | None = None  # where `docker ps` reads (once attached)

    @property
    def running(self) -> bool:
        return bool(self._servers)

    async def start(self) -> SimDockerEngine:
        headers = [("Api-Version", API_VERSION), ("Server", f"Docker/{DOCKER_VERSION} (linux)")]
        self._servers.append(await HttpServer(self._dispatch, headers).listen(path=self.path))
        self._ticker = asyncio.get_running_loop().create_task(self.state.run())
        return self

    async def attach(self, server: Any, *, model_server: Handler | None = None) -> None:
        """Be the Docker of simulated Spark `server` (a SimServer): its docker.sock is this
        engine's (for its forwards and its shell's probe), its docker stand-in reads the
        containers written there, deployed models load into its memory, and their published
        ports answer."""
        for path in ("var/run/docker.sock", "run/docker.sock"):
            link = os.path.join(server.root.path, path)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(self.path, link)
        self._device_root = server.root
        self.state.on_event = self._write_ps
        self._write_ps()
        for c in self.state.containers.values():  # the seeded volumes: the device's home
            c.host_config["Binds"] = [bind.replace(SEED_HOME, str(server.root.home), 1)
                                      for bind in c.host_config.get("Binds") or []]
        self.state.memory = server.device.memory
        server.device.container_processes = self.state.gpu_processes
        server.device.memory.on_reboot.append(lambda: [  # nothing that ran survives
            self.state.exited(c, 137) for c in list(self.state.containers.values()) if c.running])
        self._servers.append(front := await HttpServer(self._front).listen("127.0.0.1", 0))
        self._model_server = model_server
        server.resolve_port = lambda port: ("127.0.0.1", front.port) if self._deployed_on(
            port) else None

    def _deployed_on(self, port: int) -> Container | None:
        """The running container made through the API that publishes `port`."""
        return next((c for c in self.state.containers.values()
                     if c.running and not c.seeded and port in c.host_ports()), None)

    def _write_ps(self) -> None:
        """The containers as the device's `docker ps` shows them (sim.device.standin)."""
        if self._device_root is not None and self.running:
            self._device_root.write(CONTAINERS, "".join(
                json.dumps(c.ps_row()) + "\n" for c in self.state.containers.values()))

    async def close(self) -> None:
        for server in self._servers:  # long streams (events, follow) end with the engine
            await server.close()
        self._servers = []
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._device_root is not None:  # no file, no daemon: what the stand-in says then
            self._device_root.unlink(CONTAINERS)

    async def _front(self, request: Request, exchange: Exchange) -> None:
        """A deployed container's server, found by the port the client asked for."""
        port = request.headers.get("host", "").rsplit(":", 1)[-1]
        c = self._deployed_on(int(port)) if port.isdigit() else None
        if c is None or time.monotonic() < c.ready_at:  # still loading its model
            await exchange.reply(503, {"error": "the server is starting"})
        elif request.method == "GET" and request.path == "/":  # a web UI's page
            await exchange.reply(200, f"<!doctype html><title>{c.name}</title><h1>{c.name}"
                                      "</h1><p>served by the simulated Spark</p>",
                                 content_type="text/html")
        elif request.method == "GET" and request.path in _PAGES:
            model = c.model or "the configured model"
            await exchange.reply(200, _PAGES[request.path] or {"models": [
                {"name": model, "model": model, "size": 4_920_753_328}]})
        elif self._model_server is not None:
            await self._model_server(request, exchange)
        else:
            await exchange.reply(404, {"error": "not found"})

    # -- the API: a handler answers a streamed request itself, or returns its answer ------------
    async def _dispatch(self, request: Request, exchange: Exchange) -> None:
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", request.path)  # without its /v1.NN prefix
        for method, pattern, name in _ROUTES:
            if (match := pattern.fullmatch(path)) and method == request.method:
                try:
                    answer = await getattr(self, name)(request, exchange, *match.groups())
                except EngineError as exc:
                    await exchange.reply(exc.status, {"message": exc.message})
                    return
                if isinstance(answer, int):  # a status without a body
                    await exchange.reply(answer)
                elif answer is not None:
                    await exchange.reply(201 if name == "_create" else 200, answer)
                return
        await exchange.reply(404, {"message": f"{request.method} {path} is not supported by "
                                              "the simulated engine"})

    async def _version(self, request: Request, exchange: Exchange) -> Any:
        return {"Version": DOCKER_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": "1.24",
                "Os": "linux", "Arch": "arm64", "KernelVersion": KERNEL_RELEASE}

    async def _events(self, request: Request, exchange: Exchange) -> None:
        filters = _filters(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.state.subscribers.add(queue)
        try:
            await exchange.start("application/json")
            while event := await queue.get():  # a client gone: the next send fails
                if all(not wanted or value in wanted or value.split(":")[0] in wanted
                       for value, wanted in ((event["Type"], filters.get("type")),
                                             (event["Action"], filters.get("event")))):
                    await exchange.send((json.dumps(event) + "\n").encode())
        finally:
            self.state.subscribers.discard(queue)

    async def _list(self, request: Request, exchange: Exchange) -> Any:
        filters = _filters(request)
        rows = sorted((c for c in self.state.containers.values()
                       if (request.flag("all") or c.running)
                       and all(re.search(n, "/" + c.name) for n in filters.get("name", []))
                       and c.state in filters.get("status", [c.state])),
                      key=lambda c: c.created, reverse=True)
        return [c.summary(self.state.images.get(c.image, "")) for c in rows]

    async def _inspect(self, request: Request, exchange: Exchange, ref: str) -> Any:
        return self.state.container(ref).inspect()

    async def _create(self, request: Request, exchange: Exchange) -> Any:
        c = self.state.create(request.arg("name"), json.loads(request.body or b"{}"))
        return {"Id": c.id, "Warnings": []}

    async def _action(self, request: Request, exchange: Exchange, ref: str, action: str) -> int:
        c, state = self.state.container(ref), self.state
        changed = state.start(c) if action == "start" else await state.stop(
            c, 9 if action == "kill" else 15)  # a kill: the load guard's, for a load that wedges
        if action == "restart":
            changed = state.start(c) or True
        return 204 if changed else 304

    async def _delete(self, request: Request, exchange: Exchange, ref: str) -> int:
        self.state.remove(self.state.container(ref), force=request.flag("force"))
        return 204

    async def _logs(self, request: Request, exchange: Exchange, ref: str) -> None:
        c = self.state.container(ref)
        streams = {n for n, flag in ((1, "stdout"), (2, "stderr")) if request.flag(flag)}
        stamps, tail = request.flag("timestamps"), request.arg("tail") or "all"

        def frames(lines: list[tuple[int, float, int, bytes]]) -> bytes:
            out = b""
            for _, wall, stream, data in lines:
                if stream in streams:
                    data = (rfc3339(wall) + " ").encode() * stamps + data
                    out += struct.pack(">BxxxL", stream, len(data)) + data
            return out

        count = len(c.logs) if tail == "all" else int(tail)
        lines = c.logs[max(0, len(c.logs) - count):] if count else []
        seen = c.logs[-1][0] if c.logs else 0
        await exchange.start("application/vnd.docker.multiplexed-stream", frames(lines))
        while request.flag("follow") and c.running and c.id in self.state.containers:
            with contextlib.suppress(TimeoutError):
                await within(c.changed.wait(), 1.0)
            fresh = [line for line in c.logs if line[0] > seen]
            if fresh:
                seen = fresh[-1][0]
                await exchange.send(frames(fresh))
        await exchange.end()

    async def _stats(self, request: Request, exchange: Exchange, ref: str) -> Any:
        if not (c := self.state.container(ref)).running:
            return {"id": c.id, "cpu_stats": {}, "memory_stats": {}}
        usage = int(c.profile.mem_bytes * (1 + 0.02 * (time.time() % 5)))
        return {"id": c.id, "name": "/" + c.name, "read": rfc3339(time.time()),
                "cpu_stats": {"cpu_usage": {"total_usage": int(self.state.cpu_ns(c))},
                              "system_cpu_usage": int((time.time() - self.state.boot)
                                                      * NCPU * 1e9), "online_cpus": NCPU},
                "memory_stats": {"usage": usage, "limit": MEM_TOTAL_KB * 1024,
                                 "stats": {"inactive_file": usage // 16}}}

    async def _image(self, request: Request, exchange: Exchange, ref: str) -> Any:
        image_id = self.state.image_id(ref)
        refs = [name for name, found in self.state.images.items() if found == image_id]
        return {"Id": image_id, "RepoTags": refs, "Architecture": "arm64",
                "RepoDigests": [f"{name.rsplit(':', 1)[0]}@{image_id}" for name in refs]}

    async def _images(self, request: Request, exchange: Exchange) -> Any:
        """The Images screen's list (read only: the demo removes no images)."""
        return [{"Id": image_id, "RepoTags": [name], "Created": int(self.state.boot),
                 "Size": self.state.image_size(image_id)}
                for name, image_id in self.state.images.items()]

    async def _pull(self, request: Request, exchange: Exchange) -> None:
        events = self.state.pull(request.arg("fromImage") or "", request.arg("tag"),
                                 authed=bool(request.headers.get("x-registry-auth")))
        first = await anext(events)  # errors before the stream starts are plain HTTP errors
        await exchange.start("application/json", (json.dumps(first) + "\r\n").encode())
        async for event in events:
            await exchange.send((json.dumps(event) + "\r\n").encode())
        await exchange.end()


def _filters(request: Request) -> dict[str, list[str]]:
    """The `filters` query parameter: {"key": ["v", ...]} (or the old {"key": {"v": true}})."""
    try:
        data = json.loads(request.arg("filters") or "{}")
    except ValueError as exc:
        raise EngineError(400, f"invalid filter: {exc}") from None
    return {str(k): [str(x) for x in v] for k, v in data.items()}


_ID = r"/containers/([^/]+)"
_ROUTES = [(method, re.compile(pattern), name) for method, pattern, name in (
    ("GET", r"/version", "_version"), ("GET", r"/events", "_events"),
    ("GET", r"/containers/json", "_list"), ("POST", r"/containers/create", "_create"),
    ("GET", _ID + r"/json", "_inspect"), ("GET", _ID + r"/logs", "_logs"),
    ("GET", _ID + r"/stats", "_stats"), ("DELETE", _ID, "_delete"),
    ("POST", _ID + r"/(start|stop|restart|kill)", "_action"),
    ("POST", r"/images/create", "_pull"), ("GET", r"/images/json", "_images"),
    ("GET", r"/images/(.+)/json", "_image"))]
