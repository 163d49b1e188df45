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


def all_paths() -> list[str]:
    return STATIC_PATHS + _thermal_paths()


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
