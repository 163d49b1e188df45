"""An mDNS publisher for tests: `_ssh._tcp` services announced on loopback only.

Bound to 127.0.0.1, so nothing leaks onto a real network, and a browser in the
same process (any interfaces) hears it within a second or two. Uses
AsyncZeroconf: the synchronous Zeroconf refuses to run inside the test's loop.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from tests.infra.common import require

SSH_SERVICE = "_ssh._tcp.local."


class MdnsPublisher:
    """`async with MdnsPublisher() as pub: await pub.publish("spark-1", ...)`."""

    def __init__(self, interfaces: Sequence[str] = ("127.0.0.1",)) -> None:
        self.interfaces = list(interfaces)
        self._azc = None
        self._infos: list[object] = []
        self._tasks: list[object] = []

    async def __aenter__(self) -> MdnsPublisher:
        try:
            from zeroconf.asyncio import AsyncZeroconf
        except ImportError:  # pragma: no cover - zeroconf is a dependency
            require(False, "python zeroconf is not installed (pip install zeroconf)")
            raise
        try:
            self._azc = AsyncZeroconf(interfaces=self.interfaces)
        except OSError as exc:
            require(False, f"cannot open an mDNS socket on {self.interfaces}: {exc}")
        return self

    async def publish(self, instance: str, hostname: str, addresses: Sequence[str],
                      port: int = 22, txt: dict[str, str] | None = None) -> None:
        from zeroconf import ServiceInfo

        packed = [socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a)
                  for a in addresses]
        info = ServiceInfo(SSH_SERVICE, f"{instance}.{SSH_SERVICE}", port=port,
                           addresses=packed, server=f"{hostname}.", properties=txt or {})
        # the names are unique per test: skip the ~1 s conflict probe; the announcement
        # goes out in the background (queries are answered from the registry at once)
        self._tasks.append(await self._azc.async_register_service(
            info, cooperating_responders=True))
        self._infos.append(info)

    async def __aexit__(self, *exc: object) -> None:
        if self._azc is None:
            return
        for task in self._tasks:
            await task
        for info in self._infos:
            await (await self._azc.async_unregister_service(info))
        await self._azc.async_close()
