"""Docker containers on one device, over that device's existing connection.

The device's Docker socket is forwarded to a local UNIX socket in a private
0700 directory (never a TCP port: the socket is root-equivalent), and the
docker SDK talks to that. The local transport uses the local socket directly.
After a reconnect the forward is rebuilt and the list resynchronised.

docker-py blocks, so it only ever runs in threads: short calls through
`asyncio.to_thread`, and the long-lived streams (events, stats, logs) in
threads of their own, so they never starve the default executor. Results come
back to the event loop with `call_soon_threadsafe`; listeners are called on
the loop. No Textual here: the pane and the CLI both use this service.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparktui.core.docker_info import (
    WATCHED_EVENTS,
    ContainerInfo,
    ContainerStats,
    api_too_old,
    stats_from_sample,
    version_tuple,
)
from sparktui.core.docker_problems import (
    DockerProblem,
    ProblemKind,
    classify,
    diagnose_command,
    not_connected,
    parse_probe,
)
from sparktui.core.docker_problems import api_too_old as api_too_old_problem
from sparktui.core.sanitize import clean_reason, strip_control
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.container_list import inspect_one, list_all
from sparktui.services.link import DeviceLink
from sparktui.transport.base import ConnectionLost, Forward, Transport
from sparktui.transport.ssh_types import SSHOptions

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/run/docker.sock"
#: a request that takes longer than this is a daemon in trouble, not a slow one
REQUEST_TIMEOUT = 30.0


class DockerUnavailable(Exception):
    """Docker on the device cannot be used right now; `problem` says why and what to do."""

    def __init__(self, problem: DockerProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class ContainerActionError(Exception):
    """An action the daemon refused or that failed; the message is the daemon's reason."""


class ServiceState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    PROBLEM = "problem"
    OFFLINE = "offline"
    CLOSED = "closed"


@dataclass(frozen=True)
class Change:
    """What changed: 'reset' (whole list), 'upsert'/'remove' (one id), 'stats', 'state'."""

    kind: str
    container_id: str | None = None
    #: time.monotonic() when the Docker event reached this machine (upsert/remove)
    received: float | None = None


Listener = Callable[[Change], None]
#: told (device, container id, the container or None when it went) on every container
#: event of every device: the flight recorder keeps them beside the telemetry
CONTAINER_EVENT_HOOKS: list[Callable[[str, str, ContainerInfo | None], None]] = []


#: told (the service, container id) after sparktui itself started or restarted a container:
#: the load guard watches its load until it answers
CONTAINER_STARTED_HOOKS: list[Callable[[ContainerService, str], None]] = []


def _tell_hooks(device: str, container_id: str, row: ContainerInfo | None) -> None:
    for hook in list(CONTAINER_EVENT_HOOKS):
        try:
            hook(device, container_id, row)
        except Exception:
            log.exception("container event hook failed on %s", device)


def describe_error(exc: BaseException) -> str:
    """The daemon's own words for an APIError; the exception text otherwise."""
    explanation = getattr(exc, "explanation", None)
    # the daemon's words go to toasts and the log: cleaned where they are made
    if explanation:
        return clean_reason(str(explanation))
    return clean_reason(str(exc) or type(exc).__name__)


class DockerEndpoint:
    """How this machine reaches one device's Docker socket over one transport."""

    def __init__(self, base_url: str, forward: Forward | None = None,
                 directory: str | None = None) -> None:
        self.base_url = base_url
        self._forward = forward
        self._directory = directory

    @classmethod
    async def open(cls, transport: Transport, remote_path: str) -> DockerEndpoint:
        from sparktui.transport.local import LocalTransport

        if isinstance(transport, LocalTransport):
            return cls("unix://" + remote_path)
        # mkdtemp makes the directory 0700: only this user can reach the socket in it
        directory = tempfile.mkdtemp(prefix="sparktui-docker-")
        local_path = os.path.join(directory, "docker.sock")
        try:
            forward = await transport.forward_unix_socket(local_path, remote_path)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls("unix://" + local_path, forward, directory)

    @property
    def local_path(self) -> str:
        return self.base_url.removeprefix("unix://")

    async def close(self) -> None:
        forward, self._forward = self._forward, None
        try:
            if forward is not None:
                with contextlib.suppress(ConnectionLost, OSError):
                    await forward.close()
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None


