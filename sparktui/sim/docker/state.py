"""The simulated Docker Engine's state: containers, images, logs, events and statistics.

Everything runs on the event loop that owns the engine (no locks): the HTTP
layer (sparktui.sim.docker.engine) calls in from its handlers, and one ticker
task makes the running containers live, writing their request log lines,
moving their CPU counters and turning a starting health check healthy.
State changes emit the events a real daemon would (kill/die/stop, start,
pause, destroy, health_status, image pull/delete) to every events stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sparktui.sim.device.gpu_model import NCPU, SimProcess
from sparktui.sim.docker import seed as seed

MAX_LOG_LINES = 5_000
TICK_S = 0.25
GRACEFUL_STOP_S = 0.3  # how long a stopped container takes to exit
HEALTHY_AFTER_S = 1.0  # after the last startup line, the health check passes
SIGNALS = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGUSR1": 10,
           "SIGUSR2": 12, "SIGTERM": 15}


class EngineError(Exception):
    """An API error: the HTTP status and Docker's own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def digest_of(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def normalize_ref(ref: str) -> str:
    """'ollama/ollama' -> 'ollama/ollama:latest'; docker.io/ and library/ go, as Docker does."""
    ref = ref.strip()
    name, at, digest = ref.partition("@")
    for prefix in ("docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    name = name.removeprefix("library/")
    if at:
        return f"{name}@{digest}"
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


@dataclass
class SimImage:
    id: str  # sha256:...
    tags: list[str]
    digests: list[str]
    size: int
    created: float

    @property
    def short(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


@dataclass
class LogEntry:
    seq: int
    wall: float
    stream: int
    data: bytes


@dataclass
class SimContainer:
    id: str
    name: str
    image: str  # as asked for (Config.Image)
    image_id: str
    cmd: list[str]
    env: list[str]
    labels: dict[str, str]
    created: float
    profile: seed.Profile
    context: dict[str, str]
    host_config: dict[str, Any]
    exposed: dict[str, Any]
    healthcheck: dict[str, Any] | None = None
    state: str = "created"
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int = 0
    oom_killed: bool = False
    health: str = ""
    restarts: int = 0
    pid: int = 0
    seeded: bool = False  # one of the demo's own (docker_seed), not made through the API
    logs: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    pending: deque[tuple[float, int, str]] = field(default_factory=deque)  # (due, stream, text)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    cpu_ns: float = 0.0
    cpu_history: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=12))  # (monotonic, cpu ns, system ns)
    next_request: float = 0.0
    busy_until: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused")

    @property
    def ports(self) -> dict[str, list[dict[str, str]]]:
        return self.host_config.get("PortBindings") or {}

    def wake(self) -> None:
        """Tell the log followers something happened (a line, a stop)."""
        event, self.changed = self.changed, asyncio.Event()
        event.set()


