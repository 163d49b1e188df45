"""Models on a device's disk: list them, weigh them for a fit, delete an unused one.

Reading the caches is one exec of sparktui.core.model_cache's script, and only
when the user asks (opening the list, pressing refresh, a fit): never on a
timer, since every exec costs the device a login shell. Ollama's models come
from its API over the device connection. "In use" is read from the Docker API
(through the already-forwarded socket): a running container that mounts the
model's folder, or mounts the cache and names the model in its command or
environment. Ollama's loaded models (/api/ps) are in use too.

A delete names its target in the confirmation (the UI's job), is refused in
read-only mode and for a model in use, removes only a models--ORG--NAME folder
inside a known cache or a .gguf file, and is written to the audit log.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sparktui.core.model_cache import (
    CachedModel,
    ModelListing,
    models_command,
    parse_listing,
    safe_to_delete,
    uses_model,
)
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.endpoints import Endpoint, EndpointConnector
from sparktui.services.link import DeviceLink
from sparktui.transport.ssh_types import quote

log = logging.getLogger(__name__)

LIST_TIMEOUT_S = 60.0
MAX_CONFIG_BYTES = 1 << 20


class ModelDeleteError(Exception):
    """A delete that was refused or failed; the message says why, naming the model."""


@dataclass(frozen=True)
class ContainerUse:
    """What a running container could be using: its binds and its words."""

    name: str
    mounts: tuple[tuple[str, str], ...]
    words: str  # command, args and environment, joined


def running_container_uses(client: Any) -> list[ContainerUse]:
    """docker-py, in a thread: every running container's mounts, command and environment."""
    out = []
    for row in client.api.containers(filters={"status": "running"}):
        details = client.api.inspect_container(row["Id"])
        mounts = tuple((m.get("Source", ""), m.get("Destination", ""))
                       for m in details.get("Mounts") or [] if isinstance(m, dict))
        config = details.get("Config") or {}
        words = " ".join([*(config.get("Cmd") or []), *(config.get("Entrypoint") or []),
                          *(details.get("Args") or []), *(config.get("Env") or [])])
        name = (details.get("Name") or row["Id"][:12]).lstrip("/")
        out.append(ContainerUse(name, mounts, words))
    return out


