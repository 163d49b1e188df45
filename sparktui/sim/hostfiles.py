"""The files a simulated Spark shows to `cat`, and the `ps`/`uname` views of it.

Static text is modelled on DGX OS 7 (Ubuntu 24.04 on aarch64, see
shared/reference/spark-playbooks.md); the moving parts (/proc/meminfo,
/proc/stat, thermal zones) come from the `SimDevice`.
"""

from __future__ import annotations

import fnmatch
import re
import time

from sparktui.sim.gpu_model import NCPU, THERMAL_ZONES, SimDevice, SimProcess

KERNEL_RELEASE = "6.17.0-1029-nvidia"
KERNEL_VERSION = "#29-Ubuntu SMP PREEMPT_DYNAMIC Fri Oct 10 09:12:37 UTC 2025"
MACHINE = "aarch64"

OS_RELEASE = """PRETTY_NAME="Ubuntu 24.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.3 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
"""

DGX_RELEASE = """DGX_NAME="DGX Spark"
DGX_PRETTY_NAME="NVIDIA DGX Spark"
DGX_SWBUILD_DATE="2025-10-08-12-00-00"
DGX_SWBUILD_VERSION="7.2.3"
DGX_COMMIT_ID="5a1c0ffee0d2"
DGX_PLATFORM="DGX Spark"
DGX_SERIAL_NUMBER="SIM000000001"
DGX_OTA_VERSION="7.2.3"
DGX_OTA_DATE="Fri Oct 17 10:42:11 UTC 2025"
"""

# Cortex-X925 and Cortex-A725 features as an aarch64 kernel lists them.
_FEATURES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
             "jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc "
             "flagm sb paca pacg dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 "
             "frint svei8mm svebf16 i8mm bf16 dgh bti ecv afp wfxt")


def cpuinfo() -> str:
    blocks = []
    for i in range(NCPU):
        part = "0xd85" if i < NCPU // 2 else "0xd87"  # X925 first, then A725
        blocks.append(f"processor\t: {i}\nBogoMIPS\t: 2000.00\nFeatures\t: {_FEATURES}\n"
                      "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
                      f"CPU part\t: {part}\nCPU revision\t: 1\n")
    return "\n".join(blocks) + "\n"


def uname(device: SimDevice, flags: str) -> str:
    """`uname` output for flags such as "a", "r", "m", "snr" (empty: -s)."""
    parts = {"s": "Linux", "n": device.hostname, "r": KERNEL_RELEASE, "v": KERNEL_VERSION,
             "m": MACHINE, "p": MACHINE, "i": MACHINE, "o": "GNU/Linux"}
    if "a" in flags:
        flags = "snrvmpio"
    order = [c for c in "snrvmpio" if c in (flags or "s")]
    return " ".join(parts[c] for c in order) + "\n"


def _thermal_paths() -> list[str]:
    out = []
    for i in range(len(THERMAL_ZONES)):
        base = f"/sys/class/thermal/thermal_zone{i}"
        out += [f"{base}/temp", f"{base}/type"]
    return out


STATIC_PATHS = ["/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/uptime",
                "/proc/cpuinfo", "/proc/version", "/etc/os-release", "/etc/dgx-release",
                "/etc/hostname"]


# --- ConnectX-7: two RDMA devices, port 1 each ---------------------------------------------
# The first is cabled to an (imaginary, or `device.cx7_peer`) twin and ACTIVE, the
# second is DOWN. Counters count 4-byte words and grow with the model clock.
IB_DEVICES = (("rocep1s0f0", "enp1s0f0np0"), ("rocep1s0f1", "enp1s0f1np1"))
IB_LEAVES = ("state", "rate", "link_layer", "counters/port_rcv_data",
             "counters/port_xmit_data", "gids/0", "gids/1", "gids/2", "gids/3")


def _host_byte(device: SimDevice, salt: int) -> int:
    return (sum(device.hostname.encode()) * 31 + salt * 17 + len(device.hostname)) % 250 + 2