class DockerState:
    """Containers and images of one simulated daemon. Create it on its event loop."""

    def __init__(self, *, seed_value: int | None = None, seeded: bool = True,
                 pull_seconds: float = 3.0) -> None:
        self.rng = random.Random(seed_value)
        self.pull_seconds = pull_seconds
        self.containers: dict[str, SimContainer] = {}
        self.images: dict[str, SimImage] = {}
        self.boot = time.time() - 5 * 86_400.0  # for system_cpu_usage
        self._seq = 0
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.history: deque[dict[str, Any]] = deque(maxlen=512)
        self._pid = 3000
        #: called after a container starts, stops or goes (the engine maps published ports)
        self.on_change: Callable[[], None] | None = None
        #: the device's memory (sim.memory_model.SimMemory) once attached: API-made
        #: containers load their model into it while they start
        self.memory: Any = None
        if seeded:
            seed.populate(self)

    # -- lookups ---------------------------------------------------------------------------
    def container(self, ref: str) -> SimContainer:
        ref = ref.lstrip("/")
        if ref in self.containers:
            return self.containers[ref]
        for c in self.containers.values():
            if c.name == ref:
                return c
        matches = [c for c in self.containers.values() if ref and c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise EngineError(404, f"No such container: {ref}")

    def image(self, ref: str) -> SimImage:
        if ref.startswith("sha256:") and ref in self.images:
            return self.images[ref]
        wanted = normalize_ref(ref)
        for image in self.images.values():
            if wanted in image.tags or wanted in image.digests:
                return image
        bare = ref.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{4,64}", bare):
            matches = [i for i in self.images.values() if i.id[7:].startswith(bare)]
            if len(matches) == 1:
                return matches[0]
        raise EngineError(404, f"No such image: {ref}")

    def users_of(self, image: SimImage) -> list[SimContainer]:
        return [c for c in self.containers.values() if c.image_id == image.id]

    # -- events ----------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def subscribed(self, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        return queue in self._subscribers

    def emit(self, kind: str, action: str, actor: str, attributes: dict[str, str]) -> None:
        now = time.time_ns()
        event: dict[str, Any] = {
            "Type": kind, "Action": action,
            "Actor": {"ID": actor, "Attributes": attributes},
            "scope": "local", "time": now // 1_000_000_000, "timeNano": now,
        }
        if kind == "container":  # the pre-1.22 fields a real daemon still sends
            event.update(status=action, id=actor, **{"from": attributes.get("image", "")})
        self.history.append(event)
        for queue in list(self._subscribers):
            if queue.full():  # a stalled reader: its stream ends once it catches up
                self._subscribers.discard(queue)
                continue
            queue.put_nowait(event)

    def container_event(self, c: SimContainer, action: str, **extra: str) -> None:
        attributes = {**c.labels, "image": c.image, "name": c.name, **extra}
        self.emit("container", action, c.id, attributes)

    # -- logs ------------------------------------------------------------------------------
    def log(self, c: SimContainer, stream: int, text: str, wall: float | None = None) -> None:
        self._seq += 1
        wall = time.time() if wall is None else wall
        line = seed.render(text, wall, c.context)
        c.logs.append(LogEntry(self._seq, wall, stream, (line + "\n").encode()))
        c.wake()

    # -- the ticker: what makes running containers live -----------------------------------
    async def run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(TICK_S)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for c in list(self.containers.values()):
            if c.state != "running":
                continue
            while c.pending and c.pending[0][0] <= now:
                _, stream, text = c.pending.popleft()
                self.log(c, stream, text)
            if not c.pending and c.health == "starting" and now >= c.busy_until:
                c.health = "healthy"
                self.container_event(c, "health_status: healthy")
            if not c.pending and now >= c.next_request:
                for stream, text in c.profile.request(c.rng, c.context):
                    self.log(c, stream, text)
                c.busy_until = now + c.rng.uniform(0.8, 2.5)
                c.next_request = now + c.rng.uniform(*c.profile.request_every)
            self.advance_cpu(c, now)

    def _cpu_rate(self, c: SimContainer, now: float) -> float:
        """Cores busy now: a slow wobble around idle, plus the work of a request."""
        if c.state != "running":
            return 0.0
        phase = int(c.id[:6], 16) % 100
        idle = c.profile.cpu_idle * (1 + 0.25 * math.sin(now / 7.0 + phase))
        return idle + (c.profile.cpu_busy if now < c.busy_until else 0.0)

    def advance_cpu(self, c: SimContainer, now: float) -> None:
        last = c.cpu_history[-1][0] if c.cpu_history else now
        c.cpu_ns += self._cpu_rate(c, now) * max(0.0, now - last) * 1e9
        c.cpu_history.append((now, c.cpu_ns, self.system_ns()))

    def system_ns(self) -> float:
        return (time.time() - self.boot) * NCPU * 1e9

    # -- container life ---------------------------------------------------------------------
    def create(self, name: str | None, config: dict[str, Any]) -> SimContainer:
        image_ref = str(config.get("Image") or "")
        if not image_ref:
            raise EngineError(400, "config cannot be empty in order to create a container")
        image = self.image(image_ref)
        if name is None:
            name = f"{self.rng.choice(_ADJECTIVES)}_{self.rng.choice(_SCIENTISTS)}"
        if not re.fullmatch(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+", name):
            raise EngineError(400, f'Invalid container name ({name}), only '
                                   '[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        name = name.lstrip("/")
        for other in self.containers.values():
            if other.name == name:
                raise EngineError(409, f'Conflict. The container name "/{name}" is already in '
                                       f'use by container "{other.id}". You have to remove '
                                       "(or rename) that container to be able to reuse that "
                                       "name.")
        cmd = [str(a) for a in (config.get("Cmd") or [])]
        host = dict(config.get("HostConfig") or {})
        container_port = next(iter(config.get("ExposedPorts") or {}), "8000/tcp")
        model = _model_from(cmd) or "the configured model"
        c = self.new_container(name, image_ref, image, cmd, list(config.get("Env") or []),
                      dict(config.get("Labels") or {}), host,
                      dict(config.get("ExposedPorts") or {}), model=model,
                      port=container_port.split("/")[0])
        c.healthcheck = config.get("Healthcheck") or None
        self.container_event(c, "create")
        return c

    def new_container(self, name: str, image_ref: str, image: SimImage, cmd: list[str],
                      env: list[str], labels: dict[str, str], host_config: dict[str, Any],
                      exposed: dict[str, Any], *, model: str = "", port: str = "",
                      created: float | None = None) -> SimContainer:
        cid = digest_of("container", name, str(self.rng.random()))
        profile = seed.profile_for(image_ref, name)
        host_config.setdefault("NetworkMode", "bridge")
        host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
        c = SimContainer(id=cid, name=name, image=image_ref, image_id=image.id, cmd=cmd, env=env,
                         labels=labels, created=time.time() if created is None else created,
                         profile=profile, host_config=host_config, exposed=exposed,
                         context={"model": model, "port": port, "name": name,
                                  "image": image_ref},
                         rng=random.Random(f"{name}:{self.rng.random()}"))
        self.containers[cid] = c
        return c

    def gpu_processes(self) -> list[SimProcess]:
        """The CUDA process of every running container that asked for GPUs to serve a model.

        Its pid is the container's (what `docker inspect` says as State.Pid) and the
        device's GPU-process loop names the container in its cgroup, as on a real
        Spark, so a process joins up with its container, port and model. An API-made
        container's memory is its load in SimMemory; a seeded one's is its weights,
        resident from before the demo began.
        """
        from sparktui.sim.device.memory_model import model_gib

        out = []
        for c in self.containers.values():
            model = c.context.get("model") or _model_from(c.cmd)
            if not (c.running and c.pid and model and c.host_config.get("DeviceRequests")):
                continue
            weights_mib = int(model_gib(model) * 1024)
            if c.seeded or self.memory is None:
                used, resident = weights_mib, weights_mib if c.seeded else 0
            else:
                used, resident = self.memory.placed_kb(c.id) // 1024, 0
            out.append(SimProcess(c.pid, "root", " ".join(c.cmd) or c.image, gpu=0,
                                  used_memory_mib=max(1, used), start=0.0,
                                  container_id=c.id, resident_mib=resident))
        return out

    def next_pid(self) -> int:
        self._pid += self.rng.randint(40, 900)
        return self._pid

    def _check_ports_free(self, c: SimContainer) -> None:
        for bindings in c.ports.values():
            for binding in bindings or []:
                port, ip = binding.get("HostPort") or "", binding.get("HostIp") or "0.0.0.0"
                for other in self.containers.values():
                    if other is c or not other.running:
                        continue
                    for theirs in (b for bs in other.ports.values() for b in bs or []):
                        their_ip = theirs.get("HostIp") or "0.0.0.0"
                        if theirs.get("HostPort") == port and (
                                "0.0.0.0" in (ip, their_ip) or ip == their_ip):
                            raise EngineError(500, (
                                f"driver failed programming external connectivity on endpoint "
                                f"{c.name} ({c.id[:12]}): Bind for {ip}:{port} failed: port "
                                "is already allocated"))

    def start(self, c: SimContainer) -> bool:
        """False when it was running already (the API answers 304)."""
        if c.state == "paused":
            raise EngineError(409, "cannot start a paused container, try unpause instead")
        if c.state == "running":
            return False
        self._check_ports_free(c)
        now, wall = time.monotonic(), time.time()
        c.state, c.started_at, c.pid = "running", wall, self.next_pid()
        c.exit_code, c.oom_killed = 0, False
        c.health = "starting" if c.healthcheck else ""
        load_s = self._start_load(c)
        c.pending = deque((now + delay + (load_s if i else 0.0), stream, text)
                          for i, (delay, stream, text) in enumerate(c.profile.startup))
        c.busy_until = now + (c.profile.startup[-1][0] if c.profile.startup else 0) \
            + HEALTHY_AFTER_S + load_s
        c.next_request = c.busy_until + c.rng.uniform(0.5, 2.0)
        c.cpu_history.clear()
        self.container_event(c, "start")
        self._changed()
        self.tick(now)  # the first lines at once, as a real server prints them
        return True

    def _start_load(self, c: SimContainer) -> float:
        """Seconds an API-made container spends loading its model into the device's memory."""
        if self.memory is None or c.seeded:
            return 0.0
        from sparktui.sim.device.memory_model import model_gib

        size = model_gib(_model_from(c.cmd) or c.image)
        load_s = self.memory.start_load(c.id, size)
        self.log(c, 1, f"loading model weights: {size:.1f} GiB ({load_s:.0f} s)")
        return load_s

    async def stop(self, c: SimContainer, *, signal: int = 15, graceful: bool = True) -> bool:
        """False when it was not running (304). SIGKILL skips the shutdown lines."""
        if not c.running:
            return False
        if c.state == "paused":
            c.state = "running"
        self.container_event(c, "kill", signal=str(signal))
        if graceful and signal != 9:
            c.pending.clear()
            for _, stream, text in c.profile.shutdown:
                self.log(c, stream, text)
            await asyncio.sleep(GRACEFUL_STOP_S)
            if c.state != "running":  # stopped or removed meanwhile by another request
                return True
            code = c.profile.stop_exit_code
        else:
            code = 128 + signal
        self._exited(c, code)
        return True

    def _exited(self, c: SimContainer, code: int) -> None:
        c.state, c.finished_at, c.exit_code, c.pid = "exited", time.time(), code, 0
        if self.memory is not None:
            self.memory.end_load(c.id)
        c.health = "unhealthy" if c.healthcheck else ""
        c.pending.clear()
        self.container_event(c, "die", exitCode=str(code))
        c.wake()
        self._changed()

    async def stop_action(self, c: SimContainer) -> bool:
        stopped = await self.stop(c)
        if stopped and c.id in self.containers:  # not removed while it was stopping
            self.container_event(c, "stop")
        return stopped

    async def restart(self, c: SimContainer) -> None:
        if await self.stop(c):
            self.container_event(c, "stop")
        c.restarts += 1
        self.start(c)
        self.container_event(c, "restart")

    def pause(self, c: SimContainer) -> None:
        if c.state == "paused":
            raise EngineError(409, f"Container {c.id} is already paused")
        if c.state != "running":
            raise EngineError(409, f"Container {c.id} is not running")
        c.state = "paused"
        self.container_event(c, "pause")

    def unpause(self, c: SimContainer) -> None:
        if c.state != "paused":
            raise EngineError(409, f"Container {c.id} is not paused")
        c.state = "running"
        self.container_event(c, "unpause")

    def kill(self, c: SimContainer, signal: str | None) -> None:
        if not c.running:
            raise EngineError(409, f"Cannot kill container: {c.name}: Container {c.id} is not "
                                   "running")
        number = _signal_number(signal or "SIGKILL")
        if number not in (9, 15, 2, 3):  # a signal the server shrugs off (e.g. SIGHUP)
            self.container_event(c, "kill", signal=str(number))
            return
        self.container_event(c, "kill", signal=str(number))
        self._exited(c, 128 + number if number == 9 else c.profile.stop_exit_code)

    def remove(self, c: SimContainer, *, force: bool) -> None:
        if c.running:
            if not force:
                raise EngineError(409, f"cannot remove container \"/{c.name}\": container is "
                                       "running: stop the container before removing or force "
                                       "remove")
            self.container_event(c, "kill", signal="9")
            self._exited(c, 137)
        del self.containers[c.id]
        self.container_event(c, "destroy")
        c.wake()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- images ------------------------------------------------------------------------------
    def add_image(self, tags: list[str], size: int, created: float, *,
                  repo: str | None = None) -> SimImage:
        """An image; with `repo` it came from that registry repository (it has a digest)."""
        key = ",".join(tags) or f"{repo}:{size}"
        digests = [f"{repo}@sha256:{digest_of('manifest', key)}"] if repo else []
        image = SimImage("sha256:" + digest_of("image", key), list(tags), digests, size,
                         created)
        self.images[image.id] = image
        return image

    def remove_image(self, ref: str, *, force: bool) -> list[dict[str, str]]:
        image = self.image(ref)
        users = self.users_of(image)
        running = [c for c in users if c.running]
        if running:
            raise EngineError(409, f"conflict: unable to delete {image.short} (cannot be "
                                   f"forced) - image is being used by running container "
                                   f"{running[0].id[:12]}")
        if users and not force:
            raise EngineError(409, f"conflict: unable to delete {image.short} (must be forced) "
                                   f"- image is being used by stopped container "
                                   f"{users[0].id[:12]}")
        by_tag = normalize_ref(ref) in image.tags
        if by_tag and len(image.tags) > 1:  # one name of several goes; the image stays
            tag = normalize_ref(ref)
            image.tags.remove(tag)
            self.emit("image", "untag", image.id, {"name": tag})
            return [{"Untagged": tag}]
        if not by_tag and len(image.tags) > 1 and not force:
            raise EngineError(409, f"conflict: unable to delete {image.short} (must be forced) "
                                   "- image is referenced in multiple repositories")
        done = [{"Untagged": tag} for tag in image.tags]
        done += [{"Untagged": d} for d in image.digests]
        for tag in image.tags:
            self.emit("image", "untag", image.id, {"name": tag})
        del self.images[image.id]
        self.emit("image", "delete", image.id, {"name": image.id})
        return [*done, {"Deleted": image.id}]

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(wall: float | None) -> str:
    """Docker's timestamps: RFC 3339 with nanoseconds, UTC."""
    if wall is None:
        return ZERO_TIME
    seconds = int(wall)
    nanos = round((wall - seconds) * 1e9) % 1_000_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def repo_of(ref: str) -> str:
    """'nvcr.io/nvidia/vllm:25.09-py3' -> 'nvcr.io/nvidia/vllm' (registry ports kept)."""
    name = ref.split("@")[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def _signal_number(signal: str) -> int:
    text = signal.upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    if text not in SIGNALS:
        raise EngineError(400, f"Invalid signal: {signal}")
    return SIGNALS[text]


def _model_from(cmd: list[str]) -> str:
    for flag in ("serve", "--model", "--model-path", "-m", "-hf"):
        if flag in cmd and cmd.index(flag) + 1 < len(cmd):
            return cmd[cmd.index(flag) + 1]
    return ""


_ADJECTIVES = ("brave", "eager", "quirky", "serene", "vibrant", "zealous")
_SCIENTISTS = ("hopper", "lovelace", "turing", "noether", "shannon", "ritchie")


async def stop_task(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
