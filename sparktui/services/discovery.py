"""Finding Sparks on the local network by mDNS (`_ssh._tcp.local.`).

Sparks announce their SSH server over mDNS; NVIDIA's own tools browse with
`avahi-browse -p -r -f -t _ssh._tcp`. We browse with python-zeroconf's
AsyncZeroconf (the synchronous Zeroconf raises EventLoopBlocked inside a
running loop) and resolve each service's hostname and addresses.

Two Spark quirks shape the result:
- a Spark's ConnectX-7 ports carry 169.254.x link-local addresses, and mDNS
  conflicts rename hosts (`spark-1.local` comes back as `spark-1-30.local`),
  so one box can answer several times. Records are merged by address, and
  link-local addresses are dropped: they are only reachable over the direct
  cable, never from the LAN where the user's laptop sits.
- many networks (and containers, CI boxes, VPNs) block multicast. Socket setup
  errors become a one-line "multicast unavailable: <reason>", and the whole
  browse is bounded by `timeout`, so nothing ever hangs.

Nothing here knows about Textual: the UI and `sparktui discover` share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sparktui.core.aio import within
from sparktui.core.sanitize import strip_control

log = logging.getLogger(__name__)

SSH_SERVICE = "_ssh._tcp.local."
DEFAULT_TIMEOUT = 3.0
#: a Spark's factory hostname: spark-1a2b, spark-1, and the renamed spark-1-30
SPARK_NAME = re.compile(r"^spark[-_]", re.IGNORECASE)
#: TXT values that mark a Spark (DGX OS announces none today; kept for custom avahi files)
SPARK_TXT = ("dgx spark", "dgx-spark", "gb10")


@dataclass(frozen=True)
class ServiceRecord:
    """One resolved `_ssh._tcp` service, as the network announced it."""

    instance: str  # "spark-1a2b" (the service name without the type)
    hostname: str  # "spark-1a2b.local" (the SRV target, without the trailing dot)
    port: int
    addresses: tuple[str, ...]
    txt: dict[str, str] = field(default_factory=dict)


@dataclass
class DiscoveredHost:
    """A device found on the network, after merging the records that are the same box."""

    hostname: str
    addresses: list[str]
    port: int
    is_spark: bool
    instance: str
    aliases: list[str] = field(default_factory=list)  # other names the same box answered to
    txt: dict[str, str] = field(default_factory=dict)

    @property
    def destination(self) -> str:
        """What to type (or put in the config) to connect: the .local name."""
        return self.hostname if self.port == 22 else f"{self.hostname}:{self.port}"

    def as_dict(self) -> dict[str, object]:
        return {"hostname": self.hostname, "addresses": list(self.addresses),
                "port": self.port, "spark": self.is_spark, "instance": self.instance,
                "aliases": list(self.aliases), "txt": dict(self.txt)}


@dataclass
class DiscoveryResult:
    hosts: list[DiscoveredHost] = field(default_factory=list)
    #: why nothing could be found ("multicast unavailable: ..."), or None
    problem: str | None = None
    #: records dropped because they had nothing but link-local addresses
    ignored_link_local: int = 0
    elapsed: float = 0.0
    timeout: float = DEFAULT_TIMEOUT

    def summary(self) -> str:
        if self.problem:
            return self.problem
        if not self.hosts:
            return (f"no {SSH_SERVICE.rstrip('.')} services answered in {self.timeout:g} s "
                    "(no devices on this network, or mDNS is filtered)")
        sparks = sum(1 for h in self.hosts if h.is_spark)
        return f"found {len(self.hosts)} host(s), {sparks} of them Sparks"


def is_link_local(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_link_local
    except ValueError:
        return False


def looks_like_spark(instance: str, hostname: str, txt: dict[str, str]) -> bool:
    if SPARK_NAME.match(hostname) or SPARK_NAME.match(instance):
        return True
    text = " ".join(f"{k}={v}" for k, v in txt.items()).lower()
    return any(marker in text for marker in SPARK_TXT)


def _base_rank(name: str) -> tuple[int, int, str]:
    # `spark-1-30.local` is the conflict-renamed twin of `spark-1.local`: prefer the
    # shorter name, then the one without a numeric suffix, for a stable choice
    stem = name.split(".", 1)[0]
    return (len(stem), 1 if re.search(r"-\d+$", stem) else 0, name)


def merge_records(records: Iterable[ServiceRecord]) -> tuple[list[DiscoveredHost], int]:
    """Merge records that share an address; drop link-local addresses.

    Returns the hosts (sorted by hostname) and how many records were ignored
    because link-local addresses were all they had.
    """
    hosts: list[DiscoveredHost] = []
    ignored = 0
    for record in records:
        addresses = [a for a in dict.fromkeys(record.addresses) if not is_link_local(a)]
        if not addresses:
            ignored += 1
            continue
        names = {record.hostname}
        match = next((h for h in hosts if set(h.addresses) & set(addresses)
                      or h.hostname == record.hostname), None)
        if match is None:
            hosts.append(DiscoveredHost(
                hostname=record.hostname, addresses=addresses, port=record.port,
                is_spark=looks_like_spark(record.instance, record.hostname, record.txt),
                instance=record.instance, txt=dict(record.txt)))
            continue
        for address in addresses:
            if address not in match.addresses:
                match.addresses.append(address)
        match.is_spark = match.is_spark or looks_like_spark(
            record.instance, record.hostname, record.txt)
        if _base_rank(record.hostname) < _base_rank(match.hostname):
            names.add(match.hostname)
            match.hostname, match.instance, match.port = (record.hostname, record.instance,
                                                          record.port)
        for name in sorted(names):
            if name != match.hostname and name not in match.aliases:
                match.aliases.append(name)
        for key, value in record.txt.items():
            match.txt.setdefault(key, value)
    for host in hosts:
        host.addresses.sort(key=_address_order)
    hosts.sort(key=lambda h: h.hostname)
    return hosts, ignored


def _address_order(address: str) -> tuple[int, str]:
    return (0 if ":" not in address else 1, address)  # IPv4 first: what people type


def _decode_txt(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (properties or {}).items():
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        v = value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")
        out[strip_control(k, max_line=255)] = strip_control(v, max_line=255)
    return out


def _instance_of(name: str, service_type: str) -> str:
    return name[: -len(service_type) - 1] if name.endswith("." + service_type) else name


async def discover(timeout: float = DEFAULT_TIMEOUT, *,
                   interfaces: Sequence[str] | None = None,
                   service_type: str = SSH_SERVICE) -> DiscoveryResult:
    """Browse for `service_type` for `timeout` seconds and resolve what answered.

    `interfaces` (addresses to bind, e.g. ["127.0.0.1"]) defaults to all of
    them. Never raises for network trouble: the result's `problem` says what
    went wrong. The total time is bounded by about `timeout` + 1 s.
    """
    from zeroconf import InterfaceChoice, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    started = time.monotonic()
    result = DiscoveryResult(timeout=timeout)
    try:
        azc = AsyncZeroconf(interfaces=list(interfaces) if interfaces else InterfaceChoice.All)
    except OSError as exc:  # no multicast route, EPERM in a sandbox, no such device
        result.problem = f"multicast unavailable: {exc.strerror or exc}"
        result.elapsed = time.monotonic() - started
        return result
    except (ValueError, RuntimeError) as exc:
        # a bad interface address; RuntimeError: no interface with an address at all
        result.problem = f"multicast unavailable: {exc}"
        result.elapsed = time.monotonic() - started
        return result

    names: list[str] = []
    records: dict[str, ServiceRecord] = {}
    resolving: set[asyncio.Task[None]] = set()
    resolve_ms = max(200, int(timeout * 1000 * 0.8))

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        try:
            found = await info.async_request(azc.zeroconf, resolve_ms)
        except Exception as exc:  # one bad announcement must not end the browse
            log.warning("mDNS: resolving %s failed: %s", strip_control(name), exc)
            return
        if not found or not info.server:
            return
        # names come from any host on the LAN: clean, and of sane length, from here on
        records[name] = ServiceRecord(
            instance=strip_control(_instance_of(name, service_type), max_line=255),
            hostname=strip_control(info.server.rstrip("."), max_line=255),
            port=info.port or 22,
            addresses=tuple(info.parsed_scoped_addresses()),
            txt=_decode_txt(info.properties))

    def on_change(zeroconf, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed or name in names:
            return
        names.append(name)
        task = asyncio.get_running_loop().create_task(resolve(name))
        resolving.add(task)
        task.add_done_callback(resolving.discard)

    browser = None
    try:
        try:
            browser = AsyncServiceBrowser(azc.zeroconf, [service_type], handlers=[on_change])
        except OSError as exc:
            result.problem = f"multicast unavailable: {exc.strerror or exc}"
        else:
            await asyncio.sleep(timeout)
            if resolving:
                # the last answers get a short grace period; the total stays bounded
                await asyncio.wait(list(resolving), timeout=1.0)
    finally:
        for task in list(resolving):
            task.cancel()
        if browser is not None:
            with contextlib.suppress(Exception):
                await within(browser.async_cancel(), 1.0)
        try:
            await within(azc.async_close(), 1.0)
        except (TimeoutError, OSError) as exc:
            log.warning("mDNS: closing zeroconf: %r", exc)
    result.hosts, result.ignored_link_local = merge_records(records[n] for n in names
                                                            if n in records)
    result.elapsed = time.monotonic() - started
    return result
