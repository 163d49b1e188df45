"""A peer in its own network namespace behind a veth pair, for "silent dead peer" tests.

    with NetnsPeer() as peer:
        server = SshdServer(netns=peer).start()   # listens on peer.peer_address
        ...
        peer.link_down()   # packets are silently dropped: no RST, no FIN
        peer.link_up()

Addresses: a random /30 from 198.18.0.0/16 (RFC 2544 benchmarking space) that overlaps
no address or route already on this machine. NOT 192.0.2.0/24 (TEST-NET-1): on these
machines eth0 itself sits in 192.0.2.0/24 with its gateway at 192.0.2.1.

`link_down()` takes the NAMESPACE side of the veth down. The host side then has no
carrier but keeps its address and connected route ("linkdown"), so the kernel keeps
sending into the veth, where packets are dropped: silent, and nothing leaves this
machine. (Taking the host side down instead deletes that route, and packets to the
peer would then follow the default route out of eth0.)
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import time
import weakref

from tests.infra.common import kill_procs, proc_id, run

NS_PREFIX = "sparktui-"
ADDRESS_POOL = ipaddress.ip_network("198.18.0.0/16")
_LIVE: weakref.WeakSet[NetnsPeer] = weakref.WeakSet()


@functools.lru_cache(maxsize=1)
def netns_support() -> tuple[bool, str]:
    """(ok, reason): whether we can create namespaces and veth pairs here (tried once)."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    if shutil.which("ip") is None:
        return False, "the 'ip' command (iproute2) is not installed"
    try:
        with NetnsPeer():
            pass
    except Exception as exc:
        return False, f"cannot create a network namespace with a veth pair: {exc}"
    return True, ""


def netns_available() -> bool:
    return netns_support()[0]


def _ns_pids(name: str) -> list[int]:
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def _kill_ns_processes(name: str) -> None:
    procs = [p for p in (proc_id(pid) for pid in _ns_pids(name)) if p is not None]
    kill_procs(procs, signal.SIGKILL)


