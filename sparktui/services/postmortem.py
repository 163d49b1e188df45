"""Post-mortems: when a device comes back after a drop, say why it dropped.

Per device, the watch remembers the boot id and uptime of the last host block
(also on disk, so a restart of sparktui still knows). When blocks come again
after the link dropped, or with another boot id:
- same boot id: the box stayed up, only the network went (no command run);
- a new boot id: one command reads what the previous boot left (journal tail,
  pstore; core.postmortem.EVIDENCE_COMMAND) and core.postmortem.classify names
  the cause. The flight recorder's minutes before the drop become the charts.
Each post-mortem is saved as JSON under data_dir()/postmortems/<device>/ and
announced as a DeviceEvent; `sparktui postmortem DEVICE` reads the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparktui.core.device import LinkState, LinkStatus
from sparktui.core.events import DeviceEvent, Severity
from sparktui.core.postmortem import EVIDENCE_COMMAND, Cause, Evidence, Verdict, classify
from sparktui.core.recording import KIND_EVENT, Record, decode_gpus, decode_host
from sparktui.services.config import data_dir
from sparktui.services.flight import device_dir, read_window
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from sparktui.transport.base import ConnectionLost

log = logging.getLogger(__name__)

GIB = 1024**3
LAST_BOOT_FILE = "last_boot.json"
SAVE_EVERY_S = 15.0  # the last uptime seen is written this often (and on every change)
MAX_POINTS = 600
EVIDENCE_TIMEOUT_S = 60.0
UPTIME_SLACK_S = 300.0  # clocks of two machines disagree by this much at most


def postmortem_root() -> Path:
    return data_dir() / "postmortems"


@dataclass
class LastBoot:
    boot_id: str
    uptime_s: float | None
    wall: float  # when it was seen


def load_last_boot(device: str, root: Path | None = None) -> LastBoot | None:
    try:
        data = json.loads((device_dir(device, root) / LAST_BOOT_FILE).read_text("utf-8"))
        return LastBoot(str(data["boot_id"]), data.get("uptime_s"), float(data["wall"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_last_boot(device: str, last: LastBoot, root: Path | None = None) -> None:
    directory = device_dir(device, root)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = directory / (LAST_BOOT_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(last)), "utf-8")
    os.replace(tmp, directory / LAST_BOOT_FILE)


@dataclass
class PostMortem:
    device: str
    verdict: Verdict
    detected_wall: float
    last_seen_wall: float | None
    previous_boot: str | None
    boot_id: str | None
    last_uptime_s: float | None
    journal_problem: str | None = None
    #: the recorded minutes before the drop: "t" (wall) and one list per figure
    series: dict[str, list[float | None]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # recorded events in the window

    def as_json(self) -> dict:
        return {"device": self.device, **self.verdict.as_json(),
                "detected_wall": self.detected_wall, "last_seen_wall": self.last_seen_wall,
                "previous_boot": self.previous_boot, "boot_id": self.boot_id,
                "last_uptime_s": self.last_uptime_s, "journal_problem": self.journal_problem,
                "series": self.series, "events": self.events}

    @classmethod
    def from_json(cls, data: dict) -> PostMortem:
        verdict = Verdict(Cause(data["cause"]), str(data["summary"]),
                          tuple(str(x) for x in data.get("evidence", [])),
                          bool(data.get("rebooted")))
        return cls(str(data["device"]), verdict, float(data["detected_wall"]),
                   data.get("last_seen_wall"), data.get("previous_boot"), data.get("boot_id"),
                   data.get("last_uptime_s"), data.get("journal_problem"),
                   dict(data.get("series") or {}), list(data.get("events") or []))


SERIES = ("free_for_cuda_gib", "available_gib", "psi_some_pct", "gpu_util_pct",
          "gpu_power_w", "gpu_temp_c", "sm_clock_mhz")


def series_from(records: Iterable[Record]) -> tuple[dict[str, list[float | None]], list[str]]:
    """Chart data (one point per host sample, the latest GPU tick beside it) and events."""
    out: dict[str, list[float | None]] = {"t": [], **{name: [] for name in SERIES}}
    events: list[str] = []
    gpu = None
    for record in records:
        if record.kind == "gpus":
            gpus = decode_gpus(record)
            gpu = gpus[0] if gpus else gpu
        elif record.kind == KIND_EVENT and isinstance(record.data, dict):
            stamp = time.strftime("%H:%M:%S", time.localtime(record.t))
            events.append(f"{stamp} {record.data.get('text', '')}"[:300])
        elif record.kind == "host":
            host = decode_host(record)
            if host is None:
                continue
            mem = host.mem
            some = host.pressure.some if host.pressure and host.pressure.some else None
            out["t"].append(record.t)
            out["free_for_cuda_gib"].append(_gib(mem.free if mem else None))
            out["available_gib"].append(_gib(mem.available if mem else None))
            out["psi_some_pct"].append(some.avg10 if some else None)
            out["gpu_util_pct"].append(gpu.util_gpu if gpu else None)
            out["gpu_power_w"].append(gpu.power_w if gpu else None)
            out["gpu_temp_c"].append(gpu.temp_c if gpu else None)
            out["sm_clock_mhz"].append(gpu.sm_clock_mhz if gpu else None)
    step = max(1, len(out["t"]) // MAX_POINTS)
    return {k: v[::step] for k, v in out.items()}, events[-200:]


def _gib(value: int | None) -> float | None:
    return None if value is None else round(value / GIB, 2)


def save_postmortem(report: PostMortem, root: Path | None = None) -> Path:
    directory = (root or postmortem_root()) / device_dir(report.device).name
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(report.detected_wall))
    path = directory / f"{stamp}-{report.verdict.cause.name.lower()}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report.as_json(), handle)
    return path


def latest_postmortem(device: str, root: Path | None = None) -> PostMortem | None:
    directory = (root or postmortem_root()) / device_dir(device).name
    try:
        files = sorted(directory.glob("*.json"))
    except OSError:
        return None
    for path in reversed(files):
        try:
            return PostMortem.from_json(json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


async def analyse(link: DeviceLink, previous: LastBoot | None, *, minutes: float,
                  flight_root: Path | None = None, store_root: Path | None = None,
                  evidence: Evidence | None = None) -> PostMortem:
    """Read the device's evidence (one command), classify, attach the recorded minutes."""
    from sparktui.core.postmortem import parse_evidence

    if evidence is None:
        result = await link.run(EVIDENCE_COMMAND, timeout=EVIDENCE_TIMEOUT_S)
        evidence = parse_evidence(result.stdout)
    verdict = classify(previous.boot_id if previous else None, evidence,
                       previous.uptime_s if previous else None)
    series: dict[str, list[float | None]] = {}
    events: list[str] = []
    if previous is not None:
        end = previous.wall + 2
        records = await asyncio.to_thread(
            lambda: list(read_window(link.name, end - minutes * 60, end, root=flight_root)))
        series, events = series_from(records)
    report = PostMortem(link.name, verdict, time.time(),
                        previous.wall if previous else None,
                        previous.boot_id if previous else None, evidence.boot_id,
                        previous.uptime_s if previous else None, evidence.journal_problem,
                        series, events)
    await asyncio.to_thread(save_postmortem, report, store_root)
    return report


