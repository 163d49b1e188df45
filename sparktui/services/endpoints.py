"""Model endpoints: finding them on devices, remembering manual ones, reaching them.

An endpoint on a device is reached through the device's SSH connection: a
private forward from an ephemeral loopback port here (127.0.0.1:0) to
localhost:PORT on the device, so nothing is ever opened on the Spark. One
forward per endpoint is kept while its connection lives and re-made on the
next connection after a drop. Direct endpoints (a URL this machine can reach)
are called as they are.

Each endpoint has its own HTTP client, and only that client carries the
endpoint's API key: a key never travels to another endpoint, and redirects
are not followed (a redirect to another host would carry the key along).

Manual endpoints live in the config file as `[[endpoints]]` tables (name, url,
device); their keys live in the keyring (sparktui.services.secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sparktui.core import aio
from sparktui.core.openai_chat import BadURL, BaseURL, body_error_text, normalise_base_url
from sparktui.core.openai_chat import parse_models as parse_model_list
from sparktui.core.sanitize import strip_control
from sparktui.services.link import DeviceLink
from sparktui.services.secrets import SecretStore
from sparktui.transport.base import CommandNotFound, Forward, TransportError

log = logging.getLogger(__name__)

#: Ollama, vLLM/NIM, SGLang, Docker Model Runner, llama.cpp, TensorRT-LLM
DEFAULT_PORTS: tuple[int, ...] = (11434, 8000, 30000, 12434, 8080, 8355)
#: never probed: Jupyter's port; a GET there is noise in someone's notebook log
EXCLUDED_PORTS = frozenset({8888})
OLLAMA_PORT = 11434
PROBE_TIMEOUT_S = 3.0
DOCKER_PS = "docker ps --format '{{json .}}'"

_PUBLISHED = re.compile(r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\]|::)?:(\d+)->(\d+)/tcp")


class EndpointError(Exception):
    """An endpoint could not be reached for a reason worth showing as it is."""


class BodyTooLarge(EndpointError):
    """A response body passed its limit; the rest was not read."""


#: a model list is a few KB (a thousand models ~100 KB); an endless one stops here
MAX_MODELS_BODY = 1024 * 1024
MAX_ERROR_BODY = 64 * 1024


async def read_bounded(response: httpx.Response, limit: int, what: str) -> bytes:
    """At most `limit` bytes of a streamed body; BodyTooLarge past it (the rest unread).

    Clients ask for `Accept-Encoding: identity`, so a small compressed body cannot
    unpack to gigabytes in one chunk before the count sees it.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"{what} passed {_size(limit)}; not read further")
        chunks.append(chunk)
    return b"".join(chunks)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"


@dataclass(frozen=True)
class EndpointSpec:
    """Where an endpoint is: a base URL, seen from `device` (None: from this machine)."""

    name: str
    url: str  # normalised API root, e.g. http://localhost:8000/v1
    device: str | None = None
    source: str = "manual"  # "probe", "docker" or "manual"
    note: str | None = None  # what URL normalisation changed, or which container

    @property
    def id(self) -> str:
        return f"{self.device}:{self.url}" if self.device else self.url

    @property
    def secret_name(self) -> str:
        return f"endpoint:{self.id}"

    @property
    def key_env_var(self) -> str:
        """The environment variable that gives this endpoint's key when no keyring can."""
        return key_env_var(self.id)

    @property
    def base(self) -> BaseURL:
        return BaseURL(self.url, self.note)

    def describe(self) -> str:
        where = f"{self.url} on {self.device}" if self.device else self.url
        return f"{self.name} ({where})" if self.name not in (self.url, where) else where


