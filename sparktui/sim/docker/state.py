"""The simulated Docker Engine's containers: their life, logs, events and pulls, and the
JSON each is shown as (inspect, the list, `docker ps`), shaped here once.

A deployed container loads its model into the device's memory (SimMemory) and
is a GPU process of the device while it runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from sparktui.sim.device.gpu_model import SimProcess
from sparktui.sim.device.memory_model import SimMemory, model_gib
from sparktui.sim.docker import seed


class EngineError(Exception):
    """An API error: the status and the message dockerd would give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def digest_of(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


def normalize_ref(ref: str) -> str:
    """'ollama/ollama' is 'ollama/ollama:latest'; digests and tags are kept."""
    return ref if "@" in ref or ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"


def rfc3339(wall: float | None) -> str:
    if wall is None:
        return "0001-01-01T00:00:00Z"
    nanos = round((wall - int(wall)) * 1e9) % 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(wall))) + f".{nanos:09d}Z"


@dataclass
class Container:
    id: str
    name: str
    image: str
    cmd: list[str]
    host_config: dict[str, Any]
    labels: dict[str, str]
    created: float = field(default_factory=time.time)
    model: str = ""  # what it serves, when its command says
    exposed: list[str] = field(default_factory=list)  # "8000/tcp": its ports on a host network
    healthcheck: dict[str, Any] | None = None
    seeded: bool = False
    state: str = "created"
    health: str = ""
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    logs: list[tuple[int, float, int, bytes]] = field(default_factory=list)  # seq, wall, stream
    pending: list[tuple[float, int, str]] = field(default_factory=list)  # due, stream, text
    ready_at: float = 0.0  # monotonic: from then on its server answers
    next_request: float = 0.0
    cpu_ns: float = 0.0
    cpu_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # a log line came

    @property
    def profile(self) -> seed.Profile:
        return seed.profile_for(self.image)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def ports(self) -> dict[str, list[dict[str, str]]]:
        return self.host_config.get("PortBindings") or {}

    @property
    def port(self) -> str:
        """What its log lines say it listens on."""
        return (self.exposed or list(self.ports) or ["8000/tcp"])[0].split("/")[0]

    def bound(self) -> set[int]:
        """The device ports published for it."""
        return {int(b["HostPort"]) for bs in self.ports.values() for b in bs or []
                if str(b.get("HostPort") or "").isdigit()}

    def host_ports(self) -> set[int]:
        """The device ports its servers answer on (on a host network: its own ports)."""
        if self.host_config.get("NetworkMode") != "host":
            return self.bound()
        return {int(p.split("/")[0]) for p in self.exposed if p.split("/")[0].isdigit()}

    def inspect(self) -> dict[str, Any]:
        """GET /containers/{id}/json: what sparktui reads of it."""
        state: dict[str, Any] = {
            "Status": self.state, "Running": self.running, "Paused": False,
            "OOMKilled": self.oom_killed, "Pid": self.pid, "ExitCode": self.exit_code,
            "Error": "", "StartedAt": rfc3339(self.started_at),
            "FinishedAt": rfc3339(self.finished_at)}
        if self.healthcheck:
            state["Health"] = {"Status": self.health or "starting"}
        ports = {spec: [{"HostIp": ip, "HostPort": b["HostPort"]} for b in bindings
                        for ip in ([b.get("HostIp") or "0.0.0.0", "::"]  # docker's IPv6 twin
                                   if (b.get("HostIp") or "0.0.0.0") == "0.0.0.0"
                                   else [b["HostIp"]])]
                 for spec, bindings in (self.ports.items() if self.running else ())}
        return {
            "Id": self.id, "Name": "/" + self.name, "Created": rfc3339(self.created),
            "Path": self.cmd[0] if self.cmd else "", "Args": self.cmd[1:], "State": state,
            "Image": self.image, "HostConfig": self.host_config,
            "NetworkSettings": {"Ports": ports},
            "Config": {"Image": self.image, "Cmd": self.cmd, "Labels": self.labels,
                       "Tty": False, "Healthcheck": self.healthcheck,
                       "ExposedPorts": {spec: {} for spec in self.ports}},
            "Mounts": [{"Source": bind.split(":")[0], "Destination": bind.split(":")[1]}
                       for bind in self.host_config.get("Binds") or []]}

    def summary(self, image_id: str) -> dict[str, Any]:
        """Its row in GET /containers/json."""
        return {"Id": self.id, "Names": ["/" + self.name], "Image": self.image,
                "ImageID": image_id, "Command": " ".join(self.cmd),
                "Created": int(self.created), "State": self.state, "Labels": self.labels}

    def ps_row(self) -> dict[str, str]:
        """Its line of `docker ps --format '{{json .}}'`."""
        ports = ", ".join(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}->{spec}"
                          for spec, bs in self.ports.items() if self.running for b in bs)
        return {"ID": self.id[:12], "Names": self.name, "Image": self.image,
                "State": self.state, "Ports": ports,
                "Networks": self.host_config.get("NetworkMode", "")}


