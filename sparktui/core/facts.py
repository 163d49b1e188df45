"""Device facts: the one shell command that reads them, and pure parsers of its output.

`facts_command()` sends ONE `sh -c FACTS_SCRIPT sparktui-facts` per refresh.
The script prints sections, each introduced by a line `@@sparktui@@ NAME`, and
ends with `@@sparktui@@ end` (a missing end marks a cut-off read). Every probe
tolerates absence (no nvidia-smi, no docker, no /sys/class/infiniband) and the
slow ones run under `timeout`, so a stuck driver or Docker daemon cannot hold
the read up. The simulated Spark answers the same command (sparktui.sim).

Everything below `parse_facts` is pure and never raises on any input: device
text is untrusted (fuzzed in tests/test_devices_facts.py).

ConnectX-7 peers (`match_links`), the heuristic:
1. certain: a neighbour (ARP/NDP entry, `ip neigh`) seen on link L of device A
   is an address of link M of device B: from `ip addr` on M's interfaces, or
   from M's RoCE GIDs (fe80:: from the MAC, ::ffff:a.b.c.d for IPv4), or the
   neighbour's MAC is an interface MAC of M. The cable runs L <-> M.
2. probable: no neighbour entries yet (no traffic since boot), but A and B are
   the only devices of the session with ACTIVE links, and each has exactly one:
   two Sparks on one cable is the common set-up.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

FACTS_MARKER = "sparktui-facts"
SECTION = "@@sparktui@@ "
END = "end"

FACTS_SCRIPT = r"""s() { printf '\n@@sparktui@@ %s\n' "$1"; }
t() { if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi; }
s hostname; hostname 2>/dev/null || cat "${SPARKTUI_ROOT-}/etc/hostname" 2>/dev/null
s kernel; uname -srm 2>/dev/null
s dgx-release; cat "${SPARKTUI_ROOT-}/etc/dgx-release" 2>/dev/null
s os-release; cat "${SPARKTUI_ROOT-}/etc/os-release" 2>/dev/null
s lscpu; LC_ALL=C lscpu 2>/dev/null ||
  { s cpuinfo; cat "${SPARKTUI_ROOT-}/proc/cpuinfo" 2>/dev/null; }
s nproc; nproc 2>/dev/null
s meminfo; cat "${SPARKTUI_ROOT-}/proc/meminfo" 2>/dev/null
s uptime; cat "${SPARKTUI_ROOT-}/proc/uptime" 2>/dev/null
s df-root; df -Pk / 2>/dev/null
hf="$HOME/.cache/huggingface"
s df-cache; [ -d "$hf" ] && df -Pk "$hf" 2>/dev/null
s du-cache; [ -d "$hf" ] && t 10 du -sk "$hf" 2>/dev/null
s nvidia-smi; t 15 nvidia-smi 2>&1
s gpu; t 15 nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>&1
s docker
if command -v docker >/dev/null 2>&1; then t 5 docker version --format '{{.Server.Version}}' 2>&1
else echo absent; fi
s nvidia-ctk
if command -v nvidia-ctk >/dev/null 2>&1; then nvidia-ctk --version 2>&1; else echo absent; fi
s dcgmi; command -v dcgmi 2>/dev/null || echo absent
s infiniband
for d in "${SPARKTUI_ROOT-}"/sys/class/infiniband/*; do
  p="$d/ports/1"; [ -d "$p" ] || continue
  st=; rt=; rx=; tx=; ll=; nets=; gids=
  read -r st < "$p/state"; read -r rt < "$p/rate"; read -r ll < "$p/link_layer"
  read -r rx < "$p/counters/port_rcv_data"; read -r tx < "$p/counters/port_xmit_data"
  for n in "$d"/device/net/*; do
    [ -e "$n" ] || continue; a=; read -r a < "$n/address"
    nets="$nets${nets:+,}${n##*/}=$a"
  done
  for g in 0 1 2 3 4 5 6 7; do
    x=; read -r x < "$p/gids/$g" || continue; gids="$gids${gids:+,}$x"
  done
  printf 'ib\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${d##*/}" "$st" "$rt" "$rx" "$tx" "$ll" \
    "$nets" "$gids"
