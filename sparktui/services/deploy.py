"""One-key deployment of an inference server on a device.

pull (live progress) -> create -> start -> poll the server's health endpoint
-> ready, or the reason it is not (with the container's last log lines).
A failed deploy removes what it made unless the user asked to keep it.

The health endpoint is reached through the device's own connection
(`Transport.open_connection` to 127.0.0.1 on the device): nothing is opened
on the Spark's network. Published ports bind to the device's loopback by
default for the same reason; the tunnels feature makes them reachable here.

When a server is ready, every hook in `DEPLOY_READY_HOOKS` and the deployer's
own `on_ready` callbacks get a DeployReady: the tunnels and chat features
use it to offer a tunnel and a chat endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sparktui.core.aio import within
from sparktui.core.docker_presets import (
    DeploySpec,
    PullProgress,
    create_kwargs,
    plan_volumes,
    split_image,
    validate,
)
from sparktui.core.docker_problems import gpu_runtime_message, is_gpu_runtime_error
from sparktui.services.container_logs import read_logs
from sparktui.services.containers import ContainerService, describe_error
from sparktui.transport.ssh_types import quote

log = logging.getLogger(__name__)

LOG_TAIL_ON_FAILURE = 20


@dataclass(frozen=True)
class DeployReady:
    """A deployed server answers: where, as seen from the device."""

    device: str
    port: int  # on the device's loopback
    base_url: str  # e.g. http://127.0.0.1:8000/v1 ("" path for a web UI)
    container: str
    preset: str


ReadyHook = Callable[[DeployReady], None]
#: called for every deploy that becomes ready, whoever started it (on the event loop)
DEPLOY_READY_HOOKS: list[ReadyHook] = []


@dataclass(frozen=True)
class DeployLoading:
    """A deployed container is loading (started, endpoint not answering yet), or no longer."""

    device: str
    container_id: str
    name: str
    loading: bool  # False: it answered, failed or was removed
    answered: bool = False
    #: stops the container (a kill: a load that eats the box's memory gets no grace period)
    stop: Callable[[], Awaitable[object]] | None = None
    #: told why, when the guard stopped it (the deploy then fails with that reason)
    stopped_because: Callable[[str], None] | None = None


LoadingHook = Callable[[DeployLoading], None]
#: called when a deployed container starts loading and when that ends (the load guard)
DEPLOY_LOADING_HOOKS: list[LoadingHook] = []


def _stopper(service: ContainerService, container_id: str) -> Callable[[], Awaitable[object]]:
    async def stop() -> None:
        await service.run_action("kill", container_id)
    return stop


def _tell_loading(event: DeployLoading) -> None:
    for hook in list(DEPLOY_LOADING_HOOKS):
        try:
            hook(event)
        except Exception:  # the guard's trouble must not fail the deploy
            log.exception("deploy-loading hook failed")


@dataclass(frozen=True)
class DeployUpdate:
    phase: str  # "prepare", "pull", "create", "start", "health", "ready", "failed", "cleanup"
    message: str
    progress: PullProgress | None = None


@dataclass
class DeployResult:
    ok: bool
    message: str
    container_id: str | None = None
    ready: DeployReady | None = None
    log_tail: list[str] = field(default_factory=list)
    kept: bool = False  # a failed container left in place, as asked


class DeployFailed(Exception):
    def __init__(self, message: str, container_id: str | None = None) -> None:
        super().__init__(message)
        self.container_id = container_id


async def http_probe(service: ContainerService, port: int, path: str,
                     timeout: float = 5.0) -> tuple[int | None, str]:
    """GET http://127.0.0.1:port/path on the device: (status or None, reason or body start)."""
    transport = service.transport
    if transport is None or not transport.is_alive():
        return None, "the device is not connected"
    try:
        reader, writer = await within(
            transport.open_connection("127.0.0.1", port), timeout)
    except Exception as exc:  # refused, not yet listening: the reason is the answer
        return None, describe_error(exc)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while len(data) < 65536:
            chunk = await within(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk if isinstance(chunk, bytes) else chunk.encode()
    except Exception as exc:
        return None, describe_error(exc)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/\d(?:\.\d)? (\d{3})", head)
    if not match:
        return None, "no HTTP answer" if not data else "not an HTTP answer"
    return int(match.group(1)), body[:200].decode("utf-8", "replace")


class Deployer:
    """Runs deploys on one device's ContainerService."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service
        self.on_ready: list[ReadyHook] = []

    async def deploy(self, spec: DeploySpec, *,
                     on_update: Callable[[DeployUpdate], None] = lambda update: None,
                     secret_values: dict[str, str] | None = None,
                     auth: dict[str, str] | None = None,
                     ready_timeout: float = 1800.0, poll_interval: float = 1.0) -> DeployResult:
        """Deploy and wait for the server; never raises for a failed deploy (see the result).

        `secret_values` go into the container's environment and nowhere else;
        `auth` is the registry login for the pull (NIM: $oauthtoken + the NGC key).
        """
        service = self.service
        validate(spec)
        service.check_writable("deploy", spec.name)
        client = service.require_client()
        secret_names = sorted((secret_values or {}).keys())
        container_id: str | None = None
        guard_reasons: list[str] = []  # the load guard stopped it, and why
        try:
            on_update(DeployUpdate("prepare", f"preparing {spec.name} on {service.device}"))
            home = await self._home()
            dirs = plan_volumes(spec.volumes, home).host_dirs
            if dirs:  # made by the user, not by root through the daemon
                result = await service.link.run(quote("mkdir", "-p", *dirs))
                if not result.ok:
                    raise DeployFailed(f"could not create {', '.join(dirs)} on "
                                       f"{service.device}: {result.stderr.strip()}")
            await self._refuse_name_clash(client, spec.name)
            image = await self._ensure_image(client, spec, auth, on_update)
            on_update(DeployUpdate("create", f"creating {spec.name} from {image}"))
            kwargs = create_kwargs(spec, home=home, image=image, secret_values=secret_values)
            try:
                container = await asyncio.to_thread(client.containers.create, **kwargs)
            except Exception as exc:
                raise DeployFailed(self._reason("create", exc)) from exc
            container_id = container.id
            on_update(DeployUpdate("start", f"starting {spec.name}"))
            try:
                await asyncio.to_thread(client.api.start, container_id)
            except Exception as exc:
                raise DeployFailed(self._reason("start", exc), container_id) from exc
            _tell_loading(DeployLoading(service.device, container_id, spec.name, True,
                                        stop=_stopper(service, container_id),
                                        stopped_because=guard_reasons.append))
            try:
                ready = await self._wait_ready(client, spec, container_id, on_update,
                                               ready_timeout, poll_interval)
            except BaseException:
                _tell_loading(DeployLoading(service.device, container_id, spec.name, False))
                raise
            _tell_loading(DeployLoading(service.device, container_id, spec.name, False, True))
        except (Exception, asyncio.CancelledError) as exc:
            # whatever broke (the daemon, the connection, a cancel), nothing half-made stays
            cancelled = isinstance(exc, asyncio.CancelledError)
            message = ("deploy cancelled" if cancelled else str(exc)
                       if isinstance(exc, DeployFailed) else describe_error(exc))
            if guard_reasons and not cancelled:
                message = f"the load guard stopped {spec.name}: {guard_reasons[-1]}"
            result = await self._fail(spec, container_id or getattr(exc, "container_id", None),
                                      message, on_update)
            service.record("deploy", spec.name, f"failed: {message}", preset=spec.preset,
                           image=spec.image, secrets=secret_names, kept=result.kept)
            if cancelled:
                raise
            return result
        service.record("deploy", spec.name, "ok", preset=spec.preset, image=image,
                       port=spec.probe_port, secrets=secret_names)
        for hook in [*DEPLOY_READY_HOOKS, *self.on_ready]:
            try:
                hook(ready)
            except Exception:  # a broken hook must not turn a good deploy into a failure
                log.exception("deploy-ready hook failed")
        on_update(DeployUpdate("ready", f"{spec.name} is ready at {ready.base_url} "
                                        f"on {service.device}"))
        return DeployResult(True, f"{spec.name} is ready", container_id, ready)

    # -- steps ------------------------------------------------------------------------
    async def _home(self) -> str:
        result = await self.service.link.run('printf "%s" "$HOME"')
        home = result.stdout.strip()
        if not result.ok or not home.startswith("/"):
            raise DeployFailed(f"could not read $HOME on {self.service.device}: "
                               f"{result.stderr.strip() or 'empty'}")
        return home

    async def _refuse_name_clash(self, client: Any, name: str) -> None:
        found = await asyncio.to_thread(client.api.containers, all=True,
                                        filters={"name": f"^/{re.escape(name)}$"})
        if found:
            raise DeployFailed(f"a container named {name} already exists on "
                               f"{self.service.device}: remove it or choose another name")

    async def _ensure_image(self, client: Any, spec: DeploySpec, auth: dict[str, str] | None,
                            on_update: Callable[[DeployUpdate], None]) -> str:
        import docker

        try:
            attrs = (await asyncio.to_thread(client.images.get, spec.image)).attrs
            on_update(DeployUpdate("pull", f"{spec.image} is already on the device"))
        except docker.errors.ImageNotFound:
            attrs = await self._pull(client, spec.image, auth, on_update)
        if not spec.pin_digest or "@" in spec.image:
            return spec.image
        digests = attrs.get("RepoDigests") or []
        if not digests:
            on_update(DeployUpdate("pull", f"{spec.image} has no registry digest (built or "
                                           "imported locally): using its image id"))
            return attrs["Id"]
        return digests[0]

    async def _pull(self, client: Any, image: str, auth: dict[str, str] | None,
                    on_update: Callable[[DeployUpdate], None]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        progress = PullProgress()
        done: asyncio.Future[str | None] = loop.create_future()
        repo, tag = split_image(image)
        last = [0.0]

        def report() -> None:
            on_update(DeployUpdate("pull", f"pulling {image}: {progress.describe()}", progress))

        def pull() -> None:  # its own thread: a pull of tens of GB must not hold an executor slot
            error: str | None = None
            try:
                for event in client.api.pull(repo, tag=tag, stream=True, decode=True,
                                             auth_config=auth):
                    loop.call_soon_threadsafe(progress.update, event)
                    now = time.monotonic()
                    if now - last[0] > 0.2:  # at most five redraws a second
                        last[0] = now
                        loop.call_soon_threadsafe(report)
            except Exception as exc:
                error = describe_error(exc)
            loop.call_soon_threadsafe(_settle, done, error)

        on_update(DeployUpdate("pull", f"pulling {image}", progress))
        threading.Thread(target=pull, daemon=True, name=f"docker-pull:{image}").start()
        error = await done
        report()
        if error or progress.error:
            raise DeployFailed(f"pulling {image} failed: {error or progress.error}")
        return (await asyncio.to_thread(client.images.get, image)).attrs

    def _reason(self, step: str, exc: BaseException) -> str:
        text = describe_error(exc)
        if is_gpu_runtime_error(text):
            return gpu_runtime_message(self.service.device, text)
        return f"{step} failed: {text}"

    async def _wait_ready(self, client: Any, spec: DeploySpec, container_id: str,
                          on_update: Callable[[DeployUpdate], None], timeout: float,
                          interval: float) -> DeployReady:
        port = spec.probe_port
        url = f"http://127.0.0.1:{port}{spec.health_path}"
        started = time.monotonic()
        while True:
            state = (await asyncio.to_thread(client.api.inspect_container, container_id))["State"]
            if not state.get("Running"):
                code = state.get("ExitCode")
                oom = ", out of memory" if state.get("OOMKilled") else ""
                raise DeployFailed(f"{spec.name} exited (status {code}{oom}) before it "
                                   f"answered on {url}", container_id)
            status, detail = await http_probe(self.service, port, spec.health_path)
            elapsed = time.monotonic() - started
            if status is not None and 200 <= status < 300:
                return DeployReady(self.service.device, port, spec.base_url, spec.name,
                                   spec.preset)
            why = f"HTTP {status}" if status is not None else detail
            if elapsed > timeout:
                raise DeployFailed(f"{spec.name} did not answer on {url} within "
                                   f"{timeout:.0f} s (last: {why})", container_id)
            on_update(DeployUpdate("health", f"waiting for {url} ({elapsed:.0f} s): {why}"))
            await asyncio.sleep(interval)

    async def _fail(self, spec: DeploySpec, container_id: str | None, message: str,
                    on_update: Callable[[DeployUpdate], None]) -> DeployResult:
        tail: list[str] = []
        if container_id is not None:
            try:
                lines = await read_logs(self.service, container_id, tail=LOG_TAIL_ON_FAILURE)
                tail = [line.text for line in lines]
            except Exception as exc:  # the logs are a bonus; the failure is the news
                tail = [f"(logs unavailable: {describe_error(exc)})"]
        kept = bool(container_id) and spec.keep_on_failure
        if container_id is not None and not kept:
            on_update(DeployUpdate("cleanup", f"removing {spec.name}"))
            try:
                client = self.service.require_client()
                await asyncio.to_thread(client.api.remove_container, container_id, force=True)
            except Exception as exc:
                message += f" (and removing it failed: {describe_error(exc)})"
        on_update(DeployUpdate("failed", message))
        return DeployResult(False, message, container_id, None, tail, kept)


def _settle(future: asyncio.Future[str | None], value: str | None) -> None:
    if not future.done():
        future.set_result(value)