class PostmortemWatch:
    """Watches one device's boot id across drops; makes a post-mortem when it came back."""

    def __init__(self, service: TelemetryService, *, minutes: float,
                 flight_root: Path | None = None, store_root: Path | None = None,
                 on_report: Callable[[PostMortem], None] | None = None,
                 flush: Callable[[], Awaitable[None]] | None = None) -> None:
        self.service = service
        self.flush = flush  # the flight recorder's: its buffer holds the last seconds
        self.link = service.link
        self.minutes = minutes
        self.flight_root = flight_root
        self.store_root = store_root
        self.on_report = on_report
        self.reports: list[PostMortem] = []
        self._last: LastBoot | None = None
        self._loaded = False
        self._saved_at = 0.0
        self._dropped = False
        self._back = False
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = [service.subscribe(self._on_telemetry),
                             self.link.subscribe(self._on_status)]

    def _on_status(self, status: LinkStatus) -> None:
        if status.state is not LinkState.CONNECTED and self._last is not None:
            self._dropped, self._back = True, False
        elif status.state is LinkState.CONNECTED and self._dropped:
            self._back = True  # blocks from now on come over the new connection

    def _on_telemetry(self, telemetry: DeviceTelemetry) -> None:
        host = telemetry.host
        if host is None or host.boot_id is None or self._busy:
            return
        if not self._loaded:
            self._busy = True
            self._spawn(self._load_then(host.boot_id, host.uptime_s))
            return
        self._seen(host.boot_id, host.uptime_s)

    def _seen(self, boot_id: str, uptime: float | None) -> None:
        previous = self._last
        now = time.time()
        changed = previous is None or previous.boot_id != boot_id
        dropped, back = self._dropped, self._back
        # the watch's own state first: posting an event updates the telemetry, which
        # calls back in here, and must find this block already seen
        if not dropped or back or changed:
            self._dropped = self._back = False
        self._last = LastBoot(boot_id, uptime, now)
        if changed or now - self._saved_at >= SAVE_EVERY_S:
            self._saved_at = now
            self._spawn(asyncio.to_thread(save_last_boot, self.link.name, self._last,
                                          self.flight_root))
        if previous is None:
            return
        if changed and uptime is not None and uptime > now - previous.wall + UPTIME_SLACK_S:
            # up for longer than it was away: not a reboot but another machine by that name
            self.service.post_event(DeviceEvent(
                self.link.name, "reboot", "another boot id, but the device has been up longer "
                "than it was away: a different machine under this name (no post-mortem)",
                Severity.INFO))
        elif changed:
            self._busy = True
            self._spawn(self._report(previous))
        elif dropped and back:  # dropped but not back: a block the old connection delivered
            gap = now - previous.wall
            self.service.post_event(DeviceEvent(
                self.link.name, "reboot", f"back after {gap:.0f} s: same boot id, the device "
                "stayed up (network only)", Severity.INFO))

    async def _load_then(self, boot_id: str, uptime: float | None) -> None:
        try:
            self._last = await asyncio.to_thread(load_last_boot, self.link.name,
                                                 self.flight_root)
        finally:
            self._loaded = True
            self._busy = False
        if self._last is not None and self._last.boot_id != boot_id:
            self._dropped = True
        self._seen(boot_id, uptime)

    async def _report(self, previous: LastBoot) -> None:
        try:
            if self.flush is not None:
                await self.flush()
            report = await analyse(self.link, previous, minutes=self.minutes,
                                   flight_root=self.flight_root, store_root=self.store_root)
        except ConnectionLost as exc:
            log.warning("%s: post-mortem evidence unreadable: %s", self.link.name, exc)
            return
        finally:
            self._busy = False
        self.reports.append(report)
        verdict = report.verdict
        self.service.post_event(DeviceEvent(
            self.link.name, "reboot", f"rebooted: {verdict.cause.value}: {verdict.summary}",
            Severity.ALARM))
        if self.on_report is not None:
            self.on_report(report)

    def _spawn(self, work) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("%s: post-mortem watch failed", self.link.name)

        task = asyncio.get_running_loop().create_task(run(), name=f"postmortem:{self.link.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
