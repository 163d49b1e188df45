"""The load guard: keeps a model load from wedging a GB10.

While a container deployed from sparktui is loading (from its start until its
endpoint answers), or while the user has turned the guard on for a device, every
host tick is checked:
- MemFree (what CUDA can get on a GB10) under `guard_free_floor_gib`: drop
  caches, then compact (what ended one owner's wedges), at most every
  RECLAIM_COOLDOWN_S;
- MemAvailable under `guard_hard_floor_gib` for `guard_hard_floor_s`: the
  loading container is stopped before the box wedges, and the event says why.
Every step is a DeviceEvent on the device's telemetry and a line in the audit log.
The checks run on the telemetry listener (cheap, synchronous); the actions run
in one task at a time, so a slow `sync` never stacks a second drop behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable

from sparktui.core.events import DeviceEvent, Severity
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.containers import CONTAINER_STARTED_HOOKS, ContainerService
from sparktui.services.deploy import DEPLOY_LOADING_HOOKS, DeployLoading
from sparktui.services.memory_actions import MemoryActions
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService

log = logging.getLogger(__name__)

GIB = 1024**3
RECLAIM_COOLDOWN_S = 10.0  # a load that keeps reading fills the cache again; not every tick
STARTED_LOAD_LIMIT_S = 1800.0  # a started container with no port that answers: its load
PROBE_EVERY_S = 2.0  # ... is guarded this long at most, its port asked this often
_PUBLISHED = re.compile(r":(\d{1,5})->")


def published_port(ports: tuple[str, ...]) -> int | None:
    """The device port of the first published port (`127.0.0.1:8000->8000/tcp`)."""
    for spec in ports:
        match = _PUBLISHED.search(spec)
        if match:
            return int(match.group(1))
    return None

StopContainer = Callable[[], Awaitable[object]]  # stops one loading container
Told = Callable[[str], None]  # hears why its container was stopped


def _gib(value: int) -> str:
    return f"{value / GIB:.1f} GiB"


class LoadGuard:
    """The guard of one device."""

    def __init__(self, telemetry: TelemetryService, actions: MemoryActions, settings: Settings,
                 *, audit: AuditLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.telemetry = telemetry
        self.actions = actions
        self.settings = settings
        self.audit = audit
        self.clock = clock
        self.device = telemetry.link.name
        #: container id -> (name, stop, told why) while it loads
        self.loading: dict[str, tuple[str, StopContainer, Told | None]] = {}
        #: "auto": guard loads started from sparktui; "on": always; "off": never
        self.mode = "auto"
        self.stopped: list[tuple[str, str]] = []  # (container name, reason), for the UI
        self._task: asyncio.Task[None] | None = None
        self._last_reclaim = -math.inf
        self._below_since: float | None = None
        self._warned_nothing_to_stop = False
        self._unsubscribe = telemetry.subscribe(self._on_telemetry)

    # -- floors --------------------------------------------------------------------------
    @property
    def free_floor(self) -> int:
        return int(self.settings.guard_free_floor_gib * GIB)

    @property
    def hard_floor(self) -> int:
        return int(self.settings.guard_hard_floor_gib * GIB)

    @property
    def manual(self) -> bool:
        return self.mode == "on"

    @property
    def active(self) -> bool:
        return self.mode == "on" or (self.mode == "auto" and bool(self.loading))

    def describe(self) -> str:
        """One line for the UI: what the guard does now."""
        loads = ", ".join(entry[0] for entry in self.loading.values())
        if self.mode == "off":
            return "load guard off" + (f" (not guarding {loads})" if loads else "")
        if not self.active:
            return "load guard waits for a load started from sparktui"
        what = f"guarding the load of {loads}" if loads else "on"
        return f"load guard {what}: {self.floors()}"

    def floors(self) -> str:
        return (f"reclaim under {_gib(self.free_floor)} free, stop under "
                f"{_gib(self.hard_floor)} available for {self.settings.guard_hard_floor_s:g} s")

    # -- switching -------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"unknown guard mode {mode!r}")
        if mode != "off" and self.actions.read_only:
            raise ReadOnlyError(f"read-only mode: the load guard cannot act on {self.device}")
        if mode == self.mode:
            return
        self.mode = mode
        self._below_since = None
        self._event(self.describe() if mode != "auto" else
                    f"load guard auto: guards loads started from sparktui ({self.floors()})",
                    Severity.INFO)
        self.audit.record(self.device, f"guard.{mode}", self.device, "ok")

    def set_manual(self, on: bool) -> None:
        self.set_mode("on" if on else "auto")

    def watch_load(self, container_id: str, name: str, stop: StopContainer,
                   told: Told | None = None) -> None:
        """A container started loading: guard it until `load_finished`."""
        if self.actions.read_only:
            return  # nothing may be dropped or stopped: a guard would only pretend
        self.loading[container_id] = (name, stop, told)
        self._event(f"guarding the load of {name}: {self.floors()}", Severity.INFO)
        self.audit.record(self.device, "guard.watch-load", name, "ok", id=container_id)

    def load_finished(self, container_id: str, answered: bool) -> None:
        entry = self.loading.pop(container_id, None)
        if entry is None:
            return
        name = entry[0]
        self._event(f"{name} {'answers' if answered else 'ended'}: its load is no longer "
                    "guarded", Severity.INFO)

    async def close(self) -> None:
        self._unsubscribe()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- checking ------------------------------------------------------------------------------
    def _on_telemetry(self, state: DeviceTelemetry) -> None:
        if not self.active or (self._task is not None and not self._task.done()):
            return
        host = state.host
        mem = host.mem if host is not None else None
        if mem is None:
            return
        now = self.clock()
        available, free = mem.available, mem.free
        if available is not None and available < self.hard_floor:
            if self._below_since is None:
                self._below_since = now
            held = now - self._below_since
            if held >= self.settings.guard_hard_floor_s:
                self._start(self._stop_loading(available, held))
                return
        else:
            self._below_since = None
            self._warned_nothing_to_stop = False
        if (free is not None and free < self.free_floor
                and now - self._last_reclaim >= RECLAIM_COOLDOWN_S):
            self._last_reclaim = now
            self._start(self._reclaim(free, available))

    def _start(self, work: Awaitable[None]) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._log_failure(work), name=f"guard:{self.device}")

    async def _log_failure(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            log.exception("%s: load guard step failed", self.device)
            self._event(f"load guard step failed: {exc}", Severity.WARNING)

    # -- acting --------------------------------------------------------------------------------
    async def _reclaim(self, free: int, available: int | None) -> None:
        after = "" if available is None else f" (available after reclaim {_gib(available)})"
        reason = (f"free for CUDA (MemFree) {_gib(free)} is under the "
                  f"{_gib(self.free_floor)} floor{after}")
        self._event(f"{reason}: dropping caches and compacting", Severity.WARNING)
        try:
            results = await self.actions.reclaim(by="guard", reason=reason)
        except ReadOnlyError as exc:
            self._event(str(exc), Severity.WARNING)
            return
        for result in results:
            self._event(result.message, Severity.INFO if result.ok else Severity.WARNING)

    async def _stop_loading(self, available: int, held: float) -> None:
        reason = (f"available memory (MemAvailable) {_gib(available)} stayed under the hard "
                  f"floor {_gib(self.hard_floor)} for {held:.0f} s")
        if not self.loading:
            if not self._warned_nothing_to_stop:
                self._warned_nothing_to_stop = True
                self._event(f"{reason}; no container loading from sparktui to stop: free "
                            "memory now or the box may wedge", Severity.ALARM)
                self.audit.record(self.device, "guard.warn", self.device, "nothing to stop",
                                  reason=reason)
            return
        for container_id, (name, stop, told) in list(self.loading.items()):
            why = f"{reason} while {name} was loading: stopped it before the box wedges"
            self._event(f"stopping {name}: {why}", Severity.ALARM)
            if told is not None:
                told(why)  # before the stop: the deploy sees the exit right after
            try:
                await stop()
            except Exception as exc:
                self.audit.record(self.device, "guard.stop-container", name, f"failed: {exc}",
                                  id=container_id, reason=why)
                self._event(f"could not stop {name}: {exc}", Severity.ALARM)
                continue
            self.loading.pop(container_id, None)
            self.stopped.append((name, why))
            self.audit.record(self.device, "guard.stop-container", name, "ok",
                              id=container_id, reason=why)
            self._event(f"{name} stopped by the load guard: {why}", Severity.ALARM)
        self._below_since = None

    def _event(self, text: str, severity: Severity) -> None:
        self.telemetry.post_event(DeviceEvent(self.device, "guard", text, severity))


class GuardHub:
    """The guards of every device; follows deploys through DEPLOY_LOADING_HOOKS."""

    def __init__(self, settings: Settings, audit: AuditLog,
                 telemetry_of: Callable[[str], TelemetryService | None]) -> None:
        self.settings = settings
        self.audit = audit
        self.telemetry_of = telemetry_of
        self.guards: dict[str, LoadGuard] = {}
        DEPLOY_LOADING_HOOKS.append(self._on_deploy)
        CONTAINER_STARTED_HOOKS.append(self._on_started)
        self._probes: set[asyncio.Task[None]] = set()

    def guard(self, device: str) -> LoadGuard | None:
        guard = self.guards.get(device)
        if guard is None:
            telemetry = self.telemetry_of(device)
            if telemetry is None:
                return None
            actions = MemoryActions(telemetry.link, read_only=self.settings.read_only,
                                    audit=self.audit)
            guard = self.guards[device] = LoadGuard(telemetry, actions, self.settings,
                                                    audit=self.audit)
        return guard

    def _on_deploy(self, event: DeployLoading) -> None:
        guard = self.guard(event.device)
        if guard is None:
            return
        if event.loading and event.stop is not None:
            guard.watch_load(event.container_id, event.name, event.stop, event.stopped_because)
        else:
            guard.load_finished(event.container_id, event.answered)

    def _on_started(self, service: ContainerService, container_id: str) -> None:
        """A container started from sparktui loads until its first published port answers."""
        guard = self.guard(service.device)
        if guard is None or container_id in guard.loading:
            return

        async def stop() -> None:
            await service.run_action("kill", container_id)

        guard.watch_load(container_id, service.name_of(container_id), stop)
        task = asyncio.get_running_loop().create_task(
            self._until_it_answers(guard, service, container_id),
            name=f"guard-probe:{container_id[:12]}")
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _until_it_answers(self, guard: LoadGuard, service: ContainerService,
                                container_id: str) -> None:
        from sparktui.services.deploy import http_probe

        deadline = time.monotonic() + STARTED_LOAD_LIMIT_S
        seen_running = False  # the events stream may still call it "created" for a moment
        try:
            while container_id in guard.loading and time.monotonic() < deadline:
                row = service.containers.get(container_id)
                entry = guard.loading.get(container_id)
                if row is not None and entry is not None and entry[0] != row.name:
                    guard.loading[container_id] = (row.name, *entry[1:])  # known by now
                seen_running = seen_running or (row is not None and row.running)
                if seen_running and (row is None or not row.running):
                    guard.load_finished(container_id, False)
                    return
                port = published_port(row.ports) if row is not None else None
                if port is not None:
                    status, _ = await http_probe(service, port, "/")
                    if status is not None and status < 500:
                        guard.load_finished(container_id, True)
                        return
                await asyncio.sleep(PROBE_EVERY_S)
        except Exception:
            log.exception("%s: watching %s's load failed", service.device, container_id[:12])
        guard.load_finished(container_id, False)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            CONTAINER_STARTED_HOOKS.remove(self._on_started)
        for task in list(self._probes):
            task.cancel()
        with contextlib.suppress(ValueError):
            DEPLOY_LOADING_HOOKS.remove(self._on_deploy)
        await asyncio.gather(*(g.close() for g in self.guards.values()))