def ib_port(device: SimDevice, index: int, now: float | None = None) -> dict[str, str]:
    """What /sys/class/infiniband/<dev>/ports/1 and the interface show for port `index`."""
    rdma, netdev = IB_DEVICES[index]
    a, b = _host_byte(device, 1), _host_byte(device, 2 + index)
    mac = f"4c:bb:47:{a:02x}:{b:02x}:{index:02x}"
    ipv4 = f"169.254.{a}.{b}"
    eui = f"4ebb:47ff:fe{a:02x}:{b:02x}{index:02x}"
    active = index == 0
    t = max(0.0, (device.clock() if now is None else now) - device.origin)
    words = int((device.uptime0 + t) * (3.1e6 if active else 0))  # ~12 MB/s of chatter
    mapped = "0000:0000:0000:0000:0000:ffff:" + f"a9fe:{a:02x}{b:02x}"
    return {"rdma": rdma, "netdev": netdev, "mac": mac, "ipv4": ipv4,
            "ipv6": f"fe80::{eui}", "state": "4: ACTIVE" if active else "1: DOWN",
            "rate": "200 Gb/sec (4X HDR)" if active else "40 Gb/sec (4X QDR)",
            "link_layer": "Ethernet", "counters/port_rcv_data": str(words),
            "counters/port_xmit_data": str(int(words * 0.93)),
            "gids/0": f"fe80:0000:0000:0000:{eui}", "gids/1": f"fe80:0000:0000:0000:{eui}",
            "gids/2": mapped, "gids/3": mapped}


def _ib_paths() -> list[str]:
    return [f"/sys/class/infiniband/{rdma}/ports/1/{leaf}"
            for rdma, _ in IB_DEVICES for leaf in IB_LEAVES]


def all_paths() -> list[str]:
    return STATIC_PATHS + _thermal_paths() + _ib_paths()


# --- df ------------------------------------------------------------------------------------
DISK_TOTAL_KB = 3_750_738_000  # a 4 TB NVMe after formatting
DISK_USED_KB = 412_861_440


