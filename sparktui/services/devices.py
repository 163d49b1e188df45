"""Turning DEVICE arguments into live links, and the fleet of links of one session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sparktui.core.device import DeviceSpec, FailureKind
from sparktui.services.config import Config, Settings
from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
from sparktui.transport.base import Transport


def resolve_device(arg: str, config: Config) -> DeviceSpec:
    """`local`, a device name from the config, or `[user@]host[:port]` / an ssh Host alias.

    A Host alias needs no special case: the SSH transport hands the name to
    asyncssh, which applies ~/.ssh/config exactly as OpenSSH does.
    """
    named = config.device(arg)
    if named is not None:
        return named
    return DeviceSpec.parse(arg)


def make_link(spec: DeviceSpec, settings: Settings, *, ssh_options=None,
              host_key_prompt=None) -> DeviceLink:
    """A DeviceLink whose connector opens the right kind of transport."""
    backoff = Backoff(cap=settings.reconnect_max_delay)
    if spec.is_local:
        async def connect_local() -> Transport:
            from sparktui.transport.local import LocalTransport

            return LocalTransport(spec.name)

        return DeviceLink(spec, connect_local, backoff=backoff)

    async def connect_remote() -> Transport:
        from sparktui.transport.ssh import SSHConnectError, SSHOptions, connect_ssh

        options = ssh_options or SSHOptions(
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=settings.keepalive_count_max)
        try:
            return await connect_ssh(spec, options, host_key_prompt)
        except SSHConnectError as exc:
            raise ConnectFailure(exc.kind, exc.reason) from exc
        except Exception as exc:  # anything unforeseen still gets a reason and a retry
            raise ConnectFailure(FailureKind.OTHER, f"{type(exc).__name__}: {exc}") from exc

    return DeviceLink(spec, connect_remote, backoff=backoff)


class Fleet:
    """Every device link of one session, started and closed together."""

    def __init__(self, links: Iterable[DeviceLink] = ()) -> None:
        self.links: list[DeviceLink] = list(links)

    def add(self, link: DeviceLink) -> DeviceLink:
        self.links.append(link)
        return link

    def get(self, name: str) -> DeviceLink | None:
        return next((link for link in self.links if link.name == name), None)

    def start(self) -> None:
        for link in self.links:
            link.start()

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links), return_exceptions=True)
