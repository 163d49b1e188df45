"""The nvidia-smi command line over a `SimDevice`: the forms sparktui sends.

`--query-gpu=...` and `--query-compute-apps=...` with `--format=csv[,noheader]
[,nounits]`, looping with `-l`/`-lms`, one GPU with `-i`; the plain screen (the
facts read the driver and CUDA versions from its header) and `-q` (the report
the device details split into sections). Output follows what a 580 driver
prints on a GB10 (shared/reference): missing values are `[N/A]` with or
without `nounits`, fields are joined by ", ", exit statuses are the tool's.
`parse()` + `tick()` let a caller drive loop mode, sleeping its own way.
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
EXIT_OK, EXIT_ARGS, EXIT_NO_DEVICE, EXIT_DRIVER = 0, 2, 6, 9
DRIVER_FAILURE = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                  "driver. Make sure that the latest NVIDIA driver is installed and running.\n")
_BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"


class NvsmiError(Exception):
    """A call that fails as a whole: what to print and the exit status."""

    def __init__(self, stderr: str, exit_status: int = EXIT_ARGS, stdout: str = "") -> None:
        super().__init__(stderr.strip() or stdout.strip())
        self.stdout, self.stderr, self.exit_status = stdout, stderr, exit_status


def _stamp(wall: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(wall)) + \
        f".{int(wall * 1000) % 1000:03d}"


def _watts(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}"


_Getter = Callable[[GpuReading, float], object]


def _attr(name: str) -> _Getter:
    return lambda r, w: getattr(r, name)


#: --query-gpu: canonical name -> (unit, getter(reading, wall)); None prints [N/A]
GPU_FIELDS: dict[str, tuple[str, _Getter]] = {
    "timestamp": ("", lambda r, w: _stamp(w)),
    "driver_version": ("", lambda r, w: DRIVER_VERSION),
    **{name: ("", _attr(attr)) for name, attr in (
        ("index", "index"), ("name", "name"), ("uuid", "uuid"),
        ("pci.bus_id", "pci_bus_id"), ("compute_cap", "compute_cap"), ("pstate", "pstate"),
        ("temperature.gpu", "temperature"))},
    **{name: (unit, _attr(attr)) for name, unit, attr in (
        ("utilization.gpu", "%", "utilization_gpu"),
        ("utilization.memory", "%", "utilization_memory"), ("fan.speed", "%", "fan_speed"),
        ("memory.total", "MiB", "memory_total"), ("memory.used", "MiB", "memory_used"),
        ("memory.free", "MiB", "memory_free"), ("clocks.current.sm", "MHz", "clocks_sm"),
        ("clocks.max.sm", "MHz", "clocks_max_sm"), ("clocks.current.memory", "MHz",
                                                    "clocks_mem"),
        ("clocks.max.memory", "MHz", "clocks_max_mem"))},
    **{name: ("W", lambda r, w, a=attr: _watts(getattr(r, a))) for name, attr in (
        ("power.draw", "power_draw"), ("power.limit", "power_limit"),
        ("power.default_limit", "power_default_limit"),
        ("enforced.power.limit", "power_limit"))},
    "clocks_event_reasons.active": ("", lambda r, w: f"0x{r.event_reasons:016X}"),
}
#: other spellings the driver accepts; the header shows the canonical name
GPU_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
               "clocks.sm": "clocks.current.sm", "clocks.mem": "clocks.current.memory",
               "clocks.max.mem": "clocks.max.memory",
               "clocks_throttle_reasons.active": "clocks_event_reasons.active"}

#: --query-compute-apps: canonical name -> (unit, getter(process, reading))
APP_FIELDS: dict[str, tuple[str, Callable[[SimProcess, GpuReading], object]]] = {
    "gpu_name": ("", lambda p, r: r.name), "gpu_uuid": ("", lambda p, r: r.uuid),
    "gpu_bus_id": ("", lambda p, r: r.pci_bus_id), "pid": ("", lambda p, r: p.pid),
    "process_name": ("", lambda p, r: p.exe),
    "used_gpu_memory": ("MiB", lambda p, r: p.used_memory_mib),
}
APP_ALIASES = {"name": "process_name", "used_memory": "used_gpu_memory"}


@dataclass(frozen=True)
class Invocation:
    """One parsed nvidia-smi command line."""

    mode: str  # "gpu", "apps", "table" or "detail"
    fields: tuple[str, ...] = ()  # canonical names
    header: bool = True
    units: bool = True
    interval: float | None = None  # seconds between ticks in loop mode
    ids: tuple[str, ...] | None = None  # -i selectors, as given

    @property
    def looping(self) -> bool:
        return self.interval is not None


def _canonical(names: str, apps: bool, reject: Collection[str]) -> tuple[str, ...]:
    table, aliases = (APP_FIELDS, APP_ALIASES) if apps else (GPU_FIELDS, GPU_ALIASES)
    out = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        canon = aliases.get(name.lower(), name.lower())
        if canon not in table or name in reject:
            what = "--help-query-compute-apps" if apps else "--help-query-gpu"
            raise NvsmiError(f'Field "{name}" is not a valid field to query.\n\n'
                             f"Run 'nvidia-smi {what}' for the list of valid fields.\n")
        out.append(canon)
    if not out:
        raise NvsmiError(_BAD_ARGS)
    return tuple(out)


_TAKES_VALUE = {"--query-gpu", "--query-compute-apps", "--format", "-l", "--loop", "-lms",
                "--loop-ms", "-i", "--id"}
_FLAGS = {"-q", "--query"}


def parse(argv: list[str], *, reject: Collection[str] = ()) -> Invocation:
    """Parse nvidia-smi arguments (without the program name). Raises NvsmiError.

    `reject` names fields this "driver" does not know, to play an older or newer one.
    """
    opts: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        key, eq, value = arg.partition("=")
        if key not in _TAKES_VALUE | _FLAGS or (eq and key in _FLAGS):
            raise NvsmiError(_BAD_ARGS)
        if key in _TAKES_VALUE and not eq:
            value = next(args, "")
            if not value or value.startswith("-"):
                raise NvsmiError(_BAD_ARGS)
        opts[key.replace("--loop-ms", "-lms").replace("--loop", "-l").replace("--id", "-i")] \
            = value
    interval = None
    for key, scale in (("-l", 1.0), ("-lms", 0.001)):
        if key in opts:
            if not opts[key].isdigit() or int(opts[key]) <= 0:
                raise NvsmiError(_BAD_ARGS)
            interval = int(opts[key]) * scale
    ids = tuple(s.strip() for s in opts["-i"].split(",") if s.strip()) if "-i" in opts else None
    query, apps = opts.get("--query-gpu"), opts.get("--query-compute-apps")
    if query is not None and apps is not None:
        raise NvsmiError(_BAD_ARGS)
    if query is None and apps is None:
        return Invocation("detail" if "-q" in opts or "--query" in opts else "table",
                          interval=interval, ids=ids)
    fmt = opts.get("--format")
    if fmt is None:
        raise NvsmiError('"--format" must be specified with "--query-gpu" or '
                         '"--query-compute-apps". Use --format=csv.\n')
    parts = [p.strip() for p in fmt.split(",")]
    if parts[0] != "csv" or any(p not in ("noheader", "nounits") for p in parts[1:]):
        raise NvsmiError(f'"{fmt}" is not a valid format. Valid formats are: csv, noheader, '
                         "nounits.\n")
    return Invocation("apps" if apps is not None else "gpu",
                      _canonical(query or apps or "", apps is not None, reject),
                      header="noheader" not in parts, units="nounits" not in parts,
                      interval=interval, ids=ids)


def _selected(inv: Invocation, device: SimDevice) -> list[int]:
    if inv.ids is None:
        return list(range(device.gpus))
    out = []
    for sel in inv.ids:
        match = [g for g in range(device.gpus) if sel == str(g)
                 or sel.lower() in (device.gpu(g).uuid.lower(), device.gpu(g).pci_bus_id.lower())]
        if not match:
            raise NvsmiError("No devices were found\n", EXIT_NO_DEVICE)
        out.extend(match)
    return out


def _csv(fields: tuple[str, ...], table: dict, values: Iterable[object], units: bool) -> str:
    cells = [NA if v is None else f"{v} {table[f][0]}" if units and table[f][0] else str(v)
             for f, v in zip(fields, values, strict=True)]
    return ", ".join(cells) + "\n"


def _header(fields: Iterable[str], table: dict) -> str:
    return ", ".join(f"{f} [{table[f][0]}]" if table[f][0] else f for f in fields) + "\n"


def tick(inv: Invocation, device: SimDevice, now: float | None = None,
         first: bool = True) -> str:
    """The text one tick prints: the CSV header (first tick only) and the rows."""
    now = device.clock() if now is None else now
    gpus = _selected(inv, device)
    wall = device.wall_time(now)
    readings = {g: device.gpu(g, now) for g in gpus}
    if inv.mode == "gpu":
        rows = [_csv(inv.fields, GPU_FIELDS, (GPU_FIELDS[f][1](r, wall) for f in inv.fields),
                     inv.units) for r in readings.values()]
    elif inv.mode == "apps":
        rows = [_csv(inv.fields, APP_FIELDS, (APP_FIELDS[f][1](p, readings[p.gpu])
                                              for f in inv.fields), inv.units)
                for p in device.compute_apps(now) if p.gpu in readings]
    elif inv.mode == "detail":
        return detail_report(device, gpus, now)
    else:
        return table(device, gpus, now)
    table_ = GPU_FIELDS if inv.mode == "gpu" else APP_FIELDS
    return "".join(([_header(inv.fields, table_)] if first and inv.header else []) + rows)


def render(argv: list[str], device: SimDevice, now: float | None = None, *,
           reject: Collection[str] = ()) -> tuple[str, str, int]:
    """One call of `nvidia-smi ARGV`: (stdout, stderr, exit status). A loop gives its first tick."""
    try:
        return tick(parse(argv, reject=reject), device, now), "", EXIT_OK
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
        now = None if readings is None else next(readings, None)
        if readings is not None and now is None:
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
    lines = [time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(device.wall_time(now))),
             _RULE, _box((f" NVIDIA-SMI {DRIVER_VERSION:<22} Driver Version: "
                          f"{DRIVER_VERSION:<14} CUDA Version: {CUDA_VERSION}", 89)), _GRID,
             _box((" GPU  Name                 Persistence-M", 41),
                  (" Bus-Id          Disp.A", 24), (" Volatile Uncorr. ECC", 22)),
             _box((" Fan  Temp   Perf          Pwr:Usage/Cap", 41),
                  ("           Memory-Usage", 24), (" GPU-Util  Compute M.", 22)),
             "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|"]
    for g in gpus:
        r = device.gpu(g, now)
        cap = "N/A" if r.power_limit is None else f"{r.power_limit:.0f}W"
        mem = " Not Supported" if r.memory_total is None else \
            f"{r.memory_used}MiB /  {r.memory_total}MiB ".rjust(24)
        lines += [_box((f"{g:>4}  {r.name:<29}{'On':>4}  ", 41), (f"{r.pci_bus_id:>19}  On ", 24),
                       (f"{'N/A' if r.memory_total is None else '0':>21} ", 22)),
                  _box((f" N/A   {r.temperature:>2}C    {r.pstate:<3}"
                        f"{f'{r.power_draw:.0f}W / {cap:>5}':>22}  ", 41), (mem, 24),
                       (f"{r.utilization_gpu:>7}%      Default ", 22)), _GRID]
    lines += ["", _RULE, _box((" Processes:", 89)),
              _box(("  GPU   GI   CI              PID   Type   Process name"
                    "                        GPU Memory ", 89)), "|" + "=" * 89 + "|"]
    procs = [p for p in device.compute_apps(now) if p.gpu in gpus]
    lines += [_box((f"{p.gpu:>5}   N/A  N/A  {p.pid:>15}      C   {p.exe[-37:]:<37}"
                    f"{f'{p.used_memory_mib or 0}MiB':>8} ", 89)) for p in procs] or \
        [_box(("  No running processes found", 89))]
    return "\n".join([*lines, _RULE]) + "\n"


def detail_report(device: SimDevice, gpus: list[int], now: float) -> str:
    """`nvidia-smi -q`: the sections the device details show, in the real report's layout."""
    def kv(key: str, value: object, indent: int = 4) -> str:
        return f"{' ' * indent}{key:<{42 - indent}}: {NA if value is None else value}"

    def unit(value: object, suffix: str) -> str | None:
        return None if value is None else f"{value} {suffix}"

    wall = device.wall_time(now)
    lines = ["", "==============NVSMI LOG==============", "",
             kv("Timestamp", time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(wall)), 0),
             kv("Driver Version", DRIVER_VERSION, 0), kv("CUDA Version", CUDA_VERSION, 0), "",
             kv("Attached GPUs", device.gpus, 0)]
    for g in gpus:
        r = device.gpu(g, now)
        sections: dict[str, list[tuple[str, object]]] = {
            "PCI": [("Bus Id", r.pci_bus_id), ("PCIe Generation", r.pcie_gen_current)],
            "FB Memory Usage": [("Total", unit(r.memory_total, "MiB")),
                                ("Used", unit(r.memory_used, "MiB")),
                                ("Free", unit(r.memory_free, "MiB"))],
            "Utilization": [("GPU", f"{r.utilization_gpu} %")],
            "Temperature": [("GPU Current Temp", f"{r.temperature} C")],
            "GPU Power Readings": [("Average Power Draw", unit(_watts(r.power_draw), "W")),
                                   ("Current Power Limit", unit(_watts(r.power_limit), "W"))],
            "Clocks": [("Graphics", f"{r.clocks_sm} MHz"), ("SM", f"{r.clocks_sm} MHz"),
                       ("Memory", unit(r.clocks_mem, "MHz"))]}
        lines += [f"GPU {r.pci_bus_id}", kv("Product Name", r.name),
                  kv("Product Architecture", "Blackwell" if r.name.endswith("GB10") else
                     "Hopper"), kv("GPU UUID", r.uuid), kv("Minor Number", g),
                  kv("Compute Capability", r.compute_cap), kv("Performance State", r.pstate)]
        for title, rows in sections.items():
            lines += [f"    {title}", *(kv(k, v, 8) for k, v in rows)]
        procs = [p for p in device.compute_apps(now) if p.gpu == g]
        lines.append("    Processes" + ("" if procs else " " * 28 + ": None"))
        for p in procs:
            lines += [kv("Process ID", p.pid, 8), kv("Type", "C", 8), kv("Name", p.exe, 8),
                      kv("Used GPU Memory", f"{p.used_memory_mib} MiB", 8)]
        lines.append("")
    return "\n".join(lines) + "\n"
