"""The images of one device: list with sizes and users, remove, remove the unused.

"Unused" is decided here, from the same listing the user confirms, and the
removal takes exactly those ids: an image pulled after the question was
asked is never swept up by it (as `docker image prune -a` would).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sparktui.services.containers import ContainerService, describe_error


@dataclass(frozen=True)
class ImageInfo:
    id: str
    tags: tuple[str, ...]  # raw device text
    size: int
    created: float | None
    containers: int  # how many containers (running or not) use it

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]

    @property
    def label(self) -> str:
        return ", ".join(self.tags) if self.tags else f"<untagged {self.short_id}>"


def _list(client: Any) -> list[ImageInfo]:
    users: dict[str, int] = {}
    for container in client.api.containers(all=True):
        image_id = container.get("ImageID") or ""
        users[image_id] = users.get(image_id, 0) + 1
    images = []
    for item in client.api.images():
        tags = tuple(t for t in (item.get("RepoTags") or []) if t != "<none>:<none>")
        images.append(ImageInfo(id=item["Id"], tags=tags, size=int(item.get("Size") or 0),
                                created=float(item["Created"]) if item.get("Created") else None,
                                containers=users.get(item["Id"], 0)))
    images.sort(key=lambda image: (image.label.lower(), image.id))
    return images


def unused(images: list[ImageInfo]) -> list[ImageInfo]:
    return [image for image in images if image.containers == 0]


async def list_images(service: ContainerService) -> list[ImageInfo]:
    return await service.call(_list)


async def remove_images(service: ContainerService,
                        images: list[ImageInfo]) -> list[tuple[ImageInfo, str | None]]:
    """Remove each image (by id, so every tag goes); (image, error or None) for each."""
    labels = ", ".join(image.label for image in images) or "nothing"
    service.check_writable("remove images", labels)
    client = service.require_client()
    results: list[tuple[ImageInfo, str | None]] = []
    for image in images:
        try:
            # by id; force only so an unused image tagged twice goes in one step (force
            # would also take an image a stopped container still needs)
            force = len(image.tags) > 1 and image.containers == 0
            await asyncio.to_thread(client.api.remove_image, image.id, force=force)
        except Exception as exc:
            reason = describe_error(exc)
            service.record("image.remove", image.label, f"failed: {reason}", id=image.id)
            results.append((image, reason))
            continue
        service.record("image.remove", image.label, "ok", id=image.id, size=image.size)
        results.append((image, None))
    return results