@dataclass(frozen=True)
class Endpoint:
    """An endpoint that answered (or, for a manual one, why it did not)."""

    spec: EndpointSpec
    models: tuple[str, ...] = ()
    kind: str = "openai"  # or "ollama": also answers the native /api/tags
    error: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class PsContainer:
    """A running container as `docker ps` lists it: what ties a GPU process to a port."""

    id: str  # the short id docker ps prints (the first 12 hex of the full id)
    name: str  # raw device text: sanitise to show
    image: str
    ports: tuple[int, ...]  # published host ports
    host_network: bool = False

    def matches(self, container_id: str | None) -> bool:
        return bool(container_id) and container_id.startswith(self.id)  # type: ignore[union-attr]


@dataclass
class DeviceDiscovery:
    device: str
    endpoints: list[Endpoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "docker: not installed"
    containers: list[PsContainer] = field(default_factory=list)


def key_env_var(endpoint_id: str) -> str:
    """SPARKTUI_API_KEY_<ID>: the id in capitals, every run of other characters one `_`."""
    slug = re.sub(r"[^A-Z0-9]+", "_", endpoint_id.upper()).strip("_")
    return f"SPARKTUI_API_KEY_{slug}"


def device_spec(device: str, port: int, *, source: str = "probe",
                note: str | None = None, host: str = "localhost") -> EndpointSpec:
    return EndpointSpec(name=f"{device}:{port}", url=f"http://{host}:{port}/v1", device=device,
                        source=source, note=note)


def manual_spec(url: str, *, device: str | None = None, name: str | None = None) -> EndpointSpec:
    """A user-typed URL, normalised (raises BadURL); the note says what changed."""
    base = normalise_base_url(url)
    return EndpointSpec(name=name or base.url, url=base.url, device=device, source="manual",
                        note=base.note)


# -- docker ----------------------------------------------------------------------------------
def parse_docker_ps(output: str) -> dict[int, str]:
    """`docker ps --format '{{json .}}'` -> {published host port: "name (image)"}."""
    found: dict[int, str] = {}
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        label = strip_control(f"{row.get('Names', '?')} ({row.get('Image', '?')})", max_line=80)
        for match in _PUBLISHED.finditer(str(row.get("Ports", ""))):
            found.setdefault(int(match.group(1)), label)
    return found


def parse_docker_ps_rows(output: str) -> list[PsContainer]:
    """`docker ps --format '{{json .}}'` -> one PsContainer per running container."""
    rows: list[PsContainer] = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or not isinstance(row.get("ID"), str):
            continue
        ports = tuple(dict.fromkeys(int(m.group(1)) for m in
                                    _PUBLISHED.finditer(str(row.get("Ports", "")))))
        rows.append(PsContainer(row["ID"], str(row.get("Names", "?")),
                                str(row.get("Image", "?")), ports,
                                str(row.get("Networks", "")) == "host"))
    return rows


async def docker_ports(link: DeviceLink) -> tuple[dict[int, str], str | None]:
    """Published ports of running containers, and a note when docker could not tell."""
    output, note = await docker_ps(link)
    return parse_docker_ps(output), note


async def docker_ps(link: DeviceLink) -> tuple[str, str | None]:
    """`docker ps` output (one exec), and a note when docker could not tell."""
    try:
        result = await link.run(DOCKER_PS, timeout=10)
    except CommandNotFound:
        return "", "docker is not installed"
    except TransportError as exc:
        return "", f"docker ps failed: {exc}"
    if result.exit_status == 127:
        return "", "docker is not installed"
    if not result.ok:
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.exit_status}"])
        return "", "docker ps failed: " + strip_control(reason[-1], max_line=160)
    return result.stdout, None


