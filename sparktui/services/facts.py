"""Device facts, DCGM health and `nvidia-smi -q`, read over a device's link.

Facts come from ONE combined shell command (sparktui.core.facts) and are
cached per device until the user asks for a refresh: they change rarely
(a driver update, a reboot), and the read is not free on a busy box. The
ConnectX-7 traffic counters are cumulative, so two readings give a rate.

Nothing here knows about Textual: the details screen and the CLI share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sparktui.core.facts import (
    DeviceFacts,
    LinkPeer,
    NvsmiSection,
    facts_command,
    match_links,
    parse_facts,
    split_nvsmi_query,
)
from sparktui.services.link import DeviceLink
from sparktui.transport.base import ConnectionLost

FACTS_TIMEOUT = 60.0  # the slowest probes (du, nvidia-smi) run under their own timeouts
HEALTH_TIMEOUT = 60.0
DIAG_TIMEOUT = 300.0  # `dcgmi diag -r 1` takes seconds; a busy GPU can take longer
NVSMI_TIMEOUT = 30.0


class FactsError(Exception):
    """A read failed; the message says why in the user's terms."""


@dataclass(frozen=True)
class FactsReading:
    device: str
    facts: DeviceFacts
    read_at: float  # time.time(), for "read 2 min ago"
    monotonic: float
    #: RDMA device -> (receive, transmit) bytes per second since the previous reading
    throughput: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    device: str
    available: bool  # DCGM is installed
    message: str
    health_output: str = ""
    diag_output: str = ""
    ok: bool | None = None  # None: not run


def _throughput(old: FactsReading | None, new: DeviceFacts,
                now: float) -> dict[str, tuple[float, float]]:
    if old is None or now <= old.monotonic:
        return {}
    elapsed = now - old.monotonic
    before = {p.device: p for p in old.facts.ib_ports}
    rates: dict[str, tuple[float, float]] = {}
    for port in new.ib_ports:
        prev = before.get(port.device)
        if prev is None or None in (port.rx_bytes, port.tx_bytes, prev.rx_bytes,
                                    prev.tx_bytes):
            continue
        rx = port.rx_bytes - prev.rx_bytes  # type: ignore[operator]
        tx = port.tx_bytes - prev.tx_bytes  # type: ignore[operator]
        if rx >= 0 and tx >= 0:  # a counter reset (reboot) gives no rate, not a negative one
            rates[port.device] = (rx / elapsed, tx / elapsed)
    return rates


class FactsService:
    """Facts of every device of a session, cached until refreshed."""

    def __init__(self) -> None:
        self._cache: dict[str, FactsReading] = {}

    def cached(self, device: str) -> FactsReading | None:
        return self._cache.get(device)

    def forget(self, device: str) -> None:
        self._cache.pop(device, None)

    def remember(self, reading: FactsReading) -> None:
        """Keep a reading made elsewhere (a saved one, a fixture) as the device's latest."""
        self._cache[reading.device] = reading

    async def read(self, link: DeviceLink, *, refresh: bool = False) -> FactsReading:
        """The device's facts: from the cache unless `refresh` (or never read)."""
        cached = self._cache.get(link.name)
        if cached is not None and not refresh:
            return cached
        try:
            result = await link.run(facts_command(), timeout=FACTS_TIMEOUT)
        except ConnectionLost as exc:
            raise FactsError(f"cannot read facts of {link.name}: {exc}") from exc
        if result.exit_status != 0 and "@@sparktui@@" not in result.stdout:
            reason = (result.stderr or result.stdout).strip().splitlines()
            raise FactsError(f"reading facts of {link.name} failed (exit "
                             f"{result.exit_status}): {reason[-1] if reason else 'no output'}")
        facts = parse_facts(result.stdout)
        now = time.monotonic()
        reading = FactsReading(link.name, facts, time.time(), now,
                               _throughput(cached, facts, now))
        self._cache[link.name] = reading
        return reading

    def peers(self) -> dict[tuple[str, str], LinkPeer]:
        """ConnectX-7 peers among the devices read so far (see core.facts.match_links)."""
        return match_links({name: r.facts for name, r in self._cache.items()})

    async def health(self, link: DeviceLink) -> HealthReport:
        """`dcgmi health -c` and `dcgmi diag -r 1` where DCGM is installed."""
        try:
            found = await link.run("command -v dcgmi", timeout=15)
            if found.exit_status != 0 or not found.stdout.strip():
                return HealthReport(
                    link.name, False,
                    f"DCGM is not installed on {link.name} (no dcgmi on its PATH): install "
                    "datacenter-gpu-manager and start nv-hostengine for health checks.")
            health = await link.run("dcgmi health -c 2>&1", timeout=HEALTH_TIMEOUT)
            diag = await link.run("dcgmi diag -r 1 2>&1", timeout=DIAG_TIMEOUT)
        except ConnectionLost as exc:
            raise FactsError(f"health check of {link.name} interrupted: {exc}") from exc
        ok = health.exit_status == 0 and diag.exit_status == 0
        verdict = "passed" if ok else (f"reported problems (health exit {health.exit_status}, "
                                       f"diag exit {diag.exit_status})")
        return HealthReport(link.name, True, f"DCGM checks on {link.name} {verdict}",
                            health.stdout + health.stderr, diag.stdout + diag.stderr, ok)

    async def nvsmi_sections(self, link: DeviceLink) -> list[NvsmiSection]:
        """`nvidia-smi -q`, split into sections for a picker."""
        try:
            result = await link.run("nvidia-smi -q 2>&1", timeout=NVSMI_TIMEOUT)
        except ConnectionLost as exc:
            raise FactsError(f"cannot run nvidia-smi -q on {link.name}: {exc}") from exc
        if result.exit_status != 0:
            lines = result.stdout.strip().splitlines() or [result.stderr.strip()]
            raise FactsError(f"nvidia-smi -q on {link.name} failed (exit "
                             f"{result.exit_status}): {lines[-1] if lines else 'no output'}")
        return split_nvsmi_query(result.stdout)