def _client(base_url: str, timeout: float | None) -> Any:
    import docker

    return docker.DockerClient(base_url=base_url, version="auto", timeout=timeout)


class ContainerService:
    """The containers of one device, kept current from the Docker events stream."""

    def __init__(self, link: DeviceLink, *, socket_path: str = DEFAULT_SOCKET,
                 read_only: bool = False, audit: AuditLog | None = None,
                 retry_interval: float = 2.0, stats_interval: float = 2.0) -> None:
        self.link = link
        self.device = link.name
        self.socket_path = socket_path or DEFAULT_SOCKET
        self.read_only = read_only
        self.audit = audit
        self.retry_interval = retry_interval
        self.stats_interval = stats_interval
        self.containers: dict[str, ContainerInfo] = {}
        self.stats: dict[str, ContainerStats] = {}
        self.state = ServiceState.STARTING
        self.problem: DockerProblem | None = None
        self.engine_version = ""
        self.api_version = ""
        self.transport: Transport | None = None
        self.endpoint: DockerEndpoint | None = None
        self.client: Any = None  # docker.DockerClient; call it from threads only
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._retry_now = asyncio.Event()
        self._watched: frozenset[str] = frozenset()
        self._session_stop: threading.Event | None = None
        self._stream: Any = None
        # the last diagnosis, by (connection, error text): a retry that fails the same
        # way reuses it instead of asking the device again (an exec, a .bashrc read)
        self._diagnosed: tuple[Transport, str, DockerProblem] | None = None

    # -- listeners ---------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _publish(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one broken listener must not stop the others
                log.exception("container listener failed on %s", self.device)

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """From a thread: run `callback(*args)` on the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: nobody listens
            loop.call_soon_threadsafe(callback, *args)

    def _set_state(self, state: ServiceState, problem: DockerProblem | None = None) -> None:
        self.state = state
        self.problem = problem
        self._publish(Change("state"))

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name=f"docker:{self.device}")

    def retry(self) -> None:
        """Try the daemon again now instead of at the next retry tick."""
        self._retry_now.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:  # cancelled before its own cleanup ran: the socket dir goes
            await endpoint.close()
        self._set_state(ServiceState.CLOSED)

    async def _run(self) -> None:
        if self.link.transport is None:
            self._set_state(ServiceState.OFFLINE, not_connected(self.device,
                                                                self.link.status.describe()))
        async for transport in self.link.sessions():
            while transport.is_alive():
                try:
                    await self._serve(transport)  # returns once the connection is gone
                except ConnectionLost:
                    break
                except Exception as exc:  # say what broke, then try again on this connection
                    log.exception("docker service on %s failed", self.device)
                    self._set_state(ServiceState.PROBLEM, DockerProblem(
                        ProblemKind.OTHER, f"Docker on {self.device}: {describe_error(exc)}"))
                    await self._wait_retry(transport)
            self.transport = None
            self._set_state(ServiceState.OFFLINE, not_connected(
                self.device, "waiting for the connection to come back"))

    async def _serve(self, transport: Transport) -> None:
        """Use one connection until it dies: forward, connect, follow events, retry."""
        self.transport = transport
        endpoint = await DockerEndpoint.open(transport, self.socket_path)
        self.endpoint = endpoint
        quick = 0  # event streams in a row that ended soon after they began
        try:
            while transport.is_alive():
                try:
                    await self._connect(transport, endpoint)
                except DockerUnavailable as exc:
                    self._set_state(ServiceState.PROBLEM, exc.problem)
                    await self._wait_retry(transport)
                    continue
                followed = time.monotonic()
                try:
                    await self._follow(endpoint)
                except Exception as exc:  # the daemon went between connect and events
                    log.info("docker events on %s failed: %s", self.device, describe_error(exc))
                finally:
                    client, self.client = self.client, None
                    if client is not None:
                        await asyncio.to_thread(client.close)
                # the events stream ended: the connection went, or the daemon did. One
                # that keeps ending at once backs off, up to the retry interval
                quick = quick + 1 if time.monotonic() - followed < 5 else 0
                if transport.is_alive():
                    await asyncio.sleep(min(0.2 * 2 ** quick, max(self.retry_interval, 0.2)))
        finally:
            self.endpoint = None
            await endpoint.close()

    async def _wait_retry(self, transport: Transport) -> None:
        self._retry_now.clear()
        waits = [asyncio.ensure_future(self._retry_now.wait()),
                 asyncio.ensure_future(transport.wait_closed())]
        try:
            await asyncio.wait(waits, timeout=self.retry_interval,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _connect(self, transport: Transport, endpoint: DockerEndpoint) -> None:
        import docker

        try:
            client = await asyncio.to_thread(_client, endpoint.base_url, REQUEST_TIMEOUT)
            version = await asyncio.to_thread(client.version)
        except docker.errors.InvalidVersion as exc:  # docker-py's own floor (API 1.24)
            raise DockerUnavailable(api_too_old_problem(self.device, "below 1.24", "")) from exc
        except Exception as exc:
            raise DockerUnavailable(await self.diagnose(transport, describe_error(exc))) \
                from exc
        self.engine_version = strip_control(str(version.get("Version") or ""), max_line=64)
        self.api_version = strip_control(str(version.get("ApiVersion")
                                             or client.api.api_version), max_line=16)
        if api_too_old(self.api_version):
            await asyncio.to_thread(client.close)
            raise DockerUnavailable(
                api_too_old_problem(self.device, self.api_version, self.engine_version))
        self.client = client

    async def diagnose(self, transport: Transport, error: str) -> DockerProblem:
        """Ask the device why its socket did not answer (see core.docker_problems).

        Asked once per connection and error: retries every few seconds that fail
        the same way (no docker group, no daemon) start no process on the device.
        A user's retry (`retry()`) asks again.
        """
        last = self._diagnosed
        if (last is not None and last[0] is transport and last[1] == error
                and not self._retry_now.is_set()):
            return last[2]
        try:
            result = await transport.run(diagnose_command(self.socket_path), timeout=15)
        except ConnectionLost as exc:
            return not_connected(self.device, str(exc))
        problem = classify(self.device, self.socket_path, parse_probe(result.stdout), error)
        self._diagnosed = (transport, error, problem)
        return problem

    # -- the events stream ---------------------------------------------------------------
    async def _follow(self, endpoint: DockerEndpoint) -> None:
        """List, then apply events until the stream ends (in threads; see _events_thread)."""
        assert self._loop is not None
        streams = await asyncio.to_thread(_client, endpoint.base_url, None)
        stop = threading.Event()
        self._session_stop = stop
        ended: asyncio.Future[BaseException | None] = self._loop.create_future()
        try:
            stream = await asyncio.to_thread(
                streams.events, decode=True,
                filters={"type": "container", "event": list(WATCHED_EVENTS)})
        except Exception:
            await asyncio.to_thread(streams.close)
            raise
        self._stream = stream
        threading.Thread(target=self._events_thread, args=(stream, ended), daemon=True,
                         name=f"docker-events:{self.device}").start()
        threading.Thread(target=self._stats_thread, args=(stop,), daemon=True,
                         name=f"docker-stats:{self.device}").start()
        try:
            error = await ended
        finally:
            stop.set()
            self._stream = None
            await asyncio.to_thread(_close_quietly, stream)
            await asyncio.to_thread(streams.close)
        if error is not None:
            log.info("docker events on %s ended: %s", self.device, describe_error(error))

    def _events_thread(self, stream: Any, ended: asyncio.Future[BaseException | None]) -> None:
        import docker

        client = self.client
        error: BaseException | None = None
        try:
            # subscribed first, listed second: nothing that happens in between is lost
            self._post(self._apply_reset, list_all(client, self.device))
            for event in stream:
                received = time.monotonic()
                container_id = event.get("id") or (event.get("Actor") or {}).get("ID")
                if not container_id or event.get("Type", "container") != "container":
                    continue
                if event.get("Action") == "destroy":
                    self._post(self._apply_remove, container_id, received)
                    continue
                try:
                    row = inspect_one(client, container_id, self.device)
                except docker.errors.NotFound:
                    self._post(self._apply_remove, container_id, received)
                    continue
                if row is not None:  # a malformed answer costs that event only
                    self._post(self._apply_upsert, row, received)
        except Exception as exc:  # reported through `ended`; the service decides what next
            error = exc
        finally:
            self._post(_settle, ended, error)

    def _apply_reset(self, rows: list[ContainerInfo]) -> None:
        self.containers = {row.id: row for row in rows}
        self.stats = {k: v for k, v in self.stats.items() if k in self.containers}
        self._set_state(ServiceState.READY)
        self._publish(Change("reset"))

    def _apply_upsert(self, row: ContainerInfo, received: float) -> None:
        self.containers[row.id] = row
        if not row.running:
            self.stats.pop(row.id, None)
        self._publish(Change("upsert", row.id, received))
        _tell_hooks(self.device, row.id, row)

    def _apply_remove(self, container_id: str, received: float) -> None:
        gone = self.containers.pop(container_id, None)
        self.stats.pop(container_id, None)
        self._publish(Change("remove", container_id, received))
        _tell_hooks(self.device, container_id, None if gone is None else
                    dataclasses.replace(gone, state="removed"))

    # -- stats: only for the containers someone is looking at ------------------------------
    def set_watched(self, container_ids: set[str] | frozenset[str]) -> None:
        """The containers whose CPU and memory are wanted (the rows on screen)."""
        self._watched = frozenset(container_ids)

    def _stats_thread(self, stop: threading.Event) -> None:
        one_shot = version_tuple(self.api_version) >= (1, 41)
        while not stop.is_set():
            client = self.client
            wanted = [cid for cid in self._watched
                      if (row := self.containers.get(cid)) is not None and row.state == "running"]
            updates: dict[str, ContainerStats] = {}
            for container_id in wanted:
                if stop.is_set() or client is None:
                    break
                try:
                    if one_shot:
                        sample = client.api.stats(container_id, stream=False, one_shot=True)
                    else:  # older daemons: a two-cycle sample (about 2 s each)
                        sample = client.api.stats(container_id, stream=False)
                except Exception as exc:  # gone, or the daemon went: the events stream says which
                    log.debug("stats of %s on %s: %s", container_id, self.device, exc)
                    continue
                updates[container_id] = stats_from_sample(sample, self.stats.get(container_id))
            if updates:
                self._post(self._apply_stats, updates)
            stop.wait(self.stats_interval)

    def _apply_stats(self, updates: dict[str, ContainerStats]) -> None:
        for container_id, stats in updates.items():
            if container_id in self.containers:
                self.stats[container_id] = stats
        self._publish(Change("stats"))

    # -- actions ----------------------------------------------------------------------------
    def require_client(self) -> Any:
        client = self.client
        if client is None:
            problem = self.problem or not_connected(self.device)
            raise DockerUnavailable(problem)
        return client

    def check_writable(self, action: str, target: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: not running {action} on {target} "
                                f"({self.device})")

    def record(self, action: str, target: str, result: str, **details: Any) -> None:
        if self.audit is not None:
            self.audit.record(self.device, action, target, result, **details)

    def name_of(self, container_id: str) -> str:
        row = self.containers.get(container_id)
        return row.name if row is not None else container_id[:12]

    async def run_action(self, action: str, container_id: str) -> ContainerInfo | None:
        """start, stop, restart, pause, unpause or kill one container.

        Returns the container as docker reports it afterwards (None when it cannot
        be read back), so a caller says what is true, not what was asked. A stop
        whose answer came too late (a StopTimeout past the HTTP timeout) but that
        did stop the container counts as done.
        """
        if action not in ("start", "stop", "restart", "pause", "unpause", "kill"):
            raise ValueError(f"unknown container action {action!r}")
        target = self.name_of(container_id)
        self.check_writable(action, target)
        client = self.require_client()
        try:
            await asyncio.to_thread(getattr(client.api, action), container_id)
        except Exception as exc:
            after = await self._read_back(client, container_id) \
                if action in ("stop", "kill") else None
            if after is None or after.running:
                reason = describe_error(exc)
                self.record(f"container.{action}", target, f"failed: {reason}",
                            id=container_id)
                raise ContainerActionError(f"{action} {target} failed: {reason}") from exc
            log.info("%s %s on %s: docker's answer failed (%s), but it is %s", action, target,
                     self.device, describe_error(exc), after.state)
        else:
            after = await self._read_back(client, container_id)
        self.record(f"container.{action}", target, "ok", id=container_id)
        if action in ("start", "restart"):
            for hook in list(CONTAINER_STARTED_HOOKS):
                try:
                    hook(self, container_id)
                except Exception:  # the guard's trouble must not fail the start
                    log.exception("container-started hook failed on %s", self.device)
        return after

    async def _read_back(self, client: Any, container_id: str) -> ContainerInfo | None:
        try:
            attrs = await asyncio.to_thread(client.api.inspect_container, container_id)
        except Exception as exc:  # gone (auto-removed), or the daemon went away
            log.info("reading back %s on %s: %s", container_id[:12], self.device,
                     describe_error(exc))
            return None
        return ContainerInfo.from_inspect(attrs) if isinstance(attrs, dict) else None

    async def remove(self, container_id: str, *, volumes: bool = False,
                     force: bool = True) -> None:
        target = self.name_of(container_id)
        self.check_writable("remove", target)
        client = self.require_client()
        try:
            await asyncio.to_thread(client.api.remove_container, container_id, v=volumes,
                                    force=force)
        except Exception as exc:
            reason = describe_error(exc)
            self.record("container.remove", target, f"failed: {reason}", id=container_id,
                        volumes=volumes)
            raise ContainerActionError(f"remove {target} failed: {reason}") from exc
        self.record("container.remove", target, "ok", id=container_id, volumes=volumes)

    async def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `function(client, *args, **kwargs)` in a thread (reads; writes use the above)."""
        client = self.require_client()
        return await asyncio.to_thread(function, client, *args, **kwargs)


