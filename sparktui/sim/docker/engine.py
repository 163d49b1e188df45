"""A simulated Docker Engine: the API subset the demo shows, over HTTP/1.1 on a UNIX socket.

On the simulator's HTTP layer (sparktui.sim.http), standing in for dockerd:
`start_docker_engine(path)` listens on a UNIX socket, and `attach(server)`
makes the sim's /var/run/docker.sock forward lead to it, so the Containers
tab reaches it through the real SSH socket forward and the real docker-py.

Served: /_ping, /version, /info, /events (streamed), the container list,
inspect, logs (multiplexed frames, follow), one-shot stats, start, stop,
restart, kill (the load guard's), delete and create, the image list, image
inspect and pulls (what a deploy needs).
Anything else answers 404 saying the simulated engine does not support it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sparktui.sim.device.gpu_model import MEM_TOTAL_KB, NCPU
from sparktui.sim.device.root import DOCKER_VERSION, KERNEL_RELEASE
from sparktui.sim.docker.apps import AppFront, published_ports
from sparktui.sim.docker.seed import SEED_HOME
from sparktui.sim.docker.state import DockerState, EngineError, SimContainer, rfc3339, stop_task
from sparktui.sim.http import Exchange, HttpServer, Request
from sparktui.sim.http import Handler as HttpHandler

API_VERSION = "1.51"  # Docker 28.3's, the Engine the simulated Spark's facts report
Route = Callable[["SimDockerEngine", Request, "re.Match[str]", Exchange], Awaitable[bool]]


class SimDockerEngine:
    """The engine; `start()` it on the loop that will serve it, `close()` it there too."""

    def __init__(self, path: str, *, seed: int | None = None, seeded: bool = True,
                 pull_seconds: float = 3.0, hostname: str = "spark-sim") -> None:
        self.path, self.hostname = path, hostname
        self.state = DockerState(seed_value=seed, seeded=seeded, pull_seconds=pull_seconds)
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
        headers = [("Api-Version", API_VERSION), ("Server", f"Docker/{DOCKER_VERSION} (linux)")]
        self._server = await HttpServer(self._dispatch, headers).listen(path=self.path)
        self._ticker = asyncio.get_running_loop().create_task(self.state.run())
        return self

    async def attach(self, server: Any, *, model_server: HttpHandler | None = None) -> None:
        """Be the Docker of simulated Spark `server` (a SimServer).

        Its /var/run/docker.sock (and the /run alias) leads here, its shell's
        probe finds the socket, and the published ports of containers made
        through the API answer (sim.docker.apps), relaying to the model
        server's handler when one is given.
        """
        for path in ("/var/run/docker.sock", "/run/docker.sock"):
            server.map_unix(path, self.path)
            link = os.path.join(server.root.path, path.lstrip("/"))  # what the probe looks at
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(self.path, link)
        server.device.docker_engine = self  # the docker stand-in asks it
        for c in self.state.containers.values():  # the seeded volumes: the device's home
            c.host_config["Binds"] = [bind.replace(SEED_HOME, str(server.root.home), 1)
                                      for bind in c.host_config.get("Binds") or []]
        self.state.memory = server.device.memory  # deployed models load into its memory
        server.device.container_processes = self.state.gpu_processes
        server.device.memory.on_reboot.append(self.state.kill_all)
        self._front = await AppFront(self.state, model_server).start()
        self._sim, self._reserved = server, set(server.port_map)
        self.state.on_change = self._map_ports
        self._map_ports()

    def _map_ports(self) -> None:
        """Point the sim's ports of running API-made containers at the app front."""
        if self._sim is None or self._front is None:
            return
        wanted = set().union(*(published_ports(c) for c in self.state.containers.values()
                               if c.running and not c.seeded)) - self._reserved
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
        self.state.on_change = None
        front, self._front = self._front, None
        if front is not None:
            await front.close()
        for port in self._mapped if self._sim is not None else ():
            self._sim.port_map.pop(port, None)
        self._mapped = set()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _dispatch(self, request: Request, conn: Exchange) -> None:
        """Answer one request (the path without its /v1.NN prefix)."""
        request.path = re.sub(r"^/v\d+\.\d+(?=/)", "", request.path)
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

    async def _ping(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, b"OK", content_type="text/plain; charset=utf-8")
        return True

    async def _version(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, {"Version": DOCKER_VERSION, "ApiVersion": API_VERSION,
                               "MinAPIVersion": "1.24", "Os": "linux", "Arch": "arm64",
                               "KernelVersion": KERNEL_RELEASE})
        return True

    async def _info(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        running = sum(c.running for c in self.state.containers.values())
        await conn.reply(200, {
            "Containers": len(self.state.containers), "ContainersRunning": running,
            "Images": len(self.state.images), "ServerVersion": DOCKER_VERSION, "NCPU": NCPU,
            "MemTotal": MEM_TOTAL_KB * 1024, "Name": self.hostname, "Architecture": "aarch64",
            "OperatingSystem": "Ubuntu 24.04.3 LTS", "KernelVersion": KERNEL_RELEASE,
            "Runtimes": {"nvidia": {"path": "nvidia-container-runtime"},
                         "runc": {"path": "runc"}}})
        return True

    async def _events(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        filters = _filters(request)
        queue = self.state.subscribe()
        try:
            await conn.start("application/json")
            while True:
                got = asyncio.ensure_future(queue.get())
                if not await conn.wait(got):
                    return False
                event = got.result()
                if all(not wanted or value in wanted or value.split(":")[0] in wanted
                       for value, wanted in ((event["Type"], filters.get("type")),
                                             (event["Action"], filters.get("event")))):
                    await conn.send((json.dumps(event) + "\n").encode())
        finally:
            self.state.unsubscribe(queue)

    # -- containers ------------------------------------------------------------------------------
    async def _list(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        filters = _filters(request)
        names, states = filters.get("name", []), filters.get("status", [])
        rows = [c for c in self.state.containers.values()
                if (request.flag("all") or c.running)
                and all(re.search(n, "/" + c.name) for n in names)
                and (not states or c.state in states)]
        rows.sort(key=lambda c: c.created, reverse=True)
        await conn.reply(200, [{"Id": c.id, "Names": ["/" + c.name], "Image": c.image,
                                "ImageID": self.state.images.get(c.image, ""),
                                "Command": " ".join(c.cmd), "Created": int(c.created),
                                "State": c.state, "Labels": c.labels} for c in rows])
        return True

    async def _inspect(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        await conn.reply(200, inspect(self.state.container(match["id"])))
        return True

    async def _create(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.create(request.arg("name"), json.loads(request.body or b"{}"))
        await conn.reply(201, {"Id": c.id, "Warnings": []})
        return True

    async def _action(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        if match["action"] == "start":
            changed = self.state.start(c)
        elif match["action"] == "kill":  # what the load guard does to a load that would wedge
            changed = self.state.kill(c)
        else:  # stop, or restart
            changed = await self.state.stop(c)
            if match["action"] == "restart":
                changed = self.state.start(c) or True
        await conn.reply(204 if changed else 304)
        return True

    async def _delete(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        self.state.remove(self.state.container(match["id"]), force=request.flag("force"))
        await conn.reply(204)
        return True

    async def _logs(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        streams = {n for n, flag in ((1, "stdout"), (2, "stderr")) if request.flag(flag)}
        stamps, tail = request.flag("timestamps"), request.arg("tail") or "all"

        def frames(lines: list[Any]) -> bytes:
            out = b""
            for line in lines:
                if line.stream in streams:
                    data = (rfc3339(line.wall) + " ").encode() * stamps + line.data
                    out += struct.pack(">BxxxL", line.stream, len(data)) + data
            return out

        lines = c.logs if tail == "all" else c.logs[len(c.logs) - int(tail):] if int(tail) else []
        seen = c.logs[-1].seq if c.logs else 0
        await conn.start("application/vnd.docker.multiplexed-stream")
        await conn.send(frames(lines))
        while request.flag("follow") and c.running and c.id in self.state.containers:
            if not await conn.wait(c.changed.wait(), timeout=1.0):
                return False
            fresh = [line for line in c.logs if line.seq > seen]
            if fresh:
                seen = fresh[-1].seq
                await conn.send(frames(fresh))
        await conn.end()
        return not request.flag("follow")

    async def _stats(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        c = self.state.container(match["id"])
        if not c.running:
            await conn.reply(200, {"id": c.id, "cpu_stats": {}, "memory_stats": {}})
            return True
        usage = int(c.profile.mem_bytes * (1 + 0.02 * (time.time() % 5)))
        await conn.reply(200, {
            "id": c.id, "name": "/" + c.name, "read": rfc3339(time.time()),
            "cpu_stats": {"cpu_usage": {"total_usage": int(self.state.cpu_ns(c))},
                          "system_cpu_usage": int((time.time() - self.state.boot) * NCPU * 1e9),
                          "online_cpus": NCPU},
            "memory_stats": {"usage": usage, "limit": MEM_TOTAL_KB * 1024,
                             "stats": {"inactive_file": usage // 16}}})
        return True

    # -- images: what a deploy needs -------------------------------------------------------------
    async def _image(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        image_id = self.state.image_id(match["name"])
        refs = [ref for ref, found in self.state.images.items() if found == image_id]
        await conn.reply(200, {"Id": image_id, "RepoTags": refs, "Architecture": "arm64",
                               "RepoDigests": [f"{ref.rsplit(':', 1)[0]}@sha256:"
                                               f"{image_id[7:]}" for ref in refs]})
        return True

    async def _images(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        """The Images screen's list (read only: the demo removes no images)."""
        await conn.reply(200, [{"Id": image_id, "RepoTags": [ref], "Created": int(
            self.state.boot), "Size": 2_000_000_000 + int(image_id[7:15], 16) % 18_000_000_000}
            for ref, image_id in self.state.images.items()])
        return True

    async def _pull(self, request: Request, match: re.Match[str], conn: Exchange) -> bool:
        source, tag = request.arg("fromImage") or "", request.arg("tag")
        ref = source if "@" in source or not tag else f"{source}:{tag}"
        events = self.state.pull(ref, bool(request.headers.get("x-registry-auth")))
        first = await anext(events)  # errors before the stream starts are plain HTTP errors
        await conn.start("application/json")
        await conn.send((json.dumps(first) + "\r\n").encode())
        async for event in events:
            await conn.send((json.dumps(event) + "\r\n").encode())
        await conn.end()
        return True


def inspect(c: SimContainer) -> dict[str, Any]:
    """GET /containers/{id}/json: what sparktui reads of it."""
    state: dict[str, Any] = {
        "Status": c.state, "Running": c.running, "Paused": False, "OOMKilled": c.oom_killed,
        "Pid": c.pid, "ExitCode": c.exit_code, "Error": "", "StartedAt": rfc3339(c.started_at),
        "FinishedAt": rfc3339(c.finished_at)}
    if c.healthcheck:
        state["Health"] = {"Status": c.health or "starting"}
    ports: dict[str, Any] = {}
    for spec, bindings in c.ports.items() if c.running else ():  # with docker's IPv6 twin
        ports[spec] = [{"HostIp": ip, "HostPort": b["HostPort"]} for b in bindings
                       for ip in ([b.get("HostIp") or "0.0.0.0", "::"]
                                  if (b.get("HostIp") or "0.0.0.0") == "0.0.0.0"
                                  else [b["HostIp"]])]
    return {
        "Id": c.id, "Name": "/" + c.name, "Created": rfc3339(c.created), "Path": c.cmd[0]
        if c.cmd else "", "Args": c.cmd[1:], "State": state, "Image": c.image,
        "HostConfig": c.host_config, "NetworkSettings": {"Ports": ports},
        "Config": {"Image": c.image, "Cmd": c.cmd, "Labels": c.labels, "Tty": False,
                   "Healthcheck": c.healthcheck,
                   "ExposedPorts": {spec: {} for spec in c.ports}},
        "Mounts": [{"Source": bind.split(":")[0], "Destination": bind.split(":")[1]}
                   for bind in c.host_config.get("Binds") or []],
    }


def _filters(request: Request) -> dict[str, list[str]]:
    """The `filters` query parameter: {"key": ["v", ...]} or the old {"key": {"v": true}}."""
    try:
        data = json.loads(request.arg("filters") or "{}")
    except ValueError as exc:
        raise EngineError(400, f"invalid filter: {exc}") from None
    return {str(k): [str(x) for x in v] for k, v in data.items()}


_ID = r"/containers/(?P<id>[^/]+)"
_E = SimDockerEngine
_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (method, re.compile(pattern), handler) for method, pattern, handler in (
        ("GET", r"/_ping", _E._ping), ("GET", r"/version", _E._version),
        ("GET", r"/info", _E._info), ("GET", r"/events", _E._events),
        ("GET", r"/containers/json", _E._list), ("POST", r"/containers/create", _E._create),
        ("GET", _ID + r"/json", _E._inspect), ("GET", _ID + r"/logs", _E._logs),
        ("GET", _ID + r"/stats", _E._stats), ("DELETE", _ID, _E._delete),
        ("POST", _ID + r"/(?P<action>start|stop|restart|kill)", _E._action),
        ("POST", r"/images/create", _E._pull), ("GET", r"/images/json", _E._images),
        ("GET", r"/images/(?P<name>.+)/json", _E._image))]


async def start_docker_engine(path: str, **options: Any) -> SimDockerEngine:
    """Start a simulated engine listening on the UNIX socket `path` (see SimDockerEngine)."""
    return await SimDockerEngine(path, **options).start()
