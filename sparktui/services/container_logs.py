"""Following one container's logs: the last N lines, then new ones as they come.

The stream runs in a thread of its own (docker-py blocks, and a follow can
last for hours: it must not hold a slot of the default executor) over its
own client without a read timeout, since a quiet container is not an error.
Lines reach `on_lines` on the event loop in batches, one per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sparktui.core.docker_logs import LineSplitter, LogLine, to_log_line
from sparktui.services.containers import ContainerService, DockerUnavailable, describe_error

log = logging.getLogger(__name__)


class LogFollower:
    """`start()` it on the event loop; `close()` stops it (from anywhere, at any time)."""

    def __init__(self, service: ContainerService, container_id: str, *,
                 on_lines: Callable[[list[LogLine]], None],
                 on_end: Callable[[str | None], None],
                 tail: int | None = 500, follow: bool = True) -> None:
        self.service = service
        self.container_id = container_id
        self.tail = tail
        self.follow = follow
        self._on_lines = on_lines
        self._on_end = on_end
        self._lock = threading.Lock()
        self._closed = False
        self._client: Any = None
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        endpoint = self.service.endpoint
        if endpoint is None or self.service.client is None:
            raise DockerUnavailable(self.service.problem or _offline(self.service))
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, args=(endpoint.base_url,),
                                        daemon=True,
                                        name=f"docker-logs:{self.service.device}")
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            stream, client = self._stream, self._client
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # the socket may already be gone with the connection
                log.debug("closing a log stream: %s", exc)
        if client is not None:
            client.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            loop.call_soon_threadsafe(callback, *args)

    # after close() nothing is delivered: the owner (a screen) may already be gone
    def _deliver(self, lines: list[LogLine]) -> None:
        if not self._closed:
            self._on_lines(lines)

    def _finish(self, error: str | None) -> None:
        if not self._closed:
            self._on_end(error)

    def _run(self, base_url: str) -> None:
        import docker

        error: str | None = None
        splitter = LineSplitter()
        try:
            client = docker.DockerClient(base_url=base_url, version="auto", timeout=None)
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._client = client
            tail: int | str = "all" if self.tail is None else max(0, self.tail)
            stream = client.api.logs(self.container_id, stream=True, follow=self.follow,
                                     tail=tail, timestamps=True)
            with self._lock:
                self._stream = stream
                closed = self._closed
            if closed:
                stream.close()
                return
            for chunk in stream:
                lines = [to_log_line(raw) for raw in splitter.feed(chunk)]
                if lines:
                    self._post(self._deliver, lines)
            rest = [to_log_line(raw) for raw in splitter.flush()]
            if rest:
                self._post(self._deliver, rest)
        except Exception as exc:  # shown to the user at the end of the log
            error = None if self._closed else describe_error(exc)
        finally:
            self._post(self._finish, error)


def _offline(service: ContainerService):
    from sparktui.core.docker_problems import not_connected

    return not_connected(service.device)


async def read_logs(service: ContainerService, container_id: str, *,
                    tail: int | None = None) -> list[LogLine]:
    """The container's logs up to now (no follow), for the CLI and the deploy report."""
    lines: list[LogLine] = []
    done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def finished(error: str | None) -> None:
        if not done.done():
            done.set_result(error)

    follower = LogFollower(service, container_id, on_lines=lines.extend, on_end=finished,
                           tail=tail, follow=False)
    follower.start()
    try:
        error = await done
    finally:
        follower.close()
    if error:
        raise RuntimeError(error)
    return lines