# -- manual endpoints in the config ----------------------------------------------------------
def load_manual_endpoints(path: Path) -> tuple[list[EndpointSpec], list[str]]:
    """The `[[endpoints]]` of the config file, and problems with them (blocking: use a thread)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [], [f"{path}: endpoints not read: {exc}"]
    specs: list[EndpointSpec] = []
    problems: list[str] = []
    entries = raw.get("endpoints", [])
    if not isinstance(entries, list):
        return [], [f"{path}: [[endpoints]] must be an array of tables"]
    for number, entry in enumerate(entries, start=1):
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str):
            problems.append(f"{path}: endpoint #{number} needs a string 'url'; skipped")
            continue
        device = entry.get("device")
        name = entry.get("name")
        try:
            specs.append(manual_spec(url, device=device if isinstance(device, str) else None,
                                     name=name if isinstance(name, str) else None))
        except BadURL as exc:
            problems.append(f"{path}: endpoint #{number}: {exc}; skipped")
    return specs, problems


def save_manual_endpoint(path: Path, spec: EndpointSpec) -> None:
    """Add (or replace, by id) a manual endpoint; never writes a key (blocking: use a thread)."""
    import tomlkit

    from sparktui.services.config import update_config

    def mutate(document) -> None:
        table = document.get("endpoints")
        if table is None:
            table = tomlkit.aot()
            document["endpoints"] = table
        for index in reversed(range(len(table))):
            entry = table[index]
            if _entry_id(entry) == spec.id:
                del table[index]
        item = tomlkit.table()
        item["name"] = spec.name
        item["url"] = spec.url
        if spec.device:
            item["device"] = spec.device
        table.append(item)

    update_config(path, mutate)


def remove_manual_endpoint(path: Path, endpoint_id: str) -> None:
    from sparktui.services.config import update_config

    def mutate(document) -> None:
        table = document.get("endpoints")
        if table is None:
            return
        for index in reversed(range(len(table))):
            if _entry_id(table[index]) == endpoint_id:
                del table[index]

    update_config(path, mutate)


def _entry_id(entry) -> str | None:
    try:
        spec = manual_spec(str(entry.get("url", "")), device=entry.get("device"))
    except BadURL:
        return None
    return spec.id


# -- reaching endpoints --------------------------------------------------------------------
@dataclass
class _Route:
    client: httpx.AsyncClient
    transport: object | None  # the device connection the forward runs over
    forward: Forward | None


LinkLookup = Callable[[str], "DeviceLink | None"]


class EndpointConnector:
    """HTTP clients for endpoints, one each, over forwards for the ones on devices."""

    def __init__(self, links: LinkLookup, secrets: SecretStore | None = None, *,
                 extra_keys: dict[str, str] | None = None) -> None:
        self._links = links
        self._secrets = secrets
        #: keys given for this session only (e.g. `sparktui chat` with $SPARKTUI_API_KEY)
        self._extra_keys = dict(extra_keys or {})
        self._routes: dict[str, _Route] = {}
        self._lock = asyncio.Lock()

    async def client(self, spec: EndpointSpec) -> httpx.AsyncClient:
        """The client for `spec`, its base URL already pointing where it must."""
        async with self._lock:
            route = self._routes.get(spec.id)
            if route is not None and self._route_alive(spec, route):
                return route.client
            if route is not None:
                await self._close_route(self._routes.pop(spec.id))
            route = await self._open_route(spec)
            self._routes[spec.id] = route
            return route.client

    def _route_alive(self, spec: EndpointSpec, route: _Route) -> bool:
        if spec.device is None:
            return True
        link = self._links(spec.device)
        transport = link.transport if link is not None else None
        return transport is not None and transport is route.transport and transport.is_alive()

    async def _open_route(self, spec: EndpointSpec) -> _Route:
        # identity: every body is counted as it arrives (see read_bounded)
        headers = {"Accept-Encoding": "identity"}
        key = self._extra_keys.get(spec.id) or os.environ.get(spec.key_env_var)
        if not key and self._secrets is not None:
            key = await self._secrets.get(spec.secret_name)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if spec.device is None:
            client = httpx.AsyncClient(base_url=spec.url, headers=headers,
                                       follow_redirects=False, trust_env=False)
            return _Route(client, None, None)
        link = self._links(spec.device)
        if link is None:
            raise EndpointError(f"{spec.device} is not a device of this session")
        transport = link.transport
        if transport is None or not transport.is_alive():
            raise EndpointError(f"{spec.device} is not connected "
                                f"({link.status.describe()})")
        host, port = spec.base.host_port
        if spec.base.url.startswith("https:"):
            raise EndpointError("an endpoint on a device is reached over its SSH connection "
                                "as plain http; use its http:// URL")
        # a UNIX socket in a 0700 directory: only this user can use the forward (a
        # loopback TCP port would let every local user talk to the model, key and all)
        directory = tempfile.mkdtemp(prefix="sparktui-endpoint-")
        socket_path = os.path.join(directory, "http.sock")
        try:
            forward = await transport.forward_local_path_to_port(socket_path, host, port)
        except (TransportError, OSError, NotImplementedError) as exc:
            _remove_socket_dir(socket_path)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise EndpointError(f"no forward to {host}:{port} on {spec.device}: "
                                f"{detail}") from exc
        # the URL keeps the device's host:port, so the Host header is what the server expects
        client = httpx.AsyncClient(base_url=spec.url, headers=headers, follow_redirects=False,
                                   trust_env=False,
                                   transport=httpx.AsyncHTTPTransport(uds=socket_path))
        return _Route(client, transport, forward)

    async def _close_route(self, route: _Route) -> None:
        await route.client.aclose()
        if route.forward is not None:
            with contextlib.suppress(TransportError, OSError):  # the connection may be gone
                await route.forward.close()
            if isinstance(route.forward.listen, str):
                _remove_socket_dir(route.forward.listen)

    async def forget(self, spec_id: str) -> None:
        """Drop an endpoint's client and forward (its key changed, or it went away)."""
        async with self._lock:
            route = self._routes.pop(spec_id, None)
        if route is not None:
            await self._close_route(route)

    async def device_down(self, spec: EndpointSpec, within: float = 1.0) -> str | None:
        """Why the SSH connection under `spec` is gone, or None while it stands.

        Asked when a request failed: a forward that broke because its
        connection went reads like "refused" or "closed" to HTTP, which would
        send the user looking at the model server instead of the link. The
        connection may need a moment to notice it is gone, hence `within`.
        """
        if spec.device is None:
            return None
        link = self._links(spec.device)
        route = self._routes.get(spec.id)
        transport = route.transport if route is not None else None
        if link is None:
            return None
        if transport is not None and transport.is_alive():  # type: ignore[attr-defined]
            with contextlib.suppress(TimeoutError):
                await aio.within(transport.wait_closed(), within)  # type: ignore[attr-defined]
        if transport is not None and transport.is_alive():  # type: ignore[attr-defined]
            return None
        reason = getattr(transport, "close_reason", None) if transport is not None else None
        return strip_control(reason or link.status.describe(), max_line=160)

    def set_session_key(self, spec_id: str, key: str | None) -> None:
        if key:
            self._extra_keys[spec_id] = key
        else:
            self._extra_keys.pop(spec_id, None)

    async def close(self) -> None:
        async with self._lock:
            routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            await self._close_route(route)

    # -- probing -------------------------------------------------------------------------
    async def probe(self, spec: EndpointSpec, timeout: float = PROBE_TIMEOUT_S) -> Endpoint:
        """Ask an endpoint for its models. The Endpoint carries `error` when it did not answer."""
        try:
            client = await self.client(spec)
        except EndpointError as exc:
            return Endpoint(spec, error=str(exc))
        kind = "openai"
        models: list[str] = []
        error: str | None = None
        try:
            status, body = await get_bounded(client, "models", timeout)
            if status == 200:
                models = parse_model_list(_json(body))
            else:
                error = f"GET /models answered {status}: {body_error_text(body)}"
        except httpx.HTTPError as exc:
            error = describe_transport_error(exc, "{}:{}".format(*spec.base.host_port))
        except BodyTooLarge as exc:
            error = f"GET /models: {exc}"
        except TimeoutError:
            error = f"GET /models: no complete answer in {timeout:g} s"
        port = spec.base.host_port[1]
        if port == OLLAMA_PORT or (error and spec.source != "manual"):
            tags = await self._ollama_tags(client, spec, timeout)
            if tags is not None:
                kind, error = "ollama", None
                models = models or tags
        return Endpoint(spec, tuple(models), kind, error)

    async def _ollama_tags(self, client: httpx.AsyncClient, spec: EndpointSpec,
                           timeout: float) -> list[str] | None:
        root = spec.base.root.split("://", 1)[1].partition("/")[2]
        url = client.base_url.copy_with(path="/" + (root + "/api/tags").lstrip("/"))
        try:
            status, body = await get_bounded(client, url, timeout)
        except (httpx.HTTPError, BodyTooLarge, TimeoutError):
            return None
        if status != 200:
            return None
        data = _json(body)
        return parse_model_list(data) if isinstance(data, dict) and "models" in data else None

    async def discover_device(self, link: DeviceLink, *, ports: tuple[int, ...] = DEFAULT_PORTS,
                              docker: bool = True,
                              timeout: float = PROBE_TIMEOUT_S) -> DeviceDiscovery:
        """Probe the usual ports and the containers' published ports on one device."""
        found = DeviceDiscovery(link.name)
        published: dict[int, str] = {}
        if docker:
            output, note = await docker_ps(link)
            published = parse_docker_ps(output)
            found.containers = parse_docker_ps_rows(output)
            if note:
                found.notes.append(note)
        candidates: dict[int, EndpointSpec] = {}
        for port in ports:
            if port not in EXCLUDED_PORTS:
                candidates[port] = device_spec(link.name, port, note=published.get(port))
        for port, label in published.items():
            if port not in EXCLUDED_PORTS and port not in candidates:
                candidates[port] = device_spec(link.name, port, source="docker", note=label)
        results = await asyncio.gather(*(self.probe(spec, timeout)
                                         for spec in candidates.values()))
        for result in results:
            if result.error is None:
                found.endpoints.append(result)
            else:
                await self.forget(result.id)  # nothing there: no forward kept for it
        return found