done 2>/dev/null
s addr; ip -o addr show 2>/dev/null
s neigh; ip neigh show 2>/dev/null
s end
"""

HF_CACHE = "~/.cache/huggingface"


def facts_command() -> str:
    """The command line to send to the device."""
    return f"sh -c {shlex.quote(FACTS_SCRIPT)} {FACTS_MARKER}"


# --- data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DiskUse:
    filesystem: str
    mount: str
    total_bytes: int
    used_bytes: int
    avail_bytes: int

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class IbPort:
    """Port 1 of one RDMA device (/sys/class/infiniband/<device>/ports/1)."""

    device: str  # "rocep1s0f1"
    state: str  # "ACTIVE", "DOWN", ...
    rate: str  # "200 Gb/sec (4X HDR)"
    rate_gbps: float | None
    rx_bytes: int | None  # the counters count 4-byte words: already multiplied
    tx_bytes: int | None
    link_layer: str | None
    netdevs: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    gids: tuple[str, ...] = ()  # as addresses: fe80::..., or the IPv4 of ::ffff:a.b.c.d
    addresses: tuple[str, ...] = ()  # `ip addr` on its interfaces, without prefix length
    neighbours: tuple[tuple[str, str | None], ...] = ()  # (address, MAC) seen on them

    @property
    def active(self) -> bool:
        return self.state.upper() == "ACTIVE"

    @property
    def own_addresses(self) -> set[str]:
        return set(self.addresses) | set(self.gids)


@dataclass(frozen=True)
class DeviceFacts:
    hostname: str | None = None
    product: str | None = None  # DGX_PRETTY_NAME
    dgx_os: str | None = None  # DGX_SWBUILD_VERSION / DGX_OTA_VERSION
    os_name: str | None = None  # PRETTY_NAME of /etc/os-release
    kernel: str | None = None
    arch: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    gpu_names: tuple[str, ...] = ()
    compute_cap: str | None = None
    nvidia_smi_problem: str | None = None
    cpu_model: str | None = None
    cpu_cores: int | None = None
    mem_total_bytes: int | None = None
    mem_available_bytes: int | None = None
    root_disk: DiskUse | None = None
    cache_disk: DiskUse | None = None
    cache_bytes: int | None = None  # du of ~/.cache/huggingface; None: no cache
    uptime_s: float | None = None
    docker_version: str | None = None
    docker_problem: str | None = None  # "not installed", "permission denied ..."
    ctk_version: str | None = None
    dcgmi_path: str | None = None
    ib_ports: tuple[IbPort, ...] = ()
    complete: bool = False  # the end marker arrived
    problems: tuple[str, ...] = ()

    @property
    def is_spark(self) -> bool:
        """A DGX Spark: its dgx-release says so, or its GPU is a GB10."""
        if self.product and "spark" in self.product.lower():
            return True
        return any("GB10" in name.upper() for name in self.gpu_names)


# --- parsing ---------------------------------------------------------------------------

def split_sections(text: str) -> dict[str, str]:
    """Section name -> its text. A repeated name keeps the last one."""
    sections: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(SECTION):
            if name is not None:
                sections[name] = "\n".join(lines).strip("\n")
            name, lines = line[len(SECTION):].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "\n".join(lines).strip("\n")
    return sections


def parse_key_values(text: str) -> dict[str, str]:
    """KEY="value" lines (os-release, dgx-release)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[key] = value
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    """(MemTotal, MemAvailable) in bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^(MemTotal|MemAvailable):\s+(\d+)\s*kB", line)
        if match:
            values[match[1]] = int(match[2]) * 1024
    return values.get("MemTotal"), values.get("MemAvailable")


ARM_PARTS = {"0xd85": "Cortex-X925", "0xd87": "Cortex-A725", "0xd4f": "Neoverse-V2",
             "0xd40": "Neoverse-V1", "0xd0c": "Neoverse-N1", "0xd8e": "Neoverse-N3"}


def _cpu_summary(counts: dict[str, int]) -> str | None:
    if not counts:
        return None
    if len(counts) == 1:
        (name, count), = counts.items()
        return f"{name} ({count} cores)" if count else name
    return " + ".join(f"{count}\u00d7 {name}" if count else name
                      for name, count in counts.items())


def parse_lscpu(text: str) -> str | None:
    """The CPU model; big.LITTLE parts (a Spark's X925 + A725) as `10x A + 10x B`.

    (The x is a multiplication sign in the output.)
    """
    counts: dict[str, int] = {}
    name: str | None = None
    cores = sockets = None

    def close() -> None:
        if name is not None:
            counts[name] = counts.get(name, 0) + (cores or 0) * (sockets or 1)

    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Model name" and value and value != "-":
            close()
            name, cores, sockets = value, None, None
        elif key.startswith("Core(s) per"):
            cores = _int(value)
        elif key in ("Socket(s)", "Cluster(s)"):
            sockets = _int(value)
    close()
    return _cpu_summary(counts)


def parse_cpuinfo(text: str) -> str | None:
    counts: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            continue
        if key == "model name":
            counts[value] = counts.get(value, 0) + 1
        elif key == "cpu part":
            part = ARM_PARTS.get(value.lower(), f"ARM part {value}")
            counts[part] = counts.get(part, 0) + 1
    return _cpu_summary(counts)


_DF_LINE = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%\s+(.+)$")


def parse_df(text: str) -> DiskUse | None:
    """The first data line of `df -Pk PATH` (sizes in KiB)."""
    for line in text.splitlines():
        match = _DF_LINE.match(line.strip())
        if match:
            total, used, avail = (int(match[i]) * 1024 for i in (2, 3, 4))
            return DiskUse(match[1], match[5], total, used, avail)
    return None


def parse_du(text: str) -> int | None:
    match = re.match(r"^\s*(\d+)\s", text + " ")
    return int(match[1]) * 1024 if match else None


def parse_uptime(text: str) -> float | None:
    try:
        value = float(text.split()[0])
    except (IndexError, ValueError):
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


def parse_nvidia_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from the plain `nvidia-smi` screen."""
    driver = re.search(r"Driver Version:\s*([0-9][\w.]*)", text)
    cuda = re.search(r"CUDA Version:\s*([0-9][\d.]*)", text)
    return (driver[1] if driver else None), (cuda[1] if cuda else None)


def parse_gpu_query(text: str) -> tuple[tuple[str, ...], str | None, str | None]:
    """(GPU names, driver version, compute capability) of `--query-gpu=name,driver_version,..`."""
    names: list[str] = []
    driver = cap = None
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 3 or not cells[0] or not re.fullmatch(r"[0-9][\w.]*", cells[1]):
            continue
        names.append(cells[0])
        driver = driver or cells[1]
        cap = cap or (cells[2] if re.fullmatch(r"\d+\.\d+", cells[2]) else None)
    return tuple(names), driver, cap


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def parse_docker(text: str) -> tuple[str | None, str | None]:
    """(server version, problem) from `docker version --format {{.Server.Version}}`."""
    first = _first_line(text)
    if not first or first == "absent":
        return None, "not installed"
    if re.fullmatch(r"\d+\.\d+[\w.+~-]*", first):
        return first, None
    return None, first[:200]


def parse_ctk(text: str) -> str | None:
    if _first_line(text) in ("", "absent"):
        return None
    match = re.search(r"version\s+v?(\d[\w.+~-]*)", text)
    return match[1] if match else None


def gid_address(gid: str) -> str | None:
    """A RoCE GID as an address: fe80::... stays IPv6, ::ffff:a.b.c.d becomes IPv4."""
    try:
        address = ipaddress.IPv6Address(gid.strip())
    except ValueError:
        return None
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return None if address == ipaddress.IPv6Address("::") else str(address)


def parse_ip_addr(text: str) -> dict[str, list[str]]:
    """Interface -> addresses (no prefix length) from `ip -o addr show`."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[2] not in ("inet", "inet6"):
            continue
        name = words[1].split("@", 1)[0]
        address = words[3].split("/", 1)[0]
        out.setdefault(name, []).append(address)
    return out


def parse_ip_neigh(text: str) -> dict[str, list[tuple[str, str | None]]]:
    """Interface -> (address, MAC) from `ip neigh show`; failed entries skipped."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or "dev" not in words or words[-1] in ("FAILED", "INCOMPLETE"):
            continue
        dev = words[words.index("dev") + 1] if words.index("dev") + 1 < len(words) else None
        if dev is None:
            continue
        mac = words[words.index("lladdr") + 1].lower() \
            if "lladdr" in words[:-1] else None
        out.setdefault(dev, []).append((words[0], mac))
    return out


def _rate_gbps(rate: str) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*Gb/sec", rate)
    return float(match[1]) if match else None


def parse_infiniband(text: str, addrs: dict[str, list[str]],
                     neigh: dict[str, list[tuple[str, str | None]]]) -> tuple[IbPort, ...]:
    ports: list[IbPort] = []
    for line in text.splitlines():
        cells = line.split("\t")
        if len(cells) < 6 or cells[0] != "ib" or not cells[1]:
            continue
        cells += [""] * (9 - len(cells))
        state = cells[2].split(":", 1)[-1].strip() or "UNKNOWN"
        rx, tx = _int(cells[4]), _int(cells[5])
        netdevs: list[str] = []
        macs: list[str] = []
        for item in filter(None, cells[7].split(",")):
            name, _, mac = item.partition("=")
            netdevs.append(name)
            if mac:
                macs.append(mac.lower())
        gids = tuple(dict.fromkeys(a for a in map(gid_address, cells[8].split(",")) if a))
        ports.append(IbPort(
            device=cells[1], state=state.upper(), rate=cells[3].strip(),
            rate_gbps=_rate_gbps(cells[3]),
            rx_bytes=None if rx is None or rx < 0 else rx * 4,  # units of 4 bytes
            tx_bytes=None if tx is None or tx < 0 else tx * 4,
            link_layer=cells[6].strip() or None, netdevs=tuple(netdevs), macs=tuple(macs),
            gids=gids,
            addresses=tuple(a for n in netdevs for a in addrs.get(n, [])),
            neighbours=tuple(e for n in netdevs for e in neigh.get(n, []))))
    return tuple(ports)


def parse_facts(text: str) -> DeviceFacts:
    """Everything the facts command printed; missing parts stay None."""
    sections = split_sections(text)
    problems: list[str] = []
    get = sections.get
    dgx = parse_key_values(get("dgx-release", ""))
    osr = parse_key_values(get("os-release", ""))
    kernel_words = get("kernel", "").split()
    mem_total, mem_avail = parse_meminfo(get("meminfo", ""))
    header_driver, cuda = parse_nvidia_smi_header(get("nvidia-smi", ""))
    names, query_driver, cap = parse_gpu_query(get("gpu", ""))
    smi_problem = None
    if not names and not header_driver:
        smi_problem = _first_line(get("gpu", "") or get("nvidia-smi", "")) or "no output"
        if "not found" in smi_problem or "No such file" in smi_problem:
            smi_problem = "nvidia-smi not found"
    docker, docker_problem = parse_docker(get("docker", ""))
    dcgmi = _first_line(get("dcgmi", ""))
    cpu = parse_lscpu(get("lscpu", "")) or parse_cpuinfo(get("cpuinfo", ""))
    complete = END in sections
    if not complete:
        problems.append("the facts read was cut short: some values are missing")
    return DeviceFacts(
        hostname=_first_line(get("hostname", "")) or None,
        product=dgx.get("DGX_PRETTY_NAME") or dgx.get("DGX_NAME"),
        dgx_os=dgx.get("DGX_SWBUILD_VERSION") or dgx.get("DGX_OTA_VERSION"),
        os_name=osr.get("PRETTY_NAME") or osr.get("NAME"),
        kernel=kernel_words[1] if len(kernel_words) >= 2 else None,
        arch=kernel_words[2] if len(kernel_words) >= 3 else None,
        driver_version=header_driver or query_driver,
        cuda_version=cuda,
        gpu_names=names,
        compute_cap=cap,
        nvidia_smi_problem=smi_problem,
        cpu_model=cpu,
        cpu_cores=_int(_first_line(get("nproc", ""))),
        mem_total_bytes=mem_total,
        mem_available_bytes=mem_avail,
        root_disk=parse_df(get("df-root", "")),
        cache_disk=parse_df(get("df-cache", "")),
        cache_bytes=parse_du(get("du-cache", "")),
        uptime_s=parse_uptime(get("uptime", "")),
        docker_version=docker,
        docker_problem=docker_problem,
        ctk_version=parse_ctk(get("nvidia-ctk", "")),
        dcgmi_path=dcgmi if dcgmi.startswith("/") else None,
        ib_ports=parse_infiniband(get("infiniband", ""), parse_ip_addr(get("addr", "")),
                                  parse_ip_neigh(get("neigh", ""))),
        complete=complete,
        problems=tuple(problems),
    )


# --- ConnectX-7 peers ---------------------------------------------------------------------

@dataclass(frozen=True)
class LinkPeer:
    device: str  # the other device's name in the session
    port: str  # its RDMA device on the other end
    certain: bool
    how: str  # what matched, for the details pane


def match_links(facts: Mapping[str, DeviceFacts]) -> dict[tuple[str, str], LinkPeer]:
    """(device, RDMA device) -> the peer on the other end of its cable (see module doc)."""
    peers: dict[tuple[str, str], LinkPeer] = {}
    for name, mine in facts.items():
        for port in mine.ib_ports:
            for other_name, other in facts.items():
                if other_name == name:
                    continue
                for theirs in other.ib_ports:
                    how = _neighbour_match(port, theirs)
                    if how and (name, port.device) not in peers:
                        peers[(name, port.device)] = LinkPeer(other_name, theirs.device,
                                                              True, how)
    # the fallback: exactly two devices with exactly one active link each
    active = {name: [p for p in f.ib_ports if p.active] for name, f in facts.items()}
    linked = {name: ports for name, ports in active.items() if ports}
    if len(linked) == 2 and all(len(ports) == 1 for ports in linked.values()):
        (a, [pa]), (b, [pb]) = linked.items()
        if (a, pa.device) not in peers and (b, pb.device) not in peers:
            why = "the only two devices with an active ConnectX-7 link"
            peers[(a, pa.device)] = LinkPeer(b, pb.device, False, why)
            peers[(b, pb.device)] = LinkPeer(a, pa.device, False, why)
    return peers


def _neighbour_match(port: IbPort, theirs: IbPort) -> str | None:
    own = theirs.own_addresses
    macs = set(theirs.macs)
    for address, mac in port.neighbours:
        if address in own:
            return f"neighbour {address}"
        if mac and mac in macs:
            return f"neighbour MAC {mac}"
    return None


# --- nvidia-smi -q ------------------------------------------------------------------------

@dataclass(frozen=True)
class NvsmiSection:
    title: str
    body: str


def split_nvsmi_query(text: str) -> list[NvsmiSection]:
    """`nvidia-smi -q` as sections for a picker: a summary, then each block per GPU.

    Top-level lines and a GPU's 4-space `Key : value` lines make the summary;
    a 4-space line without a colon ("    Clocks") opens a block, and the deeper
    lines under it belong to that block.
    """
    summary: list[str] = []
    sections: list[NvsmiSection] = []
    gpu: str | None = None
    title: str | None = None
    body: list[str] = []
    multi = len(re.findall(r"^GPU [0-9A-Fa-f]", text, flags=re.MULTILINE)) > 1

    def close() -> None:
        nonlocal title, body
        if title is not None:
            sections.append(NvsmiSection(title, "\n".join(body).rstrip()))
        title, body = None, []

    for line in text.splitlines():
        if not line.strip() or set(line.strip()) <= set("=") or "NVSMI LOG" in line:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            close()
            if line.startswith("GPU "):
                gpu = line.strip()
                summary.append("")
            summary.append(line.rstrip())
        elif indent <= 4 and ":" not in line:
            close()
            name = line.strip()
            title = f"{gpu}: {name}" if multi and gpu else name
            body = []
        elif indent <= 4:
            close()
            summary.append(line.rstrip())
        elif title is not None:
            body.append(line[8:] if line.startswith(" " * 8) else line.strip())
        else:
            summary.append(line.rstrip())
    close()
    out = [NvsmiSection("Summary", "\n".join(summary).strip("\n"))] if summary else []
    return out + sections


_NVSMI_KV = re.compile(r"^(\s*)(\S.*?)\s+:(?: (.*))?$")


def tidy_nvsmi_body(body: str) -> str:
    """Re-align `Key   : value` lines to the longest key of the body (nvidia-smi pads
    every key to 40 columns, which wraps in a pane narrower than a full terminal)."""
    lines = body.splitlines()
    matches = [_NVSMI_KV.match(line) for line in lines]
    width = max((len(m[1]) + len(m[2]) for m in matches if m), default=0)
    out = []
    for line, m in zip(lines, matches, strict=True):
        if m is None:
            out.append(line)
            continue
        key = f"{m[1]}{m[2]}"
        out.append(f"{key:<{width}} : {m[3] or ''}".rstrip())
    return "\n".join(out)
