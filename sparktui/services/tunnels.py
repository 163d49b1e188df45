"""Tunnels: port forwards that outlive dropped connections and come back by themselves.

A forward's local listener is ours (asyncio.start_server), not asyncssh's: it
stays bound while the device is away, and each client is spliced to
`transport.open_connection(remote_host, remote_port)` through
`sparktui.transport.splice`, which counts connections and bytes.

While the device is away a new client waits up to CLIENT_WAIT_S for the
connection to come back (a browser reload during a short drop then just
works), then is closed. When the link has failed for a reason only the user can
fix (auth, host key) or is closed, clients are closed at once.

A reverse forward asks the device to listen (`transport.forward_remote_port`)
and send each connection to a small relay of ours on loopback, which splices it
to the service here: the same splice, so the same counters.

Each tunnel follows its device with `DeviceLink.sessions()`: "up" on every new
connection (re-opening the device's listener of a reverse forward), "waiting"
when it drops. A local port is never moved behind the user's back: a port taken
when a saved tunnel starts is reported as the failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.devices import Fleet
from sparktui.services.tunnel_runtime import (
    CLIENT_WAIT_S,
    AddResult,
    ProbeResult,
    Tunnel,
    TunnelState,
    TunnelStatus,
)
from sparktui.services.tunnel_specs import (
    PRESETS,
    Preset,
    TunnelSpec,
    TunnelSpecError,
    delete_tunnel,
    is_loopback,
    load_tunnels,
    pick_local_port,
    port_is_free,
    save_tunnel,
    unique_name,
)
from sparktui.transport.splice import Traffic

__all__ = ["CLIENT_WAIT_S", "PRESETS", "AddResult", "Preset", "ProbeResult", "Tunnel",
           "TunnelManager", "TunnelSpec", "TunnelSpecError", "TunnelState", "TunnelStatus"]

log = logging.getLogger(__name__)


class TunnelManager:
    """Every tunnel of one session: loads, saves, starts, stops and closes them."""

    def __init__(self, fleet: Fleet, *, config_path: Path | None = None, restore: bool = True,
                 read_only: bool = False, audit: AuditLog | None = None) -> None:
        self.fleet = fleet
        self.config_path = config_path
        self.restore = restore
        self.read_only = read_only
        # every entry point audits its reverse forwards (the CLI and autostart too)
        self.audit = audit if audit is not None else AuditLog()
        self.tunnels: list[Tunnel] = []
        self._listeners: list[Callable[[Tunnel], None]] = []
        self._to_restore: set[int] = set()  # id()s of tunnels waiting for their device
        self._config_lock = asyncio.Lock()
        self._audits: set[asyncio.Task[None]] = set()

    # -- listeners ------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Tunnel], None]) -> Callable[[], None]:
        """`listener(tunnel)` on every state change (on the event loop)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, tunnel: Tunnel) -> None:
        for listener in list(self._listeners):
            listener(tunnel)

    def _make(self, spec: TunnelSpec) -> Tunnel:
        tunnel = Tunnel(spec, self._changed)
        self.tunnels.append(tunnel)
        return tunnel

    def find(self, device: str, name: str) -> Tunnel | None:
        return next((t for t in self.tunnels if t.spec.key == (device, name)), None)

    # -- the saved tunnels ------------------------------------------------------------------
    async def load(self) -> list[str]:
        """Read [[tunnels]] from the config; returns the problems found in it."""
        if self.config_path is None:
            return []
        specs, problems = await asyncio.to_thread(load_tunnels, self.config_path)
        for spec in specs:
            if self.find(*spec.key) is not None:
                continue
            tunnel = self._make(spec)
            if self.restore and spec.autostart:
                self._to_restore.add(id(tunnel))
        self.sync_fleet()
        return problems

    def sync_fleet(self) -> None:
        """Match tunnels to the fleet's links: start restored ones whose device is here."""
        for tunnel in self.tunnels:
            link = self.fleet.get(tunnel.spec.device)
            if tunnel.running:
                if tunnel.link is link:
                    continue
                # its device was closed or replaced: follow the new link, if any
                tunnel.close_now()
                self._to_restore.add(id(tunnel))
            if link is None:
                if tunnel.status.state is TunnelState.STOPPED:
                    tunnel.set_state(TunnelState.NO_DEVICE)
                continue
            if id(tunnel) in self._to_restore:
                self._to_restore.discard(id(tunnel))
                if tunnel.spec.reverse and self.read_only:
                    tunnel.set_state(TunnelState.FAILED, "read-only mode: a reverse forward "
                                                         "opens a port on the device")
                    continue
                if tunnel.spec.reverse:  # autostart opens a port on the device too
                    self._audit_soon(tunnel, "tunnel.reverse.start")
                tunnel.start(link)
            elif tunnel.status.state is TunnelState.NO_DEVICE:
                tunnel.set_state(TunnelState.STOPPED)

    async def _save(self, spec: TunnelSpec, replaces: tuple[str, str] | None,
                    warnings: list[str]) -> None:
        if self.config_path is None:
            return
        async with self._config_lock:
            try:
                await asyncio.to_thread(save_tunnel, self.config_path, spec, replaces)
            except Exception as exc:  # the tunnel still runs; the user hears it was not kept
                log.warning("tunnel %s not saved: %s", spec.name, exc)
                warnings.append(f"not saved to the config: {exc}")

    # -- changes -----------------------------------------------------------------------------
    def _prepare(self, spec: TunnelSpec, result_notes: list[str], warnings: list[str],
                 *, keep: Tunnel | None = None) -> TunnelSpec:
        """Fill in the local port and the name, or raise TunnelSpecError saying why not."""
        if spec.reverse and self.read_only:
            raise ReadOnlyError("read-only mode: a reverse forward opens a port on the device")
        taken = {t.name for t in self.tunnels if t.spec.device == spec.device and t is not keep}
        if spec.name in taken and keep is None:
            spec = replace(spec, name=unique_name(spec.name, taken))
        elif spec.name in taken:
            raise TunnelSpecError(f"{spec.device} already has a tunnel named {spec.name!r}")
        link = self.fleet.get(spec.device)
        # the device is this machine: the same port on both ends would connect to itself
        same_machine = (link is not None and link.spec.is_local
                        and is_loopback(spec.remote_host) and is_loopback(spec.bind))
        if spec.reverse:
            if spec.local_port is None:
                spec = spec.with_local_port(spec.remote_port)
        elif spec.local_port is None:
            port = pick_local_port(spec.bind, spec.remote_port + same_machine)
            if port != spec.remote_port:
                why = "is the service itself (the device is this machine)" if same_machine \
                    else "is taken"
                result_notes.append(f"local port {spec.remote_port} {why}: {spec.name} "
                                    f"uses {port} instead")
            spec = spec.with_local_port(port)
        elif same_machine and spec.local_port == spec.remote_port:
            raise TunnelSpecError(f"{spec.device} is this machine: local port "
                                  f"{spec.local_port} would forward to itself; pick another")
        else:
            ours = keep is not None and keep.spec.local_port == spec.local_port \
                and keep.spec.bind == spec.bind and not keep.spec.reverse
            if not ours and not port_is_free(spec.bind, spec.local_port):
                raise TunnelSpecError(
                    f"local port {spec.bind}:{spec.local_port} is already in use; choose "
                    "another, or leave it empty to pick a free one")
        if spec.wide_bind:
            where = spec.remote_host if spec.reverse else spec.bind
            warnings.append(f"{spec.name} listens on {where}: other machines on the network "
                            "can reach it")
        return spec

    async def add(self, spec: TunnelSpec, *, start: bool = True, save: bool = True) -> AddResult:
        notes: list[str] = []
        warnings: list[str] = []
        spec = self._prepare(spec, notes, warnings)
        tunnel = self._make(spec)
        result = AddResult(tunnel, notes, warnings)
        if save:
            await self._save(spec, None, warnings)
        if start:
            await self.start(tunnel)
        else:
            self.sync_fleet()
        return result

    async def update(self, tunnel: Tunnel, spec: TunnelSpec) -> AddResult:
        """Replace a tunnel's spec (stopping and restarting it when it ran)."""
        notes: list[str] = []
        warnings: list[str] = []
        spec = self._prepare(spec, notes, warnings, keep=tunnel)
        old_key = tunnel.spec.key
        await tunnel.stop()
        tunnel.spec = spec
        tunnel.traffic = Traffic()
        tunnel.probe = None
        await self._save(spec, old_key, warnings)
        if self.fleet.get(spec.device) is not None:
            await self.start(tunnel)  # an edit is meant to be tried out at once
        else:
            self.sync_fleet()
        return AddResult(tunnel, notes, warnings)

    async def remove(self, tunnel: Tunnel) -> list[str]:
        """Stop and forget a tunnel; returns warnings (the config could not be written)."""
        await self.stop(tunnel)
        self.tunnels = [t for t in self.tunnels if t is not tunnel]
        self._to_restore.discard(id(tunnel))
        warnings: list[str] = []
        if self.config_path is not None:
            async with self._config_lock:
                try:
                    await asyncio.to_thread(delete_tunnel, self.config_path, tunnel.spec.key)
                except Exception as exc:
                    log.warning("tunnel %s not removed from the config: %s", tunnel.name, exc)
                    warnings.append(f"not removed from the config: {exc}")
        return warnings

    async def _remember_autostart(self, tunnel: Tunnel, autostart: bool) -> list[str]:
        """Keep the user's start or stop for the next session; returns warnings."""
        warnings: list[str] = []
        if tunnel.spec.autostart != autostart:
            tunnel.spec = replace(tunnel.spec, autostart=autostart)
            await self._save(tunnel.spec, tunnel.spec.key, warnings)
        return warnings

    async def start(self, tunnel: Tunnel, *, remember: bool = False) -> list[str]:
        """Start `tunnel`; with `remember`, also restore it in later sessions again.

        Returns warnings (the config could not be written).
        """
        link = self.fleet.get(tunnel.spec.device)
        if link is None:
            tunnel.set_state(TunnelState.NO_DEVICE)
            raise TunnelSpecError(f"{tunnel.spec.device} is not open in this session: start "
                                  f"sparktui with it to use {tunnel.name}")
        if tunnel.spec.reverse:
            if self.read_only:
                raise ReadOnlyError("read-only mode: a reverse forward opens a port on the "
                                    "device")
            await self._audit(tunnel, "tunnel.reverse.start")
        tunnel.start(link)
        return await self._remember_autostart(tunnel, True) if remember else []

    async def stop(self, tunnel: Tunnel, *, remember: bool = False) -> list[str]:
        """Stop `tunnel`; with `remember`, leave it stopped in later sessions too.

        Returns warnings (the config could not be written).
        """
        was_running = tunnel.running
        await tunnel.stop()
        if was_running and tunnel.spec.reverse:
            await self._audit(tunnel, "tunnel.reverse.stop")
        return await self._remember_autostart(tunnel, False) if remember else []

    async def _audit(self, tunnel: Tunnel, action: str) -> None:
        spec = tunnel.spec
        target = f"{spec.remote_host}:{spec.remote_port} -> {spec.bind}:{spec.local_port}"
        await asyncio.to_thread(self.audit.record, spec.device, action, target, "ok")

    def _audit_soon(self, tunnel: Tunnel, action: str) -> None:
        """Audit from synchronous code (sync_fleet): the record is written off the loop."""
        task = asyncio.get_running_loop().create_task(self._audit(tunnel, action))
        self._audits.add(task)
        task.add_done_callback(self._audits.discard)

    async def probe(self, tunnel: Tunnel) -> None:
        await tunnel.check()
        self._changed(tunnel)

    async def probe_all(self) -> None:
        """Probe every tunnel that is up, at once."""
        await asyncio.gather(*(t.check() for t in self.tunnels
                               if t.status.state is TunnelState.UP))
        for tunnel in self.tunnels:
            self._changed(tunnel)

    async def close(self) -> None:
        """Stop every tunnel: nothing is left listening, here or on a device."""
        await asyncio.gather(*(t.stop() for t in self.tunnels), return_exceptions=True)

    def close_now(self) -> None:
        """Stop listening here at once (a device's reverse listeners go with its link)."""
        for tunnel in self.tunnels:
            tunnel.close_now()
