"""A simulated Docker Engine: the API subset sparktui uses, over HTTP/1.1 on a UNIX socket.

On the simulator's HTTP layer (sparktui.sim.http), standing in for dockerd:
`start_docker_engine(path)` listens on a UNIX socket, and `attach(server)`
makes the sim's /var/run/docker.sock forward lead to it, so the Containers
tab reaches it through the real SSH socket forward and the real docker-py.

Served: /_ping, /version, /info, /events (streamed), the container list,
inspect, logs (multiplexed frames, follow), stats, start/stop/restart/
pause/unpause/kill, delete and create, the image list, inspect and delete,
and pulls with layer progress (sparktui.sim.docker.views shapes the JSON,
sparktui.sim.docker.state holds the containers). Anything else answers 404
saying the simulated engine does not support it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sparktui.sim.device.root import DOCKER_VERSION
from sparktui.sim.docker import views as views
from sparktui.sim.docker.apps import AppFront, published_ports
from sparktui.sim.docker.pull import pull_events
from sparktui.sim.docker.seed import SEED_HOME
from sparktui.sim.docker.state import DockerState, EngineError, rfc3339, stop_task
from sparktui.sim.http import Exchange, HttpServer, Request
from sparktui.sim.http import Handler as HttpHandler

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/run/docker.sock"
STATS_STREAM_INTERVAL = 1.0


Handler = Callable[["SimDockerEngine", Request, "re.Match[str]", Exchange], Awaitable[bool]]


def _json(request: Request) -> Any:
    if not request.body:
        return {}
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise EngineError(400, f"invalid JSON: {exc}") from None


class SimDockerEngine:
    """The engine; `start()` it on the loop that will serve it, `close()` it there too."""

    def __init__(self, path: str, *, seed: int | None = None, seeded: bool = True,
                 pull_seconds: float = 3.0, hostname: str = "spark-sim") -> None:
        self.path = path
        self.hostname = hostname
        self.state = DockerState(seed_value=seed, seeded=seeded, pull_seconds=pull_seconds)
        self.requests: list[tuple[str, str]] = []  # (method, path), the last few hundred
        self._server: HttpServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._sim: Any = None  # the SimServer attached to
        self._front: AppFront | None = None
        self._reserved: set[int] = set()  # device ports the sim already serves
        self._mapped: set[int] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> SimDockerEngine:
        self._server = await HttpServer(self._dispatch, _HEADERS).listen(path=self.path)
        self._ticker = asyncio.get_running_loop().create_task(self.state.run(),
                                                              name="sim-docker-ticker")
        return self

    async def attach(self, server: Any, *, model_server: HttpHandler | None = None) -> None:
        """Be the Docker of simulated Spark `server` (a SimServer).

        Its /var/run/docker.sock (and the /run alias) leads here, its shell's
        probe reports the socket, and the published ports of containers made
        through the API answer (sparktui.sim.docker.apps), relaying to the
        model server's handler when one is given.
        """
        for path in ("/var/run/docker.sock", "/run/docker.sock"):
            server.map_unix(path, self.path)
            # where the device's shell (the containers service's probe) looks for it
            link = os.path.join(server.root.path, path.lstrip("/"))
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(self.path, link)
        server.device.docker_engine = self  # the shell's docker probe asks it
        for c in self.state.containers.values():  # the seeded volumes: the device's home
            c.host_config["Binds"] = [bind.replace(SEED_HOME, str(server.root.home), 1)
                                      for bind in c.host_config.get("Binds") or []]
        self.state.memory = server.device.memory  # deployed models load into its memory
        server.device.container_processes = self.state.gpu_processes  # its GPU processes
        server.device.memory.on_reboot.append(self._rebooted)
        self._front = await AppFront(self.state, model_server).start()
        self._sim, self._reserved = server, set(server.port_map)
        self.state.on_change = self._map_ports
        self._map_ports()

    def _rebooted(self) -> None:
        """The simulated box rebooted: nothing that ran survives."""
        for c in list(self.state.containers.values()):
            if c.running:
                self.state.kill(c, "SIGKILL")

    def _map_ports(self) -> None:
        """Point the sim's ports of running API-made containers at the app front."""
        if self._sim is None or self._front is None:
            return
        wanted: set[int] = set()
        for c in self.state.containers.values():
            if c.running and not c.seeded:
                wanted |= published_ports(c)
        wanted -= self._reserved
        for port in self._mapped - wanted:
            self._sim.port_map.pop(port, None)
        for port in wanted - self._mapped:
            self._sim.map_port(port, "127.0.0.1", self._front.port)
        self._mapped = wanted

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:  # long streams (events, follow) end with the engine
            await server.close()
        await stop_task(self._ticker)
        self._ticker = None
        self.state.on_change = None
        front, self._front = self._front, None
        if front is not None:
            await front.close()
        if self._sim is not None:
            for port in self._mapped:
                self._sim.port_map.pop(port, None)
            self._mapped = set()

    async def __aenter__(self) -> SimDockerEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _dispatch(self, request: Request, conn: Exchange) -> None:
        """Answer one request (the path without its /v1.NN prefix)."""
        versioned = _VERSIONED.fullmatch(request.path)
        if versioned:
            if (int(versioned[1]), int(versioned[2])) > API_NUMBERS:
                await conn.reply(400, {"message": f"client version {versioned[1]}."
                                       f"{versioned[2]} is too new. Maximum supported API "
                                       f"version is {views.API_VERSION}"})
                return
            request.path = versioned[3]
        self.requests = [*self.requests[-299:], (request.method, request.path)]
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                try:
                    if not await handler(self, request, match, conn):
                        conn.close_after = True
                except EngineError as exc:
                    await conn.reply(exc.status, {"message": exc.message})
                return
        await conn.reply(404, {"message": f"{request.method} {request.path} is not supported "
                                          "by the simulated engine"})

    # -- handlers: the daemon ------------------------------------------------------------------
    async def _ping(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        body = b"" if request.method == "HEAD" else b"OK"
        await conn.reply(200, body, content_type="text/plain; charset=utf-8")
        return True

    async def _version(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, views.version())
        return True

    async def _info(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, views.info(self.state, self.hostname))
        return True

    async def _events(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        filters = views.parse_filters(request.arg("filters"))
        since, until = _time_arg(request.arg("since")), _time_arg(request.arg("until"))
        queue = self.state.subscribe()
        try:
            await conn.start("application/json")
            if since is not None:
                for event in list(self.state.history):
                    if event["time"] >= since and (until is None or event["time"] <= until):
                        if views.event_matches(event, filters):
                            await conn.send((json.dumps(event) + "\n").encode())
            while until is None or time.time() < until:
                timeout = None if until is None else max(0.0, until - time.time())
                got = asyncio.ensure_future(queue.get())
                if not await conn.wait(got, timeout):
                    return False
                if not got.done() or got.cancelled():
                    continue  # `until` came
                event = got.result()
                if views.event_matches(event, filters):
                    await conn.send((json.dumps(event) + "\n").encode())
                if not self.state.subscribed(queue):
                    break  # it fell too far behind: end, so the client lists afresh
            await conn.end()
        finally:
            self.state.unsubscribe(queue)
        return False

    # -- handlers: containers ------------------------------------------------------------------
    async def _list(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        filters = views.parse_filters(request.arg("filters"))
        every = request.flag("all")
        rows = [c for c in self.state.containers.values()
                if (every or c.state == "running" or c.state == "paused")
                and views.container_matches(c, filters)]
        rows.sort(key=lambda c: c.created, reverse=True)
        limit = int(request.arg("limit") or -1)
        if limit > 0:
            rows = rows[:limit]
        await conn.reply(200, [views.container_summary(c) for c in rows])
        return True

    async def _inspect(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, views.container_inspect(self.state.container(match["id"])))
        return True

    async def _create(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.create(request.arg("name"), _json(request))
        await conn.reply(201, {"Id": c.id, "Warnings": []})
        return True

    async def _action(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        action = match["action"]
        changed = True
        if action == "start":
            changed = self.state.start(c)
        elif action == "stop":
            changed = await self.state.stop_action(c)
        elif action == "restart":
            await self.state.restart(c)
        elif action == "pause":
            self.state.pause(c)
        elif action == "unpause":
            self.state.unpause(c)
        elif action == "kill":
            self.state.kill(c, request.arg("signal"))
        await conn.reply(204 if changed else 304)
        return True

    async def _delete(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        self.state.remove(self.state.container(match["id"]), force=request.flag("force"))
        await conn.reply(204)
        return True

    async def _top(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        if not c.running:
            raise EngineError(409, f"container {c.id} is not running")
        stime = time.strftime("%H:%M", time.localtime(c.started_at or time.time()))
        await conn.reply(200, {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME",
                                          "CMD"],
                               "Processes": [["root", str(c.pid), "1", "0", stime, "?",
                                              "00:00:01", " ".join(c.cmd)]]})
        return True

    async def _logs(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        if not (request.flag("stdout") or request.flag("stderr")):
            raise EngineError(400, "Bad parameters: you must choose at least one stream")
        streams = {n for n, flag in ((1, "stdout"), (2, "stderr")) if request.flag(flag)}
        since, until = _time_arg(request.arg("since")), _time_arg(request.arg("until"))
        stamps, follow = request.flag("timestamps"), request.flag("follow")
        tail = request.arg("tail") or "all"

        def wanted(entry: Any) -> bool:
            return entry.stream in streams and (since is None or entry.wall >= since) and (
                until is None or entry.wall <= until)

        def frame(entry: Any) -> bytes:
            data = (rfc3339(entry.wall) + " ").encode() + entry.data if stamps else entry.data
            return struct.pack(">BxxxL", entry.stream, len(data)) + data

        entries = [e for e in c.logs if wanted(e)]
        if tail != "all":
            count = int(tail) if tail.lstrip("-").isdigit() else -1
            entries = entries[-count:] if count > 0 else entries if count < 0 else []
        seen = c.logs[-1].seq if c.logs else 0
        await conn.start("application/vnd.docker.multiplexed-stream")
        await conn.send(b"".join(frame(e) for e in entries))
        if not follow:
            await conn.end()
            return True
        while c.running and c.id in self.state.containers and (
                until is None or time.time() < until):
            changed = c.changed
            if not await conn.wait(changed.wait(), timeout=1.0):
                return False
            fresh = [e for e in c.logs if e.seq > seen]
            if fresh:
                seen = fresh[-1].seq
                await conn.send(b"".join(frame(e) for e in fresh if wanted(e)))
        await conn.end()
        return False

    async def _stats(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        if not request.flag("stream", default=True):
            await conn.reply(200, views.container_stats(self.state, c))
            return True
        await conn.start("application/json")
        while c.id in self.state.containers:
            await conn.send((json.dumps(views.container_stats(self.state, c)) + "\n").encode())
            if not await conn.wait(asyncio.sleep(STATS_STREAM_INTERVAL)):
                return False
        await conn.end()
        return False

    # -- handlers: images ----------------------------------------------------------------------
    async def _images(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        images = sorted(self.state.images.values(), key=lambda i: i.created, reverse=True)
        await conn.reply(200, [views.image_summary(i) for i in images])
        return True

    async def _image_inspect(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, views.image_inspect(self.state.image(match["name"])))
        return True

    async def _image_delete(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, self.state.remove_image(match["name"],
                                                      force=request.flag("force")))
        return True

    async def _pull(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        source = request.arg("fromImage")
        if not source:
            raise EngineError(404, "importing images (fromSrc) is not supported by the "
                                   "simulated engine")
        tag = request.arg("tag")
        ref = source if "@" in source or not tag else f"{source}:{tag}"
        events = pull_events(self.state, ref, bool(request.headers.get("x-registry-auth")))
        first = await anext(events)  # errors before the stream starts are plain HTTP errors
        await conn.start("application/json")
        await conn.send((json.dumps(first) + "\r\n").encode())
        async for event in events:
            await conn.send((json.dumps(event) + "\r\n").encode())
        await conn.end()
        return True


def _route(method: str, pattern: str, handler: Handler) -> tuple[str, re.Pattern[str], Handler]:
    return method, re.compile(pattern), handler


_ID = r"/containers/(?P<id>[^/]+)"
_E = SimDockerEngine
_ROUTES = [
    _route("GET", r"/_ping", _E._ping), _route("HEAD", r"/_ping", _E._ping),
    _route("GET", r"/version", _E._version), _route("GET", r"/info", _E._info),
    _route("GET", r"/events", _E._events),
    _route("GET", r"/containers/json", _E._list),
    _route("POST", r"/containers/create", _E._create),
    _route("GET", _ID + r"/json", _E._inspect),
    _route("GET", _ID + r"/logs", _E._logs),
    _route("GET", _ID + r"/stats", _E._stats),
    _route("GET", _ID + r"/top", _E._top),
    _route("POST", _ID + r"/(?P<action>start|stop|restart|pause|unpause|kill)", _E._action),
    _route("DELETE", _ID, _E._delete),
    _route("GET", r"/images/json", _E._images),
    _route("POST", r"/images/create", _E._pull),
    _route("GET", r"/images/(?P<name>.+)/json", _E._image_inspect),
    _route("DELETE", r"/images/(?P<name>.+)", _E._image_delete),
]

_VERSIONED = re.compile(r"/v(\d+)\.(\d+)(/.*)")
API_NUMBERS = tuple(int(x) for x in views.API_VERSION.split("."))
_HEADERS = [("Api-Version", views.API_VERSION), ("Docker-Experimental", "false"),
            ("Ostype", "linux"), ("Server", f"Docker/{DOCKER_VERSION} (linux)")]


def _time_arg(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise EngineError(400, f"invalid time {value!r}") from None


async def start_docker_engine(path: str, **options: Any) -> SimDockerEngine:
    """Start a simulated engine listening on the UNIX socket `path` (see SimDockerEngine)."""
    engine = SimDockerEngine(path, **options)
    await engine.start()
    return engine


__all__ = ["DEFAULT_SOCKET", "SimDockerEngine", "start_docker_engine"]
