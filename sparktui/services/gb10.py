"""The GB10 features of a fleet, wired together: load guards, flight recorder, post-mortems.

One object per app (or CLI run) that the TelemetryHub hands every new device
to: the device gets a flight-recorder ring, a post-mortem watch (fed by that
ring) and, on first use, a load guard with its drop-caches/compact actions.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sparktui.services.audit import AuditLog
from sparktui.services.config import Settings
from sparktui.services.containers import CONTAINER_EVENT_HOOKS
from sparktui.services.flight import FlightRecorder
from sparktui.services.loadguard import GuardHub, LoadGuard
from sparktui.services.memory_actions import MemoryActions
from sparktui.services.postmortem import PostMortem, PostmortemWatch
from sparktui.services.telemetry import TelemetryService

log = logging.getLogger(__name__)


def make_gb10(settings: Settings, *, keep: bool) -> Gb10Services:
    """The real app's (keep: recordings and post-mortems in the data dir) or a throwaway
    one in a temporary directory (tests, which must not write the user's data dir)."""
    if keep:
        return Gb10Services(settings)
    scratch = Path(tempfile.mkdtemp(prefix="sparktui-gb10-"))
    return Gb10Services(settings, flight_root=scratch / "flight",
                        store_root=scratch / "postmortems", audit=AuditLog(scratch / "audit"),
                        scratch=scratch)


class Gb10Services:
    def __init__(self, settings: Settings, *, audit: AuditLog | None = None,
                 flight_root: Path | None = None, store_root: Path | None = None,
                 scratch: Path | None = None) -> None:
        self.settings = settings
        self.scratch = scratch  # removed at close
        self.audit = audit or AuditLog()
        self.flight_root = flight_root
        self.store_root = store_root
        self.services: dict[str, TelemetryService] = {}
        self.flight = FlightRecorder(settings, root=flight_root)
        self.guards = GuardHub(settings, self.audit, self.services.get)
        self.watches: dict[str, PostmortemWatch] = {}
        #: called with every new post-mortem (the UI offers to show it)
        self.on_report: list[Callable[[PostMortem], None]] = []
        CONTAINER_EVENT_HOOKS.append(self.flight.record_container)

    def attach(self, service: TelemetryService) -> None:
        name = service.link.name
        if name in self.services:
            return
        self.services[name] = service
        self.flight.attach(service, service.link)
        self.watches[name] = PostmortemWatch(
            service, minutes=self.settings.flight_recorder_minutes or 5.0,
            flight_root=self.flight_root, store_root=self.store_root,
            on_report=self._reported, flush=self.flight.flush)

    def _reported(self, report: PostMortem) -> None:
        for callback in list(self.on_report):
            try:
                callback(report)
            except Exception:
                log.exception("post-mortem listener failed")

    def guard(self, device: str) -> LoadGuard | None:
        return self.guards.guard(device)

    def actions(self, device: str) -> MemoryActions | None:
        guard = self.guard(device)
        return None if guard is None else guard.actions

    def latest_report(self, device: str) -> PostMortem | None:
        watch = self.watches.get(device)
        if watch is not None and watch.reports:
            return watch.reports[-1]
        from sparktui.services.postmortem import latest_postmortem

        return latest_postmortem(device, self.store_root)

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            CONTAINER_EVENT_HOOKS.remove(self.flight.record_container)
        for watch in self.watches.values():
            await watch.close()
        await self.guards.close()
        await self.flight.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
