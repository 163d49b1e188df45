"""The nvidia-smi command line, emulated over a `SimDevice`.

Pure text in, text out: `render()` answers one call, `parse()` + `tick()` let a
caller drive loop mode (`-l`, `-lms`) itself, sleeping its own way (the SSH
server awaits, the stand-in script blocks). Output follows what a 580 driver
prints on a GB10 (see docs in shared/reference): missing values are `[N/A]`
with or without `nounits`, fields are joined by ", ".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from sparktui.sim.device.gpu_model import (
    CUDA_VERSION,
    DRIVER_VERSION,
    GpuReading,
    SimDevice,
    SimProcess,
)

NA = "[N/A]"

# Exit statuses as the real tool uses them.
EXIT_OK = 0
EXIT_ARGS = 2
EXIT_NO_DEVICE = 6
EXIT_DRIVER = 9

DRIVER_FAILURE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
_BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"


class NvsmiError(Exception):
    """A call that fails as a whole: what to print and the exit status."""

    def __init__(self, stderr: str, exit_status: int = EXIT_ARGS, stdout: str = "") -> None:
        super().__init__(stderr.strip() or stdout.strip())
        self.stdout = stdout
        self.stderr = stderr
        self.exit_status = exit_status


def _fmt_power(v: float | None) -> str | None:
    return None if v is None else f"{v:.2f}"


def _opt(v: object) -> str | None:
    return None if v is None else str(v)


def _timestamp(wall: float) -> str:
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(wall))
    return f"{stamp}.{int(wall * 1000) % 1000:03d}"


def _reason(bit: int) -> Callable[[GpuReading, float, int], str]:
    return lambda r, _w, _n: "Active" if r.event_reasons & bit else "Not Active"


_Getter = Callable[[GpuReading, float, int], "str | None"]

# canonical name -> (unit shown in the header and after values, getter(reading, wall, count))
GPU_FIELDS: dict[str, tuple[str, _Getter]] = {
    "timestamp": ("", lambda r, w, n: _timestamp(w)),
    "driver_version": ("", lambda r, w, n: DRIVER_VERSION),
    "count": ("", lambda r, w, n: str(n)),
    "name": ("", lambda r, w, n: r.name),
    "serial": ("", lambda r, w, n: r.serial),
    "uuid": ("", lambda r, w, n: r.uuid),
    "pci.bus_id": ("", lambda r, w, n: r.pci_bus_id),
    "pci.domain": ("", lambda r, w, n: "0x" + r.pci_bus_id.split(":")[0][-4:]),
    "pci.bus": ("", lambda r, w, n: "0x" + r.pci_bus_id.split(":")[1]),
    "index": ("", lambda r, w, n: str(r.index)),
    "vbios_version": ("", lambda r, w, n: r.vbios),
    "compute_cap": ("", lambda r, w, n: r.compute_cap),
    "persistence_mode": ("", lambda r, w, n: "Enabled"),
    "display_active": ("", lambda r, w, n: "Disabled"),
    "display_mode": ("", lambda r, w, n: "Disabled"),
    "compute_mode": ("", lambda r, w, n: "Default"),
    "mig.mode.current": ("", lambda r, w, n: None if r.name.endswith("GB10") else "Disabled"),
    "ecc.mode.current": ("", lambda r, w, n: None if r.name.endswith("GB10") else "Enabled"),
    "pstate": ("", lambda r, w, n: r.pstate),
    "fan.speed": ("%", lambda r, w, n: _opt(r.fan_speed)),
    "pcie.link.gen.current": ("", lambda r, w, n: str(r.pcie_gen_current)),
    "pcie.link.gen.max": ("", lambda r, w, n: str(r.pcie_gen_max)),
    "pcie.link.width.current": ("", lambda r, w, n: str(r.pcie_width_current)),
    "pcie.link.width.max": ("", lambda r, w, n: str(r.pcie_width_max)),
    "utilization.gpu": ("%", lambda r, w, n: str(r.utilization_gpu)),
    "utilization.memory": ("%", lambda r, w, n: str(r.utilization_memory)),
    "memory.total": ("MiB", lambda r, w, n: _opt(r.memory_total)),
    "memory.used": ("MiB", lambda r, w, n: _opt(r.memory_used)),
    "memory.free": ("MiB", lambda r, w, n: _opt(r.memory_free)),
    "memory.reserved": ("MiB", lambda r, w, n: None if r.memory_total is None else "527"),
    "temperature.gpu": ("", lambda r, w, n: str(r.temperature)),
    "temperature.memory": ("", lambda r, w, n: None),
    "power.draw": ("W", lambda r, w, n: _fmt_power(r.power_draw)),
    "power.draw.average": ("W", lambda r, w, n: _fmt_power(r.power_draw)),
    "power.draw.instant": ("W", lambda r, w, n: _fmt_power(r.power_draw)),
    "power.limit": ("W", lambda r, w, n: _fmt_power(r.power_limit)),
    "power.default_limit": ("W", lambda r, w, n: _fmt_power(r.power_default_limit)),
    "enforced.power.limit": ("W", lambda r, w, n: _fmt_power(r.power_limit)),
    "power.max_limit": ("W", lambda r, w, n: _fmt_power(r.power_max_limit)),
    "power.min_limit": ("W", lambda r, w, n: _fmt_power(r.power_max_limit and 200.0)),
    "clocks.current.graphics": ("MHz", lambda r, w, n: str(r.clocks_sm)),
    "clocks.current.sm": ("MHz", lambda r, w, n: str(r.clocks_sm)),
    "clocks.current.memory": ("MHz", lambda r, w, n: _opt(r.clocks_mem)),
    "clocks.current.video": ("MHz", lambda r, w, n: str(r.clocks_sm * 7 // 10)),
    "clocks.max.graphics": ("MHz", lambda r, w, n: str(r.clocks_max_sm)),
    "clocks.max.sm": ("MHz", lambda r, w, n: str(r.clocks_max_sm)),
    "clocks.max.memory": ("MHz", lambda r, w, n: _opt(r.clocks_max_mem)),
    "clocks_event_reasons.active": ("", lambda r, w, n: f"0x{r.event_reasons:016X}"),
    "clocks_event_reasons.supported": ("", lambda r, w, n: "0x00000000000001FF"),
    "clocks_event_reasons.gpu_idle": ("", _reason(0x1)),
    "clocks_event_reasons.sw_power_cap": ("", _reason(0x4)),
    "clocks_event_reasons.hw_slowdown": ("", _reason(0x8)),
    "clocks_event_reasons.sw_thermal_slowdown": ("", _reason(0x20)),
    "clocks_event_reasons.hw_thermal_slowdown": ("", _reason(0x40)),
}

# Other spellings the driver accepts; the header shows the canonical name.
GPU_ALIASES = {
    "gpu_name": "name", "gpu_serial": "serial", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
    "vbios": "vbios_version", "clocks.gr": "clocks.current.graphics",
    "clocks.sm": "clocks.current.sm", "clocks.mem": "clocks.current.memory",
    "clocks.video": "clocks.current.video", "clocks.max.gr": "clocks.max.graphics",
    "clocks.max.mem": "clocks.max.memory", "clocks_throttle_reasons.active":
    "clocks_event_reasons.active", "clocks_throttle_reasons.supported":
    "clocks_event_reasons.supported",
    "power.draw.avg": "power.draw.average",
}

# --query-compute-apps: canonical name -> (header unit, getter(process, gpu reading, wall))
APP_FIELDS: dict[str, tuple[str, Callable[[SimProcess, GpuReading, float], str | None]]] = {
    "timestamp": ("", lambda p, r, w: _timestamp(w)),
    "gpu_name": ("", lambda p, r, w: r.name),
    "gpu_bus_id": ("", lambda p, r, w: r.pci_bus_id),
    "gpu_serial": ("", lambda p, r, w: r.serial),
    "gpu_uuid": ("", lambda p, r, w: r.uuid),
    "pid": ("", lambda p, r, w: str(p.pid)),
    "process_name": ("", lambda p, r, w: p.exe),
    "used_gpu_memory": ("MiB", lambda p, r, w: _opt(p.used_memory_mib)),
}
APP_ALIASES = {"name": "process_name", "used_memory": "used_gpu_memory"}


@dataclass(frozen=True)
class Invocation:
    """One parsed nvidia-smi command line."""

    mode: str  # "gpu", "apps", "table", "detail", "list", "help", "version"
    fields: tuple[str, ...] = ()  # canonical names
    header: bool = True
    units: bool = True
    interval: float | None = None  # seconds between ticks in loop mode
    ids: tuple[str, ...] | None = None  # -i selectors, as given

    @property
    def looping(self) -> bool:
        return self.interval is not None


def _unknown_field(name: str, apps: bool) -> NvsmiError:
    what = "--help-query-compute-apps" if apps else "--help-query-gpu"
    return NvsmiError(f'Field "{name}" is not a valid field to query.\n\n'
                      f"Run 'nvidia-smi {what}' for the list of valid fields.\n")


def _canonical(names: str, apps: bool, reject: Collection[str]) -> tuple[str, ...]:
    table, aliases = (APP_FIELDS, APP_ALIASES) if apps else (GPU_FIELDS, GPU_ALIASES)
    out = []
    for raw in names.split(","):
        name = raw.strip()
        if not name:
            continue
        canon = aliases.get(name.lower(), name.lower())
        if canon not in table or name in reject:
            raise _unknown_field(name, apps)
        out.append(canon)
    if not out:
        raise NvsmiError(_BAD_ARGS)
    return tuple(out)


def _positive(value: str | None) -> int:
    try:
        n = int(value or "")
    except ValueError:
        raise NvsmiError(_BAD_ARGS) from None
    if n <= 0:
        raise NvsmiError(_BAD_ARGS)
    return n


def parse(argv: list[str], *, reject: Collection[str] = ()) -> Invocation:
    """Parse nvidia-smi arguments (without the program name). Raises NvsmiError.

    `reject` names fields this "driver" does not know, to play an older or newer one.
    """
    opts: dict[str, str | None] = {}
    args = list(argv)
    i = 0
    takes_value = {"--query-gpu", "--query-compute-apps", "--format", "-l", "--loop",
                   "-lms", "--loop-ms", "-i", "--id", "-d", "--display", "-f", "--filename"}
    while i < len(args):
        arg = args[i]
        key, eq, value = arg.partition("=")
        if not arg.startswith("-"):
            raise NvsmiError(_BAD_ARGS)
        if key in takes_value and not eq:
            nxt = args[i + 1] if i + 1 < len(args) else None
            # -l alone means every 5 s; every other option needs its value.
            if nxt is not None and not nxt.startswith("-"):
                value, i = nxt, i + 1
            elif key in ("-l", "--loop"):
                value = "5"
            else:
                raise NvsmiError(_BAD_ARGS)
        elif key not in takes_value and eq:
            raise NvsmiError(_BAD_ARGS)
        opts[key] = value if (eq or key in takes_value) else None
        i += 1

    interval = None
    if "-l" in opts or "--loop" in opts:
        interval = float(_positive(opts.get("-l") or opts.get("--loop")))
    if "-lms" in opts or "--loop-ms" in opts:
        interval = _positive(opts.get("-lms") or opts.get("--loop-ms")) / 1000.0
    ids_text = opts.get("-i") or opts.get("--id")
    ids = tuple(s.strip() for s in ids_text.split(",") if s.strip()) if ids_text else None

    known_flags = {"-q", "--query", "-L", "--list-gpus", "-h", "--help", "--version"}
    unknown = [k for k in opts if k not in takes_value and k not in known_flags]
    if unknown:
        raise NvsmiError(_BAD_ARGS)
    if "-h" in opts or "--help" in opts:
        return Invocation("help")
    if "--version" in opts:
        return Invocation("version")

    query = opts.get("--query-gpu")
    apps = opts.get("--query-compute-apps")
    if query is not None and apps is not None:
        raise NvsmiError(_BAD_ARGS)
    if query is not None or apps is not None:
        fmt = opts.get("--format")
        if fmt is None:
            raise NvsmiError('"--format" must be specified with "--query-gpu" or '
                             '"--query-compute-apps". Use --format=csv.\n')
        parts = [p.strip() for p in fmt.split(",")]
        if parts[0] != "csv" or any(p not in ("noheader", "nounits") for p in parts[1:]):
            raise NvsmiError(f'"{fmt}" is not a valid format. Valid formats are: '
                             "csv, noheader, nounits.\n")
        fields = _canonical(query if query is not None else apps or "", apps is not None,
                            reject)
        return Invocation("apps" if apps is not None else "gpu", fields,
                          header="noheader" not in parts, units="nounits" not in parts,
                          interval=interval, ids=ids)
    if "-L" in opts or "--list-gpus" in opts:
        return Invocation("list", ids=ids)
    if "-q" in opts or "--query" in opts:
        return Invocation("detail", interval=interval, ids=ids)
    return Invocation("table", interval=interval, ids=ids)


def _selected(inv: Invocation, device: SimDevice) -> list[int]:
    if inv.ids is None:
        return list(range(device.gpus))
    out = []
    for sel in inv.ids:
        if sel.isdigit() and int(sel) < device.gpus:
            out.append(int(sel))
            continue
        match = [g for g in range(device.gpus)
                 if device.gpu(g).uuid.lower() == sel.lower()
                 or device.gpu(g).pci_bus_id.lower().endswith(sel.lower())]
        if not match:
            raise NvsmiError("No devices were found\n", EXIT_NO_DEVICE, stdout="")
        out.extend(match)
    return out


def _cell(value: str | None, unit: str, units: bool) -> str:
    if value is None:
        return NA
    return f"{value} {unit}" if units and unit else value


def _header(fields: Iterable[str], table: dict) -> str:
    cols = []
    for f in fields:
        unit = table[f][0]
        cols.append(f"{f} [{unit}]" if unit else f)
    return ", ".join(cols) + "\n"


def tick(inv: Invocation, device: SimDevice, now: float | None = None,
         first: bool = True) -> str:
    """The text one tick prints: the CSV header (first tick only) and the rows."""
    now = device.clock() if now is None else now
    gpus = _selected(inv, device)
    wall = device.wall_time(now)
    if inv.mode == "gpu":
        out = [_header(inv.fields, GPU_FIELDS)] if first and inv.header else []
        for g in gpus:
            r = device.gpu(g, now)
            cells = [_cell(GPU_FIELDS[f][1](r, wall, device.gpus), GPU_FIELDS[f][0], inv.units)
                     for f in inv.fields]
            out.append(", ".join(cells) + "\n")
        return "".join(out)
    if inv.mode == "apps":
        out = [_header(inv.fields, APP_FIELDS)] if first and inv.header else []
        readings = {g: device.gpu(g, now) for g in gpus}
        for p in device.compute_apps(now):
            if p.gpu in readings:
                cells = [_cell(APP_FIELDS[f][1](p, readings[p.gpu], wall), APP_FIELDS[f][0],
                               inv.units) for f in inv.fields]
                out.append(", ".join(cells) + "\n")
        return "".join(out)
    if inv.mode == "list":
        return "".join(f"GPU {g}: {device.gpu(g, now).name} (UUID: {device.gpu(g, now).uuid})\n"
                       for g in gpus)
    if inv.mode == "detail":
        return detail_report(device, gpus, now)
    if inv.mode == "help":
        return HELP
    if inv.mode == "version":
        return (f"NVIDIA-SMI version  : {DRIVER_VERSION}\nNVML version        : "
                f"{DRIVER_VERSION.split('.')[0]}.126\nDRIVER version      : {DRIVER_VERSION}\n"
                f"CUDA Version        : {CUDA_VERSION}\n")
    return table(device, gpus, now)


def render(argv: list[str], device: SimDevice, now: float | None = None, *,
           reject: Collection[str] = ()) -> tuple[str, str, int]:
    """One call of `nvidia-smi ARGV`: (stdout, stderr, exit status). A loop gives its first tick."""
    try:
        inv = parse(argv, reject=reject)
        return tick(inv, device, now, first=True), "", EXIT_OK
    except NvsmiError as exc:
        return exc.stdout, exc.stderr, exc.exit_status


def ticks(inv: Invocation, device: SimDevice,
          clock_readings: Iterable[float] | None = None) -> Iterator[str]:
    """Tick texts of a call: one for a single shot, endless (or one per reading) in a loop.

    The caller sleeps `inv.interval` between ticks; `clock_readings` pins the
    device time of each tick (for tests).
    """
    readings = iter(clock_readings) if clock_readings is not None else None
    first = True
    while True:
        now = None
        if readings is not None:
            now = next(readings, None)
            if now is None:
                return
        yield tick(inv, device, now, first=first)
        first = False
        if not inv.looping:
            return


# --- the human-readable views --------------------------------------------------------

_RULE = "+" + "-" * 89 + "+"
_GRID = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"


def _box(*cells: tuple[str, int]) -> str:
    return "|" + "|".join(text[:width].ljust(width) for text, width in cells) + "|"


def table(device: SimDevice, gpus: list[int], now: float) -> str:
    """The default `nvidia-smi` screen."""
    wall = device.wall_time(now)
    lines = [time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(wall)) + "       ", _RULE,
             _box((f" NVIDIA-SMI {DRIVER_VERSION:<22} Driver Version: {DRIVER_VERSION:<14}"
                   f" CUDA Version: {CUDA_VERSION}", 89)),
             _GRID,
             _box((" GPU  Name                 Persistence-M", 41),
                  (" Bus-Id          Disp.A", 24), (" Volatile Uncorr. ECC", 22)),
             _box((" Fan  Temp   Perf          Pwr:Usage/Cap", 41),
                  ("           Memory-Usage", 24), (" GPU-Util  Compute M.", 22)),
             _box(("", 41), ("", 24), ("               MIG M.", 22)),
             "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|"]
    for g in gpus:
        r = device.gpu(g, now)
        cap = "N/A" if r.power_limit is None else f"{r.power_limit:.0f}W"
        power = f"{r.power_draw:.0f}W / {cap:>5}"
        fan = "N/A" if r.fan_speed is None else f"{r.fan_speed}%"
        if r.memory_total is None:
            mem = " Not Supported"
        else:
            mem = f"{r.memory_used}MiB /  {r.memory_total}MiB ".rjust(24)
        ecc = "N/A" if r.memory_total is None else "0"
        mig = "N/A" if r.memory_total is None else "Disabled"
        lines += [
            _box((f"{g:>4}  {r.name:<29}{'On':>4}  ", 41), (f"{r.pci_bus_id:>19}  On ", 24),
                 (f"{ecc:>21} ", 22)),
            _box((f" {fan:>3}   {r.temperature:>2}C    {r.pstate:<3}{power:>22}  ", 41),
                 (mem, 24), (f"{r.utilization_gpu:>7}%      Default ", 22)),
            _box(("", 41), ("", 24), (f"{mig:>21} ", 22)),
            _GRID]
    lines += ["", _RULE, _box((" Processes:", 89)),
              _box(("  GPU   GI   CI              PID   Type   Process name"
                    "                        GPU Memory ", 89)),
              _box(("        ID   ID                                                "
                    "               Usage      ", 89)),
              "|" + "=" * 89 + "|"]
    procs = [p for p in device.compute_apps(now) if p.gpu in gpus]
    if not procs:
        lines.append(_box(("  No running processes found", 89)))
    for p in procs:
        name = p.exe if len(p.exe) <= 37 else "..." + p.exe[-34:]
        usage = f"{p.used_memory_mib or 0}MiB"
        lines.append(_box((f"{p.gpu:>5}   N/A  N/A  {p.pid:>15}      C   {name:<37}"
                           f"{usage:>8} ", 89)))
    lines.append(_RULE)
    return "\n".join(lines) + "\n"


def detail_report(device: SimDevice, gpus: list[int], now: float) -> str:
    """`nvidia-smi -q`: a subset of the real report, same layout."""
    wall = device.wall_time(now)

    def kv(key: str, value: object, indent: int = 4) -> str:
        pad = " " * indent
        return f"{pad}{key:<{42 - indent}}: {NA if value is None else value}"

    lines = ["", "==============NVSMI LOG==============", "",
             kv("Timestamp", time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(wall)), 0),
             kv("Driver Version", DRIVER_VERSION, 0), kv("CUDA Version", CUDA_VERSION, 0), "",
             kv("Attached GPUs", device.gpus, 0)]
    for g in gpus:
        r = device.gpu(g, now)
        na_mib = (lambda v: None if v is None else f"{v} MiB")  # noqa: E731
        na_w = (lambda v: None if v is None else f"{v:.2f} W")  # noqa: E731
        lines += [
            f"GPU {r.pci_bus_id}", kv("Product Name", r.name),
            kv("Product Brand", "NVIDIA RTX" if r.name.endswith("GB10") else "NVIDIA"),
            kv("Product Architecture", "Blackwell" if r.name.endswith("GB10") else "Hopper"),
            kv("Persistence Mode", "Enabled"), kv("Serial Number", r.serial),
            kv("GPU UUID", r.uuid), kv("Minor Number", g), kv("VBIOS Version", r.vbios),
            kv("Compute Capability", r.compute_cap),
            "    PCI", kv("Bus Id", r.pci_bus_id, 8),
            "        GPU Link Info", "            PCIe Generation",
            kv("Max", r.pcie_gen_max, 16), kv("Current", r.pcie_gen_current, 16),
            "            Link Width", kv("Max", f"{r.pcie_width_max}x", 16),
            kv("Current", f"{r.pcie_width_current}x", 16),
            kv("Fan Speed", None if r.fan_speed is None else f"{r.fan_speed} %"),
            kv("Performance State", r.pstate),
            "    Clocks Event Reasons",
            kv("Idle", "Active" if r.event_reasons & 0x1 else "Not Active", 8),
            kv("SW Power Cap", "Active" if r.event_reasons & 0x4 else "Not Active", 8),
            kv("SW Thermal Slowdown", "Active" if r.event_reasons & 0x20 else "Not Active", 8),
            "    FB Memory Usage", kv("Total", na_mib(r.memory_total), 8),
            kv("Used", na_mib(r.memory_used), 8), kv("Free", na_mib(r.memory_free), 8),
            "    Utilization", kv("GPU", f"{r.utilization_gpu} %", 8),
            kv("Memory", f"{r.utilization_memory} %", 8),
            "    Temperature", kv("GPU Current Temp", f"{r.temperature} C", 8),
            "    GPU Power Readings", kv("Average Power Draw", na_w(r.power_draw), 8),
            kv("Instantaneous Power Draw", na_w(r.power_draw), 8),
            kv("Current Power Limit", na_w(r.power_limit), 8),
            kv("Default Power Limit", na_w(r.power_default_limit), 8),
            "    Clocks", kv("Graphics", f"{r.clocks_sm} MHz", 8),
            kv("SM", f"{r.clocks_sm} MHz", 8),
            kv("Memory", None if r.clocks_mem is None else f"{r.clocks_mem} MHz", 8),
            "    Max Clocks", kv("Graphics", f"{r.clocks_max_sm} MHz", 8),
            kv("SM", f"{r.clocks_max_sm} MHz", 8),
            kv("Memory", None if r.clocks_max_mem is None else f"{r.clocks_max_mem} MHz", 8),
            "    Processes"]
        procs = [p for p in device.compute_apps(now) if p.gpu == g]
        if not procs:
            lines[-1] += " " * 28 + ": None"
        for p in procs:
            lines += [kv("GPU instance ID", "N/A", 8), kv("Compute instance ID", "N/A", 8),
                      kv("Process ID", p.pid, 8), kv("Type", "C", 8), kv("Name", p.exe, 8),
                      kv("Used GPU Memory", f"{p.used_memory_mib} MiB", 8)]
        lines.append("")
    return "\n".join(lines) + "\n"


HELP = f"""NVIDIA System Management Interface -- v{DRIVER_VERSION}

NVSMI provides monitoring information for Tesla and select Quadro devices.
(This is the sparktui simulator: a subset of the real options.)

Usage: nvidia-smi [OPTION1 [ARG1]] [OPTION2 [ARG2]] ...

    -h,   --help                Print usage information and exit.
    -L,   --list-gpus           Display a list of GPUs connected to the system.
    -q,   --query               Display GPU or Unit info.
    -i,   --id=                 Target a specific GPU.
    -l,   --loop=               Probe until Ctrl+C at specified second interval.
    -lms, --loop-ms=            Probe until Ctrl+C at specified millisecond interval.
    --query-gpu=                Information about GPU.
    --query-compute-apps=       List of currently active compute processes.
    --format=                   Comma separated list of format options: csv, noheader, nounits
"""