def df(paths: list[str]) -> tuple[str, str, int]:
    """`df -Pk PATH...`: everything lives on the root filesystem; (stdout, stderr, status)."""
    avail = DISK_TOTAL_KB - DISK_USED_KB
    pct = -(-DISK_USED_KB * 100 // DISK_TOTAL_KB)
    row = (f"/dev/nvme0n1p2  {DISK_TOTAL_KB} {DISK_USED_KB} {avail:>10} {pct:>7}% /\n")
    out = "Filesystem     1024-blocks      Used  Available Capacity Mounted on\n"
    err = ""
    status = 0
    for path in paths or ["/"]:
        if path.startswith("/") or path.startswith("~"):
            out += row
        else:
            err += f"df: {path}: No such file or directory\n"
            status = 1
    return out, err, status


def expand(pattern: str) -> list[str]:
    """Glob a pattern over the simulated files; no match keeps it literal, as sh does."""
    if not any(c in pattern for c in "*?["):
        return [pattern]
    # Plain sorting matches sh's order while there are fewer than 10 zones.
    hits = sorted(p for p in all_paths() if fnmatch.fnmatchcase(p, pattern))
    return hits or [pattern]


def read(path: str, device: SimDevice, now: float | None = None) -> str | None:
    """The content of a simulated file, or None when it does not exist."""
    if path == "/proc/meminfo":
        return device.meminfo(now)
    if path == "/proc/stat":
        return device.proc_stat(now)
    if path == "/proc/loadavg":
        return device.loadavg(now)
    if path == "/proc/uptime":
        return device.uptime(now)
    if path == "/proc/cpuinfo":
        return cpuinfo()
    if path == "/proc/version":
        return (f"Linux version {KERNEL_RELEASE} (buildd@bos03-arm64-042) (aarch64-linux-gnu-gcc"
                f" (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0) {KERNEL_VERSION}\n")
    if path == "/etc/os-release":
        return OS_RELEASE
    if path == "/etc/dgx-release":
        return DGX_RELEASE
    if path == "/etc/hostname":
        return device.hostname + "\n"
    ib = "/sys/class/infiniband/"
    if path.startswith(ib):
        rdma, _, leaf = path[len(ib):].partition("/ports/1/")
        names = [r for r, _ in IB_DEVICES]
        if rdma in names and leaf in IB_LEAVES:
            return ib_port(device, names.index(rdma), now)[leaf] + "\n"
        return None
    prefix = "/sys/class/thermal/thermal_zone"
    if path.startswith(prefix):
        zone, _, leaf = path[len(prefix):].partition("/")
        if zone.isdigit() and int(zone) < len(THERMAL_ZONES) and leaf in ("temp", "type"):
            if leaf == "type":
                return THERMAL_ZONES[int(zone)][0] + "\n"
            return f"{device.thermal(now)[int(zone)][1]}\n"
    return None


# --- ps --------------------------------------------------------------------------------

# column -> (header, width, right-aligned)
PS_COLUMNS = {
    "pid": ("PID", 7, True), "ppid": ("PPID", 7, True), "uid": ("UID", 5, True),
    "user": ("USER", 8, False), "euser": ("EUSER", 8, False), "args": ("COMMAND", 27, False),
    "command": ("COMMAND", 27, False), "cmd": ("CMD", 27, False),
    "comm": ("COMMAND", 15, False), "ucomm": ("COMMAND", 15, False),
    "etime": ("ELAPSED", 11, True), "etimes": ("ELAPSED", 7, True),
    "pcpu": ("%CPU", 4, True), "%cpu": ("%CPU", 4, True), "pmem": ("%MEM", 4, True),
    "%mem": ("%MEM", 4, True), "rss": ("RSS", 6, True), "stat": ("STAT", 4, False),
    "tty": ("TT", 8, False), "time": ("TIME", 8, True),
}
_UIDS = {"root": 0, "spark": 1000, "ollama": 998, "nvidia-persistenced": 997}


def _etime(seconds: int) -> str:
    days, rest = divmod(max(0, seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{mins:02d}:{secs:02d}"
    if hours:
        return f"{hours:02d}:{mins:02d}:{secs:02d}"
    return f"{mins:02d}:{secs:02d}"


def ps_value(col: str, p: SimProcess, device: SimDevice, now: float) -> str:
    t = now - device.origin
    elapsed = int(t - p.start)
    gpu_busy = p.gpu is not None and device.gpu(p.gpu, now).utilization_gpu > 5
    if col == "pid":
        return str(p.pid)
    if col == "ppid":
        if p.pid == 1:
            return "0"
        return "1263" if "ollama runner" in p.args else "1"
    if col == "uid":
        return str(_UIDS.get(p.user, 1000))
    if col in ("user", "euser"):
        return p.user if len(p.user) <= 8 else p.user[:7] + "+"
    if col in ("args", "command", "cmd"):
        return p.args
    if col in ("comm", "ucomm"):
        return p.exe.rsplit("/", 1)[-1][:15]
    if col == "etime":
        return _etime(elapsed)
    if col == "etimes":
        return str(max(0, elapsed))
    if col in ("pcpu", "%cpu"):
        return "98.5" if gpu_busy else "0.1"
    if col in ("pmem", "%mem"):
        return f"{(p.used_memory_mib or 40) / 1245.0:.1f}"
    if col == "rss":
        return str((p.used_memory_mib or 40) * 1024)
    if col == "stat":
        return ("Rl" if gpu_busy else "Sl") if p.gpu is not None else "Ss"
    if col == "tty":
        return "?"
    if col == "time":
        cpu = int(elapsed * (0.9 if gpu_busy else 0.01))
        return time.strftime("%H:%M:%S", time.gmtime(cpu))
    raise KeyError(col)


def ps(columns: list[tuple[str, str | None]], procs: list[SimProcess], device: SimDevice,
       now: float) -> str:
    """Format rows; `columns` holds (name, header override or None)."""
    headers = [PS_COLUMNS[c][0] if h is None else h for c, h in columns]
    lines = []
    if any(headers):
        lines.append(_ps_row(columns, headers))
    for p in procs:
        lines.append(_ps_row(columns, [ps_value(c, p, device, now) for c, _ in columns]))
    return "".join(line.rstrip() + "\n" for line in lines)


def _ps_row(columns: list[tuple[str, str | None]], values: list[str]) -> str:
    cells = []
    for i, ((col, _), value) in enumerate(zip(columns, values, strict=True)):
        _, width, right = PS_COLUMNS[col]
        last = i == len(columns) - 1
        if right:
            cells.append(value.rjust(width))
        else:
            cells.append(value if last else value.ljust(width))
    return " ".join(cells)


def ps_command(args: list[str], device: SimDevice) -> tuple[str, str, int]:
    """`ps` with -e/-A, -f, -o FORMAT, -p PIDS (procps syntax): (stdout, stderr, status)."""
    columns: list[tuple[str, str | None]] = []
    pids: set[int] | None = None
    full = False
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            return "", "error: unsupported option (BSD syntax)\n\nUsage:\n ps [options]\n", 1
        opts = arg[1:]
        while opts:
            flag, opts = opts[0], opts[1:]
            if flag in "eA":
                continue
            if flag == "f":
                full = True
            elif flag in "op":
                value = opts or (args[i + 1] if i + 1 < len(args) else None)
                if not opts:
                    i += 1
                opts = ""
                if value is None:
                    return "", ("error: list of process IDs must follow -p\n" if flag == "p"
                                else "error: format specification must follow -o\n"), 1
                if flag == "p":
                    try:
                        pids = (pids or set()) | {int(p) for p in re.split(r"[,\s]+", value) if p}
                    except ValueError:
                        return "", "error: process ID list syntax error\n", 1
                else:
                    for spec in value.split(","):
                        name, eq, header = spec.partition("=")
                        if name.lower() not in PS_COLUMNS:
                            return "", f'error: unknown user-defined format specifier "{name}"\n', 1
                        columns.append((name.lower(), header if eq else None))
            else:
                return "", f"error: unsupported option -{flag}\n", 1
        i += 1
    if not columns:
        columns = ([("user", "UID"), ("pid", None), ("ppid", None), ("tty", "TTY"),
                    ("time", None), ("args", "CMD")] if full
                   else [("pid", None), ("tty", "TTY"), ("time", None), ("comm", "CMD")])
    now = device.clock()
    procs = device.processes(now)
    if pids is not None:
        procs = [p for p in procs if p.pid in pids]
    return ps(columns, procs, device, now), "", 0 if procs else 1


_SIGNALS = {"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15,
            "CONT": 18, "STOP": 19}


def kill_command(args: list[str], device: SimDevice) -> tuple[str, str, int]:
    """`kill [-SIG] PID...` as dash's builtin answers: (stdout, stderr, status)."""
    err = ""
    if args[:1] == ["-s"] and len(args) > 1:
        args = ["-" + args[1], *args[2:]]
    if args and args[0].startswith("-") and args[0] != "--":
        sig = args[0][1:].upper().removeprefix("SIG")
        if not (sig.isdigit() and 0 <= int(sig) <= 64) and sig not in _SIGNALS:
            return "", f"sh: 1: kill: invalid signal number or name: {args[0][1:]}\n", 2
        args = args[1:]
    args = [a for a in args if a != "--"]
    if not args:
        return "", ("sh: 1: kill: Usage: kill [-s sigspec | -signum | -sigspec] [pid | job]..."
                    " or\nkill -l [exitstatus]\n"), 2
    status = 0
    for a in args:
        if not a.isdigit():
            return "", err + f"sh: 1: kill: Illegal number: {a}\n", 2
        try:
            device.kill(int(a))
        except ProcessLookupError:
            err += "sh: 1: kill: No such process\n"
            status = 1
        except PermissionError:
            err += "sh: 1: kill: Operation not permitted\n"
            status = 1
    return "", err, status