def _close_quietly(stream: Any) -> None:
    try:
        stream.close()
    except Exception as exc:  # its socket may already be gone with the connection
        log.debug("closing a docker stream: %s", exc)


def _settle(future: asyncio.Future[BaseException | None], error: BaseException | None) -> None:
    if not future.done():
        future.set_result(error)


def shell_argv(service: ContainerService, container_id: str, shell: str = "sh",
               options: SSHOptions | None = None) -> list[str]:
    """The interactive command that opens `shell` in a container, as the user would type it.

    SSH devices: `ssh -t [options] host docker exec -it ID sh` (OpenSSH reads the
    same ~/.ssh/config as sparktui); local: `docker exec -it ID sh`. `options` are
    the link's: a device with a known_hosts of its own (the demo's) is checked
    against that file only, so its throwaway key never lands in ~/.ssh/known_hosts.
    """
    from sparktui.transport.local import LocalTransport
    from sparktui.transport.ssh_types import quote

    spec = service.link.spec
    docker = ["docker"]
    if service.socket_path != DEFAULT_SOCKET:
        docker += ["-H", "unix://" + service.socket_path]
    inner = [*docker, "exec", "-it", container_id, shell]
    if spec.is_local or isinstance(service.transport, LocalTransport):
        return inner
    argv = ["ssh", "-t"]
    if options is not None and not options.use_ssh_config:
        argv += ["-F", "/dev/null", "-o", "IdentitiesOnly=yes"]
    if options is not None and options.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={options.known_hosts}",
                 "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes"]
    if spec.port:
        argv += ["-p", str(spec.port)]
    if spec.user:
        argv += ["-l", spec.user]
    if spec.identity_file:
        argv += ["-i", os.path.expanduser(spec.identity_file)]
    if spec.proxy_jump:
        argv += ["-J", spec.proxy_jump]
    return [*argv, spec.host, "--", quote(*inner)]