def cleanup_stale() -> None:
    """Delete sparktui-<pid>-* namespaces whose creating process is gone (crashed runs)."""
    out = run(["ip", "netns", "list"], check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{NS_PREFIX}(\d+)-[0-9a-f]+", name)
        if not m:
            continue
        owner = int(m.group(1))
        if owner != os.getpid() and os.path.exists(f"/proc/{owner}"):
            continue  # another live test run owns it
        if owner == os.getpid() and any(p.name == name for p in _LIVE):
            continue
        _kill_ns_processes(name)
        run(["ip", "netns", "del", name], check=False)


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    addrs = json.loads(run(["ip", "-j", "-4", "addr"]).stdout or "[]")
    for link in addrs:
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for r in routes:
        dst = r.get("dst", "")
        if dst and dst != "default":
            try:
                nets.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                pass
    return nets


def _pick_subnet() -> ipaddress.IPv4Network:
    used = _used_networks()
    for _ in range(200):
        base = ADDRESS_POOL.network_address + 4 * random.randrange(ADDRESS_POOL.num_addresses // 4)
        net = ipaddress.ip_network(f"{base}/30")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /30 in {ADDRESS_POOL}")


class NetnsPeer:
    """A network namespace ``sparktui-<pid>-<rand>`` joined to this one by a veth pair.

    host side ``vs<rand>`` = `host_address`, namespace side ``vp<rand>`` = `peer_address`.
    """

    def __init__(self) -> None:
        rand = f"{random.getrandbits(24):06x}"
        self.name = f"{NS_PREFIX}{os.getpid()}-{rand}"
        self.host_if = f"vs{rand}"
        self.peer_if = f"vp{rand}"
        self.subnet: ipaddress.IPv4Network | None = None
        self.host_address = ""
        self.peer_address = ""
        self._created = False

    @property
    def exec_prefix(self) -> list[str]:
        """Prefix that runs a command inside the namespace (``ip netns exec`` execs it)."""
        return ["ip", "netns", "exec", self.name]

    def ns_run(self, *cmd: str, check: bool = True):
        return run([*self.exec_prefix, *cmd], check=check)

    def create(self) -> NetnsPeer:
        cleanup_stale()
        _LIVE.add(self)
        self._created = True
        try:
            self.subnet = _pick_subnet()
            hosts = list(self.subnet.hosts())
            self.host_address, self.peer_address = str(hosts[0]), str(hosts[1])
            run(["ip", "netns", "add", self.name])
            run(["ip", "link", "add", self.host_if, "type", "veth",
                 "peer", "name", self.peer_if, "netns", self.name])  # fmt: skip
            run(["ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_if])
            run(["ip", "link", "set", self.host_if, "up"])
            self.ns_run("ip", "link", "set", "lo", "up")
            self.ns_run("ip", "addr", "add", f"{self.peer_address}/30", "dev", self.peer_if)
            self.ns_run("ip", "link", "set", self.peer_if, "up")
            # Permanent neighbour entries: with the wire cut, an expiring ARP entry
            # would make the kernel answer EHOSTUNREACH, which is not silent.
            host_mac = self._mac(run(["ip", "-j", "link", "show", "dev", self.host_if]).stdout)
            peer_mac = self._mac(self.ns_run("ip", "-j", "link", "show", "dev",
                                             self.peer_if).stdout)
            run(["ip", "neigh", "replace", self.peer_address, "lladdr", peer_mac,
                 "nud", "permanent", "dev", self.host_if])
            self.ns_run("ip", "neigh", "replace", self.host_address, "lladdr", host_mac,
                        "nud", "permanent", "dev", self.peer_if)
            self._wait_carrier(True)
        except Exception:
            self.close()
            raise
        return self

    def _wait_carrier(self, up: bool, timeout: float = 5.0) -> None:
        path = f"/sys/class/net/{self.host_if}/carrier"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path) as fh:
                    if (fh.read().strip() == "1") == up:
                        return
            except OSError:
                if not up:  # reading carrier of a down link fails: that is "down"
                    return
            time.sleep(0.01)
        raise RuntimeError(f"{self.host_if} carrier did not become {'up' if up else 'down'}")

    @staticmethod
    def _mac(link_json: str) -> str:
        return json.loads(link_json)[0]["address"]

    def link_down(self) -> None:
        """Cut the wire silently: no RST, no FIN, packets just vanish."""
        self.ns_run("ip", "link", "set", self.peer_if, "down")
        self._wait_carrier(False)

    def link_up(self) -> None:
        """Reconnect the wire (re-adding addresses/route if they went missing)."""
        self.ns_run("ip", "link", "set", self.peer_if, "up")
        run(["ip", "link", "set", self.host_if, "up"])
        if self.peer_address not in self.ns_run("ip", "-4", "addr", "show", self.peer_if).stdout:
            self.ns_run("ip", "addr", "add", f"{self.peer_address}/30", "dev", self.peer_if)
        if self.host_address not in run(["ip", "-4", "addr", "show", self.host_if]).stdout:
            run(["ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_if])
        self._wait_carrier(True)

    @property
    def is_link_up(self) -> bool:
        try:
            with open(f"/sys/class/net/{self.host_if}/carrier") as fh:
                return fh.read().strip() == "1"
        except OSError:
            return False

    def close(self) -> None:
        """Kill everything in the namespace, delete it and the veth pair. Idempotent."""
        if not self._created:
            return
        self._created = False
        _kill_ns_processes(self.name)
        run(["ip", "link", "del", self.host_if], check=False)
        run(["ip", "netns", "del", self.name], check=False)
        _LIVE.discard(self)

    def __enter__(self) -> NetnsPeer:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetnsPeer {self.name} {self.host_address}<->{self.peer_address}>"


@atexit.register
def _close_all() -> None:
    for peer in list(_LIVE):
        try:
            peer.close()
        except Exception:
            pass
