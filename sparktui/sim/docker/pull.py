"""Pulling an image on the simulated Docker Engine: layer progress as dockerd reports it.

`pull_events` yields the JSON messages of `POST /images/create`, spread over
the state's `pull_seconds`: a few layers go Pulling fs layer -> Waiting ->
Downloading (current/total, with the text progress bar) -> Verifying
Checksum -> Download complete -> Extracting -> Pull complete, then the
digest and the status line. Errors a registry gives before anything is
pulled (no such repository, a NIM pulled without logging in to nvcr.io) are
raised before the first message, so they come back as plain HTTP errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

from sparktui.sim.docker.state import DockerState, EngineError, normalize_ref, repo_of

#: how a pull's bytes split over its layers (their count is the tuple's length)
_LAYER_SHARES = (0.03, 0.17, 0.52, 0.28)


def _path_in_registry(repo: str) -> str:
    """'nvcr.io/nvidia/vllm' -> 'nvidia/vllm'; 'ubuntu' -> 'library/ubuntu' (Docker Hub)."""
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return repo if rest else f"library/{repo}"


def _size_of(ref: str) -> int:
    """A plausible, stable size for an image: 2 to 20 GB (inference images are big)."""
    value = int(hashlib.sha256(ref.encode()).hexdigest()[:8], 16)
    return 2_000_000_000 + value % 18_000_000_000


def _bar(current: int, total: int) -> str:
    """Docker's text progress bar: '[=====>      ]  1.23GB/4.56GB'."""
    width = 50
    filled = int(width * current / total) if total else width
    arrow = "=" * max(0, filled - 1) + (">" if filled < width else "=")
    return f"[{arrow:<{width}}] {_size(current):>8}/{_size(total)}"


def _size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.4g}{unit}"
        value /= 1000
    return f"{value:.4g}GB"  # unreachable


async def pull_events(state: DockerState, ref: str, authed: bool) -> AsyncIterator[dict[str, Any]]:
    ref = normalize_ref(ref)
    repo = repo_of(ref)
    tag = None if "@" in ref else ref.rsplit(":", 1)[1]
    path = _path_in_registry(repo)
    if "does-not-exist" in repo or "nonexistent" in repo:
        raise EngineError(404, f"pull access denied for {repo}, repository does not exist or "
                               "may require 'docker login': denied: requested access to the "
                               "resource is denied")
    if repo.startswith("nvcr.io/nim/") and not authed:
        raise EngineError(500, f'Head "https://nvcr.io/v2/{path}/manifests/{tag or "latest"}": '
                               "unauthorized: authentication required (log in to nvcr.io as "
                               "$oauthtoken with an NGC API key)")
    try:
        existing = state.image(ref)
    except EngineError:
        existing = None
    label = tag or ref.split("@", 1)[1][:19]
    yield {"status": f"Pulling from {path}", "id": label}
    if existing is not None:
        if existing.digests:
            yield {"status": f"Digest: {existing.digests[0].split('@', 1)[1]}"}
        yield {"status": f"Status: Image is up to date for {ref}"}
        return
    total = _size_of(ref)
    seed = hashlib.sha256(ref.encode()).hexdigest()
    layers = [(seed[i * 12:(i + 1) * 12], int(total * share))
              for i, share in enumerate(_LAYER_SHARES)]
    for layer, _ in layers:
        yield {"status": "Pulling fs layer", "progressDetail": {}, "id": layer}
    for layer, _ in layers[1:]:
        yield {"status": "Waiting", "progressDetail": {}, "id": layer}
    steps = max(8, int(state.pull_seconds / 0.1))
    phases = ["waiting"] * len(layers)
    for step in range(1, steps + 1):
        await asyncio.sleep(state.pull_seconds / steps)
        done = step / steps
        for index, (layer, size) in enumerate(layers):
            for event in _advance(phases, index, layer, size, done, len(layers)):
                yield event
    image = state.add_image([ref] if tag else [], total, time.time(), repo=repo)
    if tag is None:
        image.digests = [ref]
    state.emit("image", "pull", ref, {"name": ref})
    yield {"status": f"Digest: {image.digests[0].split('@', 1)[1]}"}
    yield {"status": f"Status: Downloaded newer image for {ref}"}


def _advance(phases: list[str], index: int, layer: str, size: int, done: float,
             count: int) -> list[dict[str, Any]]:
    """The messages for one layer at `done` (0..1) of the pull; `phases` remembers where it is."""
    download = (0.05 * index, 0.45 + 0.1 * index)
    extract = (0.75 + 0.24 * index / count, 0.75 + 0.24 * (index + 1) / count)
    events: list[dict[str, Any]] = []
    if phases[index] == "waiting" and done >= download[0]:
        phases[index] = "downloading"
    if phases[index] == "downloading":
        if done < download[1]:
            current = int(size * (done - download[0]) / (download[1] - download[0]))
            events.append({"status": "Downloading", "progressDetail": {
                "current": current, "total": size}, "progress": _bar(current, size),
                "id": layer})
        else:
            events += [{"status": "Verifying Checksum", "progressDetail": {}, "id": layer},
                       {"status": "Download complete", "progressDetail": {}, "id": layer}]
            phases[index] = "downloaded"
    if phases[index] == "downloaded" and done >= extract[0]:
        if done < extract[1]:
            current = int(size * (done - extract[0]) / (extract[1] - extract[0]))
            events.append({"status": "Extracting", "progressDetail": {
                "current": current, "total": size}, "progress": _bar(current, size),
                "id": layer})
        else:
            events.append({"status": "Pull complete", "progressDetail": {}, "id": layer})
            phases[index] = "complete"
    return events