class ModelStore:
    """The models on one device."""

    def __init__(self, link: DeviceLink, *, containers: Any = None,
                 connector: EndpointConnector | None = None, audit: AuditLog | None = None,
                 read_only: bool = False) -> None:
        self.link = link
        self.containers = containers  # a ContainerService, when Docker is reachable
        self.connector = connector
        self.audit = audit
        self.read_only = read_only
        self.listing: ModelListing | None = None
        self.read_at: float | None = None
        self.previous: dict[str, tuple[float, int]] = {}  # model id -> (time, bytes so far)
        self.ollama_endpoints: list[Endpoint] = []

    async def refresh(self, ollama: list[Endpoint] = ()) -> ModelListing:
        """Read every cache once (one exec), then mark what running containers use."""
        result = await self.link.run(models_command(), timeout=LIST_TIMEOUT_S)
        if not result.ok and not result.stdout:
            raise RuntimeError(f"listing the model caches on {self.link.name} failed: "
                               f"{result.stderr.strip()[-200:] or result.exit_status}")
        listing = parse_listing(result.stdout)
        self.ollama_endpoints = list(ollama)
        for endpoint in ollama:
            listing.models.extend(await self._ollama_models(endpoint))
        uses = await self._container_uses()
        for model in listing.models:
            if model.source != "ollama":
                model.in_use_by = tuple(u.name for u in uses
                                        if uses_model(model, list(u.mounts), u.words))
        now = time.time()
        self.previous = {m.id: (self.read_at or now, m.downloading_bytes)
                         for m in (self.listing.models if self.listing else [])
                         if m.downloading}
        self.listing, self.read_at = listing, now
        return listing

    def download_rate(self, model: CachedModel) -> float | None:
        """Bytes/s an unfinished download grew since the previous read; None at first."""
        before = self.previous.get(model.id)
        if before is None or self.read_at is None or self.read_at <= before[0]:
            return None
        return max(0.0, (model.downloading_bytes - before[1]) / (self.read_at - before[0]))

    async def _container_uses(self) -> list[ContainerUse]:
        if self.containers is None or self.containers.client is None:
            return []
        try:
            return await self.containers.call(running_container_uses)
        except Exception as exc:  # no Docker answer: nothing is known to be in use
            log.warning("reading running containers on %s: %s", self.link.name, exc)
            return []

    async def _ollama_models(self, endpoint: Endpoint) -> list[CachedModel]:
        if self.connector is None:
            return []
        from sparktui.services.serving import root_url

        client = await self.connector.client(endpoint.spec)
        tags = (await client.get(root_url(client, endpoint.spec, "/api/tags"))).json()
        loaded = set()
        try:
            ps = (await client.get(root_url(client, endpoint.spec, "/api/ps"))).json()
            loaded = {m.get("name") for m in ps.get("models", []) if isinstance(m, dict)}
        except (ValueError, AttributeError) as exc:
            log.debug("ollama /api/ps: %s", exc)
        out = []
        for item in tags.get("models", []) if isinstance(tags, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            size = item.get("size") if isinstance(item.get("size"), int) else 0
            model = CachedModel("ollama", item["name"], "", size)
            model.in_use_by = ("loaded in Ollama",) if item["name"] in loaded else ()
            model.revision = endpoint.id  # where a delete goes
            out.append(model)
        return out

    async def read_config(self, model: CachedModel) -> dict[str, Any] | None:
        """A snapshot's config.json (one exec), for the fit arithmetic; None if absent."""
        if not model.config_path:
            return None
        result = await self.link.run(f"head -c {MAX_CONFIG_BYTES} "
                                     + quote(model.config_path), timeout=20)
        if not result.ok:
            return None
        try:
            data = json.loads(result.stdout)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def delete(self, model: CachedModel) -> None:
        """Remove a model from disk (raises ModelDeleteError or ReadOnlyError)."""
        device = self.link.name
        target = f"{model.name} ({model.source})"
        if self.read_only:
            raise ReadOnlyError(f"read-only mode: not deleting {target} on {device}")
        if model.in_use_by:
            self._record(model, "refused: in use by " + ", ".join(model.in_use_by))
            raise ModelDeleteError(f"{target} is in use by {', '.join(model.in_use_by)}; "
                                   "stop it first")
        if self.listing is None:
            raise ModelDeleteError("list the models first")
        why = safe_to_delete(model, self.listing)
        if why is not None:
            self._record(model, f"refused: {why}")
            raise ModelDeleteError(f"not deleting {target}: {why}")
        if model.source == "ollama":
            await self._delete_ollama(model)
        else:
            result = await self.link.run(quote("rm", "-rf", "--", model.path), timeout=600)
            if not result.ok:
                reason = result.stderr.strip()[-200:] or f"exit status {result.exit_status}"
                self._record(model, f"failed: {reason}")
                raise ModelDeleteError(f"deleting {target} failed: {reason}")
        self._record(model, "ok", bytes=model.size_bytes)
        self.listing.models = [m for m in self.listing.models if m.id != model.id]

    async def _delete_ollama(self, model: CachedModel) -> None:
        from sparktui.services.serving import root_url

        spec = next((e.spec for e in self.ollama_endpoints if e.id == model.revision), None)
        if spec is None or self.connector is None:
            raise ModelDeleteError(f"the Ollama endpoint of {model.name} is gone")
        client = await self.connector.client(spec)
        response = await client.request("DELETE", root_url(client, spec, "/api/delete"),
                                        json={"model": model.name})
        if response.status_code != 200:
            self._record(model, f"failed: HTTP {response.status_code}")
            raise ModelDeleteError(f"Ollama refused to delete {model.name}: "
                                   f"HTTP {response.status_code}")

    def _record(self, model: CachedModel, result: str, **details: Any) -> None:
        if self.audit is not None:
            self.audit.record(self.link.name, "model.delete", model.name, result,
                              source=model.source, path=model.path, **details)

