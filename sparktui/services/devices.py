"""Turning DEVICE arguments into live links, and the fleet of links of one session."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable

from sparktui.core.device import DeviceSpec, FailureKind
from sparktui.services.config import Config, Settings
from sparktui.services.link import Backoff, ConnectFailure, DeviceLink
from sparktui.services.model_directory import ModelDirectory
from sparktui.transport.base import Transport

log = logging.getLogger(__name__)


def resolve_device(arg: str, config: Config) -> DeviceSpec:
    """`local`, a device name from the config, or `[user@]host[:port]` / an ssh Host alias.

    A Host alias of ~/.ssh/config needs no special case: the SSH transport hands
    the name to asyncssh, which applies ~/.ssh/config exactly as OpenSSH does.
    An alias of NVIDIA Sync's own ssh_config (which ~/.ssh/config may not
    Include) is found by the connector, which then reads that file too
    (`sync_config_files`), so any host `sparktui devices` lists opens by name.
    """
    named = config.device(arg)
    if named is not None:
        return named
    return DeviceSpec.parse(arg)


def sync_config_files(spec: DeviceSpec) -> tuple[str, ...]:
    """NVIDIA Sync's ssh_config, when `spec.host` is one of its Host aliases.

    Reads a small local file: call it from a thread when on the event loop.
    """
    if spec.is_local or spec.user or spec.port:
        return ()  # user@host:port was typed out in full: not an alias
    from sparktui.services.sshconfig import sync_config_for

    path = sync_config_for(spec.host)
    return (path,) if path else ()


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
        from sparktui.transport.ssh import connect_ssh
        from sparktui.transport.ssh_types import SSHConnectError, SSHOptions

        options = ssh_options or SSHOptions(
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=settings.keepalive_count_max)
        try:
            if options.use_ssh_config:
                extra = await asyncio.to_thread(sync_config_files, spec)
                if extra:
                    options = dataclasses.replace(
                        options, config_files=(*extra, *options.config_files))
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
        #: which GPU process / container serves which model (the Serving tab fills it)
        self.models = ModelDirectory()

    def add(self, link: DeviceLink, *, first: bool = False) -> DeviceLink:
        """Add `link` last, or `first` (the device a session shows at start)."""
        self.links.insert(0 if first else len(self.links), link)
        return link

    def get(self, name: str) -> DeviceLink | None:
        return next((link for link in self.links if link.name == name), None)

    def start(self) -> None:
        for link in self.links:
            link.start()

    async def remove(self, name: str) -> DeviceLink | None:
        """Close a device's link and drop it from the fleet; its owners see it gone."""
        link = self.get(name)
        if link is not None:
            self.links.remove(link)
            await link.close()
        return link

    async def close(self) -> None:
        # every link is closed even when one fails; the failures are not lost
        results = await asyncio.gather(*(link.close() for link in self.links),
                                       return_exceptions=True)
        for link, result in zip(self.links, results, strict=True):
            if isinstance(result, BaseException):
                log.error("closing %s failed: %r", link.name, result)


# -- [[devices]] in the config file ------------------------------------------------------
def _device_table(spec: DeviceSpec):
    import tomlkit

    table = tomlkit.table()
    table["name"] = spec.name
    table["host"] = spec.host
    # only what the user said: None leaves the value to ~/.ssh/config, as in DeviceSpec
    for key in ("user", "port", "identity_file", "proxy_jump"):
        value = getattr(spec, key)
        if value is not None:
            table[key] = value
    if spec.tags:
        table["tags"] = list(spec.tags)
    return table


def save_device_entry(path, spec: DeviceSpec, replaces: str | None = None) -> None:
    """Add `spec` to the config's [[devices]], or replace the entry named `replaces`.

    Written with update_config: comments and layout stay, the write is atomic,
    and a config that is not valid TOML is left untouched (ConfigError).
    """
    from sparktui.services.config import update_config

    target = replaces or spec.name

    def mutate(document) -> None:
        import tomlkit

        devices = document.get("devices")
        if devices is None:
            devices = tomlkit.aot()
            document["devices"] = devices
        for index, entry in enumerate(devices):
            if entry.get("name") == target:
                # keep keys sparktui does not know (a user's notes) and the comments
                fresh = _device_table(spec)
                for key in ("user", "port", "identity_file", "proxy_jump", "tags"):
                    if key in entry and key not in fresh:
                        del entry[key]
                for key, value in fresh.items():
                    entry[key] = value
                devices[index] = entry
                return
        devices.append(_device_table(spec))

    update_config(path, mutate)


def remove_device_entry(path, name: str) -> bool:
    """Drop the [[devices]] entry called `name`; False when there was none."""
    from sparktui.services.config import update_config

    removed = [False]

    def mutate(document) -> None:
        devices = document.get("devices")
        if devices is None:
            return
        for index, entry in enumerate(devices):
            if entry.get("name") == name:
                del devices[index]
                removed[0] = True
                return

    update_config(path, mutate)
    return removed[0]
