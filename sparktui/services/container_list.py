"""Reading containers from a Docker daemon one at a time, so one bad answer costs one row.

docker-py's `containers.list()` inspects every container and fails as a whole
when one answer is malformed (a row without an Id, an inspect that is not an
object); the events thread then ended and the service listed again, every
0.2 s, for ever. Here each row and each inspect is checked on its own: what is
not a container is skipped, with one log line that says what came instead.
Runs in the events thread (blocking docker-py calls).
"""

from __future__ import annotations

import logging
from typing import Any

from sparktui.core.docker_info import ContainerInfo
from sparktui.core.sanitize import clean_reason

log = logging.getLogger(__name__)

def _what(value: Any) -> str:
    return clean_reason(f"{type(value).__name__} {str(value)[:80]}")


def inspect_one(client: Any, container_id: str, device: str) -> ContainerInfo | None:
    """The container, or None when the answer is not a container (logged).

    docker.errors.NotFound goes up: the caller treats it as a removal.
    """
    attrs = client.api.inspect_container(container_id)
    if not isinstance(attrs, dict) or not isinstance(attrs.get("Id"), str) \
            or not attrs.get("Id"):
        log.info("docker on %s: inspect %s answered %s, not a container; skipped",
                 device, clean_reason(str(container_id)[:64]), _what(attrs))
        return None
    return ContainerInfo.from_inspect(attrs)


def list_all(client: Any, device: str) -> list[ContainerInfo]:
    """Every container the daemon lists that reads back as a container."""
    import docker

    rows: list[ContainerInfo] = []
    listed = client.api.containers(all=True)
    for summary in listed if isinstance(listed, list) else []:
        container_id = summary.get("Id") if isinstance(summary, dict) else None
        if not isinstance(container_id, str) or not container_id:
            log.info("docker on %s: the list held %s, not a container; skipped", device,
                     _what(summary))
            continue
        try:
            row = inspect_one(client, container_id, device)
        except docker.errors.NotFound:
            continue  # removed between the list and the inspect
        if row is not None:
            rows.append(row)
    return rows