def _remove_socket_dir(socket_path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(socket_path)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(socket_path))


async def get_bounded(client: httpx.AsyncClient, url: str | httpx.URL,
                      timeout: float, limit_ok: int = MAX_MODELS_BODY) -> tuple[int, bytes]:
    """GET with a deadline for the whole answer (not per read: a tarpit ends too).

    A 200 body may be `limit_ok` bytes, any other MAX_ERROR_BODY; past it,
    BodyTooLarge (for a 200) or a placeholder body (for an error).
    """
    async with asyncio.timeout(timeout), client.stream("GET", url, timeout=timeout) as response:
        limit = limit_ok if response.status_code == 200 else MAX_ERROR_BODY
        try:
            return response.status_code, await read_bounded(response, limit, "the answer")
        except BodyTooLarge:
            if response.status_code == 200:
                raise
            return response.status_code, b"(an error body too long to show)"


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested beyond reason
        return None


def _os_cause(exc: BaseException) -> OSError | None:
    """The OSError under an httpx error (httpx words it 'All connection attempts failed')."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    first: OSError | None = None
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError):
            if cause.errno is not None:
                return cause  # the real one (anyio wraps it in a bare OSError)
            first = first or cause
        cause = cause.__cause__ or cause.__context__
    return first


def describe_transport_error(exc: BaseException, where: str | None = None) -> str:
    """A short reason for an httpx failure to connect or read; `where` names the address."""
    at = f" at {where}" if where else ""
    if isinstance(exc, httpx.ConnectError):
        cause = _os_cause(exc)
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused{at} (is the server running on that port?)"
        detail = (cause.strerror if cause is not None and cause.strerror else None) or str(exc)
        return f"cannot connect{at}: {strip_control(detail, max_line=160)}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server closed the connection ({strip_control(str(exc), max_line=160)})"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {strip_control(str(exc), max_line=160)}"
    return f"{type(exc).__name__}: {exc}"

