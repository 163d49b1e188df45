"""Telemetry of one device, streamed over its persistent connection.

Per device, three long-lived channels share the DeviceLink's one SSH connection,
each opened once per connection, so the steady state starts no SSH exec (every
exec makes the user's login shell read their .bashrc):
- `nvidia-smi --query-gpu=... -lms N`;
- a shell loop printing /proc and /sys figures (sparktui.core.hostscript);
- a shell loop listing the GPU processes with their user, cgroup and command line
  (sparktui.core.gpuprocs), whose period follows the screen through control lines
  on its stdin instead of a restart.
Each owner re-issues its command on every new connection the link hands out.
Listeners get an immutable DeviceTelemetry after every completed tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sparktui.core import nvsmi
from sparktui.core.device import LinkStatus
from sparktui.core.events import DeviceEvent, Severity
from sparktui.core.gpuhealth import ReasonCounter, StuckLowPower, parse_xid
from sparktui.core.gpuprocs import (
    GpuProcsBlock,
    GpuProcsBlockParser,
    ProcessDetail,
    control_line,
    gpuprocs_command,
)
from sparktui.core.history import History
from sparktui.core.hostscript import hoststat_command
from sparktui.core.hoststat import HostSample, HostSampler, HostStatBlockParser
from sparktui.core.memtruth import MemoryTruth, memory_truth
from sparktui.core.nvsmi import GpuSample, NvsmiFailure, NvsmiFailureKind
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.gpu_processes import (  # re-exported: the processes' own module
    GpuProcess,
    join_processes,
    mib_to_bytes,
)
from sparktui.services.link import DeviceLink
from sparktui.transport.base import (
    CommandResult,
    ConnectionLost,
    LineStream,
    StreamStalled,
    Transport,
)

if TYPE_CHECKING:  # services.gb10 builds on this module
    from sparktui.services.gb10 import Gb10Services
log = logging.getLogger(__name__)

GIB = 1024**3
# Each poll of the process list costs the device an nvidia-smi start (driver
# init), far more than a tick of the other streams: poll briskly only while
# someone looks at the list. The period changes by a control line, not a restart.
PROCESS_POLL_S = 3.0  # while the process list is on screen
PROCESS_POLL_IDLE_S = 30.0  # otherwise: the GPU-process memory total stays roughly current
RESTART_DELAY_S = 5.0  # before re-issuing a stream that ended by itself


def stall_bound(period_s: float) -> float:
    """How long a stream of this period may stay silent before it counts as stalled."""
    return 3 * period_s + 5.0


MAX_EVENTS = 50  # events kept with the telemetry (the flight recorder keeps them all)


@dataclass(frozen=True, slots=True)
class MemoryView:
    """The memory figure to show for a GPU, labelled so nobody mistakes one for the other."""

    label: str  # "unified" (host RAM shared with the GPU) or "GPU"
    used_bytes: int | None
    total_bytes: int | None
    gpu_processes_bytes: int | None  # what the GPU processes themselves hold
    unified: bool

    @property
    def used_pct(self) -> float | None:
        if not self.used_bytes or not self.total_bytes:
            return None if self.total_bytes is None else 0.0
        return 100.0 * self.used_bytes / self.total_bytes


@dataclass(frozen=True)
class DeviceTelemetry:
    """Everything known about one device at one moment."""

    device: str
    t: float = field(default_factory=time.monotonic)
    gpus: tuple[GpuSample, ...] = ()
    host: HostSample | None = None
    processes: tuple[GpuProcess, ...] = ()
    driver_version: str | None = None
    dropped_fields: tuple[str, ...] = ()
    gpu_problem: str | None = None  # why there are no GPU figures, when there are none
    host_problem: str | None = None
    memory_floor_bytes: int = 8 * GIB
    temperature_alert_c: float = 85.0
    power_alert_w: float | None = None
    events: tuple[DeviceEvent, ...] = ()  # the newest last; at most MAX_EVENTS
    reason_seconds: tuple[tuple[int, str, float], ...] = ()  # (GPU, reason, s active)

    @property
    def unified_memory(self) -> bool:
        return bool(self.gpus) and not any(g.has_memory for g in self.gpus)

    def memory_view(self, gpu: GpuSample) -> MemoryView:
        apps = [p.used_memory_mib for p in self.processes
                if p.used_memory_mib is not None and (p.gpu_uuid == gpu.uuid or not gpu.uuid)]
        apps_bytes = mib_to_bytes(sum(apps)) if apps else None
        if gpu.has_memory:
            return MemoryView("GPU", mib_to_bytes(gpu.mem_used_mib),
                              mib_to_bytes(gpu.mem_total_mib), apps_bytes, False)
        host = self.host
        return MemoryView("unified", host.mem_used if host else None,
                          host.mem_total if host else None, apps_bytes, True)

    @property
    def gpu_processes_bytes(self) -> int | None:
        """What every GPU process holds together; None when the list is unknown or empty."""
        sizes = [p.used_memory_mib for p in self.processes if p.used_memory_mib is not None]
        return int(sum(sizes) * 1024**2) if sizes else None

    @property
    def memory_truth(self) -> MemoryTruth | None:
        """Every memory figure a GB10 owner needs, labelled (None before the first block)."""
        host = self.host
        if host is None or host.mem is None:
            return None
        return memory_truth(host.mem, pressure=host.pressure, buddy=host.buddy,
                            gpu_processes_bytes=self.gpu_processes_bytes)

    @property
    def memory_pressure(self) -> bool:
        host = self.host
        return (host is not None and host.mem_available is not None
                and host.mem_available < self.memory_floor_bytes)

    @property
    def alerts(self) -> tuple[str, ...]:
        """Conditions worth a highlight, as short sentences."""
        return tuple(alert.text for alert in self.alert_items)

    @property
    def alert_items(self) -> tuple[Alert, ...]:
        """The same conditions with a stable key each, so a notifier can tell when one
        starts and when it clears while its figures move."""
        out: list[Alert] = []
        if self.memory_pressure and self.host and self.host.mem_available is not None:
            out.append(Alert(f"{self.device}/memory",
                             f"{self.device}: only {self.host.mem_available / GIB:.1f} GiB "
                             f"memory available (floor {self.memory_floor_bytes / GIB:.0f} GiB)"))
        for gpu in self.gpus:
            where = f"{self.device}/gpu{gpu.index}"
            if gpu.temp_c is not None and gpu.temp_c >= self.temperature_alert_c:
                out.append(Alert(f"{where}/temperature",
                                 f"{self.device} GPU {gpu.index}: {gpu.temp_c:.0f} °C "
                                 f"(alert at {self.temperature_alert_c:.0f})"))
            if (self.power_alert_w is not None and gpu.power_w is not None
                    and gpu.power_w >= self.power_alert_w):
                out.append(Alert(f"{where}/power",
                                 f"{self.device} GPU {gpu.index}: {gpu.power_w:.0f} W "
                                 f"(alert at {self.power_alert_w:.0f})"))
            if nvsmi.event_severity(gpu.event_reasons) is nvsmi.ReasonSeverity.ALARMING:
                reasons = ", ".join(gpu.event_reason_names)
                out.append(Alert(f"{where}/clocks",
                                 f"{self.device} GPU {gpu.index}: clocks held back by "
                                 f"{reasons}"))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Alert:
    """One condition of the alert banner: `key` names it, `text` says it now."""

    key: str
    text: str


Listener = Callable[[DeviceTelemetry], None]

class TelemetryService:
    """Streams and keeps the telemetry of one device."""

    def __init__(self, link: DeviceLink, settings: Settings, *,
                 clock: Callable[[], float] = time.monotonic,
                 audit: AuditLog | None = None) -> None:
        self.link = link
        self.settings = settings
        self.audit = audit or AuditLog()  # a kill changes the device: it is recorded
        self._clock = clock
        self.interval_ms = max(100, int(settings.refresh_interval * 1000))
        self.history = History(settings.history_minutes * 60, settings.refresh_interval)
        self.fields = list(nvsmi.DEFAULT_FIELDS)
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe_link: Callable[[], None] | None = None
        self._gap_for: float | None = None  # the link's lost_at the history's gap marks
        self._watching_processes = True  # the UI says when it is not; the CLI always is
        self._process_control = asyncio.Event()  # a control line is due on the process loop
        self._process_period_sent: int | None = None  # the period the running loop has
        self._process_poll_wanted = False
        self.process_polls = 0  # blocks received from the process loop, changed or not
        self.stalls = 0  # streams restarted because they stopped delivering
        # the GPU indices of the last complete tick (or, before one, of the driver query):
        # a tick is published once all of them have reported, never piecemeal
        self._tick_indices: frozenset[int] = frozenset()
        self.reasons = ReasonCounter()
        self._stuck: dict[int, StuckLowPower] = {}
        self._state = DeviceTelemetry(
            device=link.name,
            memory_floor_bytes=int(settings.memory_floor_gib * GIB),
            temperature_alert_c=settings.temperature_alert_c,
            power_alert_w=settings.power_alert_w)

    @property
    def latest(self) -> DeviceTelemetry:
        return self._state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _update(self, **changes: object) -> None:
        self._state = dataclasses.replace(self._state, t=self._clock(), **changes)
        for listener in list(self._listeners):
            try:
                listener(self._state)
            except Exception:
                log.exception("telemetry listener failed for %s", self.link.name)

    def post_event(self, event: DeviceEvent) -> None:
        """Publish an event (guard step, Xid, power advice) with the device's telemetry."""
        log.info("%s: %s: %s", event.device, event.kind, event.text)  # audit has the rest
        self._update(events=(*self._state.events, event)[-MAX_EVENTS:])

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        name = self.link.name
        self._unsubscribe_link = self.link.subscribe(self._link_changed)
        self._tasks = [
            loop.create_task(self._own(self._gpu_stream), name=f"gpu:{name}"),
            loop.create_task(self._own(self._host_stream), name=f"host:{name}"),
            loop.create_task(self._own(self._process_stream), name=f"procs:{name}"),
        ]

    def _link_changed(self, _status: LinkStatus) -> None:
        lost = self.link.lost_at
        if lost is not None and lost != self._gap_for:
            # the connection went: no figure is known from here until the next sample
            self._gap_for = lost
            self.history.mark_gap(self._clock())

    async def close(self) -> None:
        unsubscribe, self._unsubscribe_link = self._unsubscribe_link, None
        if unsubscribe is not None:
            unsubscribe()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _own(self, work: Callable[[Transport], object]) -> None:
        """Run `work` on every new connection; a lost connection waits for the next."""
        async for transport in self.link.sessions():
            while transport.is_alive():
                try:
                    await work(transport)  # type: ignore[misc]
                except ConnectionLost:
                    break
                except Exception:
                    # a bug or a surprise from the device must not end the
                    # stream for the rest of the session: log it, try again
                    log.exception("%s: %s failed; retrying", self.link.name,
                                  getattr(work, "__name__", "telemetry"))
                    await asyncio.sleep(RESTART_DELAY_S)

    # -- GPU stream --------------------------------------------------------------
    async def _gpu_stream(self, transport: Transport) -> None:
        if self._state.driver_version is None:
            result = await transport.run(nvsmi.DRIVER_VERSION_COMMAND, timeout=15)
            if result.ok:
                self._update(driver_version=nvsmi.parse_driver_version(result.stdout))
                if not self._tick_indices:  # one line per GPU: the first tick's size
                    count = sum(1 for line in result.stdout.splitlines() if line.strip())
                    self._tick_indices = frozenset(range(count))
        while transport.is_alive():
            parser = nvsmi.CsvRowParser(self.fields)
            noise: list[str] = []  # lines that are not rows: the error text, if any
            stream = await transport.stream(
                nvsmi.build_query_command(self.fields, self.interval_ms),
                stall_after=stall_bound(self.interval_ms / 1000))
            try:
                rows_seen = await self._read_gpu_rows(stream, parser, noise)
            except StreamStalled as exc:
                # the link may be fine: restart now (closing stopped it on the device)
                self._update(gpu_problem=f"nvidia-smi is not answering ({exc}); restarted")
                self.stalls += 1
                await asyncio.sleep(RESTART_DELAY_S)  # without waiting for the link
                continue
            finally:
                await stream.close()
            failure = nvsmi.classify_failure("\n".join(noise[-20:]), stream.stderr,
                                             stream.exit_status)
            if failure is not None and self._drop_field(failure):
                continue  # re-issue at once without the rejected field
            if failure is not None:
                self._update(gpu_problem=failure.message)
            elif not rows_seen:
                self._update(gpu_problem="nvidia-smi printed no GPU rows")
            await asyncio.sleep(RESTART_DELAY_S)

    async def _read_gpu_rows(self, stream, parser: nvsmi.CsvRowParser,
                             noise: list[str]) -> bool:
        rows_seen = False
        tick: dict[int, GpuSample] = {}  # rows of the tick being read
        published = False
        async for line in stream:
            sample = parser.parse_line(line, self._clock())
            if sample is None:
                xid = parse_xid(line)
                if xid is not None:  # loop mode prints Xid event text between rows
                    self.post_event(DeviceEvent(self.link.name, "xid",
                                                f"{xid.describe()} ({xid.detail[:200]})",
                                                Severity.ALARM))
                elif len(noise) < 200:
                    noise.append(line)
                continue
            self._check_health(sample)
            rows_seen = True
            # a row whose index is not above the previous one starts a new tick,
            # so the one before was whole: it fixes which GPUs a tick has
            if tick and sample.index <= max(tick):
                if not published:
                    self._publish_gpus(tick)
                self._tick_indices = frozenset(tick)
                tick, published = {}, False
            tick[sample.index] = sample
            self.history.record_gpu(sample)
            if not published and self._tick_indices and self._tick_indices <= tick.keys():
                self._publish_gpus(tick)
                published = True
        return rows_seen  # a tick cut short by the stream's end is never published

    def _check_health(self, sample: GpuSample) -> None:
        self.reasons.update(sample)
        advice = self._stuck.setdefault(sample.index, StuckLowPower()).update(sample)
        if advice is not None:
            self.post_event(DeviceEvent(self.link.name, "power", advice, Severity.WARNING))

    def _publish_gpus(self, tick: dict[int, GpuSample]) -> None:
        gpus = tuple(tick[i] for i in sorted(tick))
        changes: dict[str, object] = {}
        processes = self._state.processes
        if any(p.gpu_index is None for p in processes):
            # polled before this GPU's first tick: attach the index now, not a poll later
            index_of = {g.uuid: g.index for g in gpus if g.uuid}
            placed = tuple(p if p.gpu_index is not None
                           else dataclasses.replace(p, gpu_index=index_of.get(p.gpu_uuid))
                           for p in processes)
            if placed != processes:
                changes["processes"] = placed
        reasons = tuple((gpu, name, secs) for gpu, counts in sorted(self.reasons.seconds.items())
                        for name, secs in counts.items())
        if reasons != self._state.reason_seconds:
            changes["reason_seconds"] = reasons
        if changes or gpus != self._state.gpus or self._state.gpu_problem is not None:
            self._update(gpus=gpus, gpu_problem=None, **changes)

    def _drop_field(self, failure: NvsmiFailure) -> bool:
        if failure.kind is not NvsmiFailureKind.REJECTED_FIELD:
            return False
        error_text = (f'Field "{failure.field}" is not a valid field to query.'
                      if failure.field else failure.detail or failure.message)
        remaining = nvsmi.drop_rejected_field(self.fields, error_text)
        if remaining is None or remaining == self.fields:
            return False
        dropped = [f for f in self.fields if f not in remaining]
        log.warning("%s: nvidia-smi rejected %s; carrying on without it",
                    self.link.name, ", ".join(dropped))
        self.fields = remaining
        self._update(dropped_fields=(*self._state.dropped_fields, *dropped))
        return True

    # -- host stream ---------------------------------------------------------------
    async def _host_stream(self, transport: Transport) -> None:
        sampler = HostSampler()
        while transport.is_alive():
            parser = HostStatBlockParser()
            stream = await transport.stream(hoststat_command(self.interval_ms),
                                            stall_after=stall_bound(self.interval_ms / 1000))
            try:
                async for line in stream:
                    snapshot = parser.feed_line(line)
                    if snapshot is None:
                        continue
                    sample = sampler.update(snapshot, t=self._clock())
                    self.history.record_host(sample)
                    self._update(host=sample, host_problem=None)
            except StreamStalled as exc:
                self._update(host_problem=f"host figures not answering ({exc}); restarted")
                self.stalls += 1
                await asyncio.sleep(RESTART_DELAY_S)  # without waiting for the link
                continue
            finally:
                await stream.close()
            reason = (stream.stderr or "").strip().splitlines()
            self._update(host_problem="host figures stopped: "
                         + (reason[-1] if reason else f"exit status {stream.exit_status}"))
            await asyncio.sleep(RESTART_DELAY_S)

    # -- processes -----------------------------------------------------------------
    @property
    def process_period_ms(self) -> int:
        """How often the process loop should poll, given what is on screen."""
        return int(1000 * (PROCESS_POLL_S if self._watching_processes else PROCESS_POLL_IDLE_S))

    def watch_processes(self, watching: bool) -> None:
        """Poll the process list every few seconds while shown, rarely otherwise.

        The running loop gets the new period as a control line (and polls at once),
        so a tab switch costs the device no new exec and no new channel.
        """
        was, self._watching_processes = self._watching_processes, watching
        if watching and not was:
            self._process_poll_wanted = True  # a list opened now shows a fresh sample
        self._process_control.set()

    def request_process_poll(self) -> None:
        """Ask the process loop for a fresh list now (e.g. after a kill)."""
        self._process_poll_wanted = True
        self._process_control.set()

    async def _process_stream(self, transport: Transport) -> None:
        while transport.is_alive():
            parser = GpuProcsBlockParser()
            details: dict[int, ProcessDetail] = {}  # the loop sends them once per pid
            period = self.process_period_ms
            # the period changes under a running loop (control lines): bound by the longest
            stream = await transport.stream(gpuprocs_command(period),
                                            stall_after=stall_bound(PROCESS_POLL_IDLE_S))
            self._process_period_sent = period
            sender = asyncio.get_running_loop().create_task(
                self._send_process_controls(stream), name=f"procs-control:{self.link.name}")
            try:
                async for line in stream:
                    block = parser.feed_line(line)
                    if block is not None:
                        self._publish_processes(block, details)
            except StreamStalled as exc:
                log.warning("%s: the GPU-process loop is not answering (%s); restarted",
                            self.link.name, exc)
                self.stalls += 1
                await asyncio.sleep(RESTART_DELAY_S)  # without waiting for the link
                continue
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                await stream.close()
            reason = (stream.stderr or "").strip().splitlines()
            log.warning("%s: the GPU-process loop ended (%s); restarting in %.0f s",
                        self.link.name,
                        reason[-1] if reason else f"exit status {stream.exit_status}",
                        RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)

    async def _send_process_controls(self, stream: LineStream) -> None:
        """Write the loop's control lines as they become due (see sparktui.core.gpuprocs)."""
        while True:
            await self._process_control.wait()
            self._process_control.clear()
            period = self.process_period_ms
            if period != self._process_period_sent:
                line = control_line(period)  # a new period also polls at once
            elif self._process_poll_wanted:
                line = control_line()
            else:
                continue
            self._process_poll_wanted = False
            try:
                await stream.send(line)
            except ConnectionLost:
                return  # the stream's reader sees the end and restarts the loop
            self._process_period_sent = period

    def _publish_processes(self, block: GpuProcsBlock,
                           details: dict[int, ProcessDetail]) -> None:
        self.process_polls += 1
        if not block.ok:
            return  # the GPU stream reports nvidia-smi's problems; no second message
        details.update(block.details)
        listed = {app.pid for app in block.apps}
        for pid in [pid for pid in details if pid not in listed]:
            del details[pid]  # gone: a pid that comes back is described afresh
        processes = join_processes(block.apps, details, self._state.gpus)
        if processes != self._state.processes:
            self._update(processes=processes)

    async def kill_process(self, pid: int, *, force: bool = False) -> CommandResult:
        """SIGTERM (or SIGKILL) a process on the device; refused in read-only mode."""
        if self.settings.read_only:
            raise ReadOnlyError(f"read-only mode: not sending a signal to {pid} on "
                                f"{self.link.name}")
        signal_name = "KILL" if force else "TERM"
        try:
            result = await self.link.run(f"kill -{signal_name} {shlex.quote(str(int(pid)))}",
                                         timeout=15)
        except ConnectionLost as exc:
            self.audit.record(self.link.name, "kill-process", str(pid), f"failed: {exc}",
                              signal=signal_name)
            raise
        self.audit.record(self.link.name, "kill-process", str(pid),
                          "sent" if result.ok else f"failed (exit {result.exit_status})",
                          signal=signal_name, stderr=result.stderr.strip()[:500] or None)
        self.request_process_poll()
        return result