class DockerState:
    """The containers, images and event subscribers of one simulated engine."""

    def __init__(self) -> None:
        self.rng = random.Random()
        self.containers: dict[str, Container] = {}
        self.images = {ref: digest_of("image", ref) for ref in seed.SEED_IMAGES}  # ref -> id
        self.pull_seconds = 3.0  # how long a pull takes
        self.memory: SimMemory | None = None  # the device's, once attached
        self.boot = time.time() - 3 * 86_400
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.on_event: Callable[[], None] = lambda: None  # after each (the engine writes ps)
        self._seq, self._pid = 0, 2_000
        for spec in seed.SEED_CONTAINERS:
            self._seed(*spec)

    def container(self, ref: str) -> Container:
        name = ref.lstrip("/")
        for c in self.containers.values():
            if name in (c.id, c.name) or (len(name) >= 4 and c.id.startswith(name)):
                return c
        raise EngineError(404, f"No such container: {ref}")

    def image_id(self, ref: str) -> str:
        """By name, id or pinned digest."""
        ref = normalize_ref(ref)
        for name, image_id in self.images.items():
            if ref in (name, image_id) or ref.endswith("@" + image_id):
                return image_id
        raise EngineError(404, f"No such image: {ref}")

    def event(self, c: Container, action: str, **attributes: str) -> None:
        now = time.time()
        event = {"Type": "container", "Action": action, "status": action, "id": c.id,
                 "from": c.image, "Actor": {"ID": c.id, "Attributes": {
                     "name": c.name, "image": c.image, **attributes}},
                 "scope": "local", "time": int(now), "timeNano": int(now * 1e9)}
        for queue in self.subscribers:
            queue.put_nowait(event)
        self.on_event()

    def log(self, c: Container, stream: int, text: str, wall: float | None = None) -> None:
        for key, value in (("model", c.model or "the configured model"), ("port", c.port),
                           ("name", c.name), ("image", c.image)):
            text = text.replace("{" + key + "}", value)  # not format: the text holds braces
        self._seq += 1
        c.logs.append((self._seq, time.time() if wall is None else wall, stream,
                       text.encode() + b"\n"))
        del c.logs[:-2_000]
        c.changed.set()
        c.changed = asyncio.Event()

    async def run(self) -> None:
        """Time passing: startup lines come, servers get healthy, clients ask."""
        while True:
            now = time.monotonic()
            for c in [c for c in self.containers.values() if c.running]:
                while c.pending and c.pending[0][0] <= now:
                    self.log(c, *c.pending.pop(0)[1:])
                if c.health == "starting" and now >= c.ready_at:
                    c.health = "healthy"
                    self.event(c, "health_status: healthy")
                if now >= c.next_request and now >= c.ready_at:
                    c.next_request = now + self.rng.uniform(3.0, 9.0)
                    self.log(c, *c.profile.request_line(self.rng))
            await asyncio.sleep(0.2)

    def create(self, name: str | None, config: dict[str, Any], **fields: Any) -> Container:
        """A container from `POST /containers/create`'s body (or a seeded one's)."""
        self.image_id(image := str(config.get("Image") or ""))
        name = (name or f"sim_{self.rng.randrange(1 << 24):06x}").lstrip("/")
        if any(c.name == name for c in self.containers.values()):
            raise EngineError(409, f'Conflict. The container name "/{name}" is already in use')
        cmd = [str(a) for a in config.get("Cmd") or []]
        host_config = dict(config.get("HostConfig") or {})
        host_config.setdefault("NetworkMode", "bridge")
        c = Container(digest_of("container", name, str(self.rng.random()))[7:], name, image,
                      cmd, host_config, dict(config.get("Labels") or {}),
                      exposed=list(config.get("ExposedPorts") or {}),
                      healthcheck=config.get("Healthcheck") or None, **{
                          "model": next((cmd[cmd.index(flag) + 1] for flag in (
                              "serve", "--model", "--model-path", "-m", "-hf")
                              if flag in cmd[:-1]), ""), **fields})
        self.containers[c.id] = c
        self.event(c, "create")
        return c

    def start(self, c: Container) -> bool:
        """False when it was running already (the API answers 304)."""
        if c.running:
            return False
        taken = set().union(*(o.bound() for o in self.containers.values() if o.running))
        if taken & c.bound():
            raise EngineError(500, f"driver failed programming external connectivity on "
                                   f"endpoint {c.name}: Bind for 0.0.0.0:"
                                   f"{min(taken & c.bound())} failed: port is already allocated")
        now = time.monotonic()
        self._pid += self.rng.randint(40, 900)
        c.state, c.pid, c.started_at, c.exit_code, c.oom_killed = (
            "running", self._pid, time.time(), 0, False)
        c.health = "starting" if c.healthcheck else ""
        load_s = 0.0
        if self.memory is not None and not c.seeded:  # it loads its model into the device
            size = model_gib(c.model or c.image)
            load_s = self.memory.start_load(c.id, size)
            self.log(c, seed.OUT, f"loading model weights: {size:.1f} GiB ({load_s:.0f} s)")
        c.pending = [(now + delay + load_s, stream, text)
                     for delay, stream, text in c.profile.startup]
        # its first lines at once, as a real server prints them; then it answers a moment
        # after its last line
        while c.pending and c.pending[0][0] <= now:
            self.log(c, *c.pending.pop(0)[1:])
        c.ready_at = max([now, *(due for due, _, _ in c.pending)]) + 1.0
        c.next_request, c.cpu_at = c.ready_at + self.rng.uniform(0.5, 2.0), now
        self.event(c, "start")
        return True

    async def stop(self, c: Container, signal: int = 15) -> bool:
        """False when it was not running (304). SIGKILL (the load guard's) ends it at once."""
        if not c.running:
            return False
        self.event(c, "kill", signal=str(signal))
        if signal == 15:
            c.pending.clear()
            self.log(c, seed.OUT, seed.info_line("Shutting down"))
            await asyncio.sleep(0.2)  # a graceful stop takes a moment
        if c.running and c.id in self.containers:  # not stopped or removed meanwhile
            self.exited(c, 0 if signal == 15 else 137)
            if signal == 15:
                self.event(c, "stop")
        return True

    def exited(self, c: Container, code: int) -> None:
        """It ended (also: the box rebooted, and nothing that ran survives)."""
        c.state, c.finished_at, c.exit_code, c.pid = "exited", time.time(), code, 0
        if self.memory is not None:
            self.memory.end_load(c.id)
        c.health = "unhealthy" if c.healthcheck else ""
        c.pending.clear()
        self.event(c, "die", exitCode=str(code))
        c.changed.set()  # a follower of its logs: the stream ends

    def remove(self, c: Container, *, force: bool) -> None:
        if c.running and not force:
            raise EngineError(409, f'cannot remove container "/{c.name}": container is '
                                   "running: stop the container before removing or force remove")
        if c.running:
            self.exited(c, 137)
        del self.containers[c.id]
        self.event(c, "destroy")

    def gpu_processes(self) -> list[SimProcess]:
        """The CUDA process of every running container that asked for a GPU to serve a model.

        Its pid is the container's, and the device names the container in its
        cgroup, as on a Spark. A deployed container's memory is its load in
        SimMemory; a seeded one's is its weights, resident from before the demo.
        """
        out = []
        for c in self.containers.values():
            model = c.model or ("" if c.seeded else c.image)
            if not (c.running and model and c.host_config.get("DeviceRequests")):
                continue
            weights_mib = int(model_gib(model) * 1024)
            if c.seeded or self.memory is None:
                used, resident = weights_mib, weights_mib if c.seeded else 0
            else:
                used, resident = self.memory.placed_kb(c.id) // 1024, 0
            out.append(SimProcess(c.pid, "root", " ".join(c.cmd), gpu=0,
                                  used_memory_mib=max(1, used), container_id=c.id,
                                  resident_mib=resident))
        return out

    def cpu_ns(self, c: Container) -> float:
        """Its CPU time so far: a slow wobble around idle, more while it starts or serves."""
        now = time.monotonic()
        busy = now < c.ready_at or now < c.next_request - 2.0
        rate = c.profile.cpu_idle * (1 + 0.25 * (hash(c.id) % 7 - 3) / 3)
        c.cpu_ns += (rate + (c.profile.cpu_busy if busy else 0.0)) * (now - c.cpu_at) * 1e9
        c.cpu_at = now
        return c.cpu_ns

    async def pull(self, source: str, tag: str | None, *, authed: bool
                   ) -> AsyncIterator[dict[str, Any]]:
        """The messages of `POST /images/create`: four layers downloading, then the digest."""
        ref = normalize_ref(source if "@" in source or not tag else f"{source}:{tag}")
        if ref.startswith("nvcr.io/nim/") and not authed:
            raise EngineError(500, f"Head https://{ref}: unauthorized: authentication "
                                   "required (log in to nvcr.io as $oauthtoken with an NGC "
                                   "API key)")
        yield {"status": f"Pulling from {ref.split(':')[0]}", "id": ref.rsplit(":", 1)[-1]}
        digest = digest_of("manifest", ref)
        if ref not in self.images:
            layer_size = self.image_size(digest) // 4
            layers = [digest[7 + 12 * i:19 + 12 * i] for i in range(4)]
            for step in range(1, 11):
                await asyncio.sleep(self.pull_seconds / 10)
                for layer in layers:
                    yield {"status": "Downloading", "id": layer, "progressDetail": {
                        "current": layer_size * step // 10, "total": layer_size}}
            for layer in layers:
                yield {"status": "Pull complete", "progressDetail": {}, "id": layer}
            self.images[ref] = digest_of("image", ref)
        yield {"status": f"Digest: {digest}"}
        yield {"status": f"Status: Downloaded newer image for {ref}"}

    def _seed(self, name: str, image: str, cmd: tuple[str, ...], port: int, started_ago: float,
              died_ago: float | None, gpu: bool, health: bool, labels: dict[str, str],
              volume: str) -> None:
        """One of the containers the owner had before the demo began, with its past logs."""
        now = time.time()
        host: dict[str, Any] = {
            "PortBindings": {f"{port}/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]},
            "Binds": [volume], "RestartPolicy": {"Name": "unless-stopped"}}
        if gpu:  # what `--gpus all` asks for
            host["DeviceRequests"] = [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]
        c = self.create(name, {"Image": image, "Cmd": cmd, "HostConfig": host, "Labels": labels,
                               "Healthcheck": dict(seed.HEALTHCHECK) if health else None},
                        created=now - started_ago - 600, seeded=True)
        c.started_at = now - started_ago
        end = now - died_ago if died_ago is not None else now
        for delay, stream, text in c.profile.startup:  # what it printed back then
            self.log(c, stream, text, wall=c.started_at + delay * 5)
        for back in range(20, 0, -1):  # then the traffic of its last minutes
            self.log(c, *c.profile.request_line(self.rng), wall=end - back * 90)
        if died_ago is None:
            self._pid += 317
            c.state, c.pid, c.health = "running", self._pid, "healthy" if health else ""
            c.cpu_at, c.next_request = time.monotonic(), time.monotonic() + 1.0
            c.cpu_ns = c.profile.cpu_idle * started_ago * 1e9
        else:  # its last words before the OOM killer came
            self.log(c, seed.OUT, "Requested to load Flux (fp16), 23.8 GB; loaded partially",
                     wall=end - 2)
            c.state, c.exit_code, c.oom_killed, c.finished_at = "exited", 137, True, end

    @staticmethod
    def image_size(image_id: str) -> int:
        """An image's size in bytes: 2 to 20 GB, as its id says."""
        return 2_000_000_000 + int(image_id[7:15], 16) % 18_000_000_000