class TelemetryHub:
    """The telemetry services of every device in a fleet."""

    def __init__(self, settings: Settings, *, audit: AuditLog | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self.services: dict[str, TelemetryService] = {}
        self._watching_processes = True
        self.gb10: Gb10Services | None = None  # guards, flight recorder, post-mortems
        #: a hub fed from elsewhere (Prometheus) names a device the fleet lacks: the
        #: session adds it (set by the Session; live SSH hubs never call it)
        self.on_device_found: Callable[[str], None] | None = None

    def watch_processes(self, watching: bool) -> None:
        """Tell every device whether a process list is on screen (see PROCESS_POLL_S)."""
        self._watching_processes = watching
        for service in self.services.values():
            service.watch_processes(watching)

    def attach(self, link: DeviceLink) -> TelemetryService:
        service = self.services.get(link.name)
        if service is None:
            service = self.services[link.name] = TelemetryService(link, self.settings,
                                                                  audit=self.audit)
            service.watch_processes(self._watching_processes)
            with contextlib.suppress(RuntimeError):  # no running loop: started later
                service.start()
            if self.gb10 is not None:
                self.gb10.attach(service)
        return service

    def get(self, name: str) -> TelemetryService | None:
        return self.services.get(name)

    async def detach(self, name: str) -> None:
        """Stop and forget a device's telemetry (the device left the session)."""
        service = self.services.pop(name, None)
        if service is not None:
            await service.close()

    async def close(self) -> None:
        if self.gb10 is not None:
            await self.gb10.close()  # its last flush and watches first: they read the streams
        await asyncio.gather(*(s.close() for s in self.services.values()))
