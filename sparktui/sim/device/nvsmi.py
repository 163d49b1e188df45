"""The one stand-in `nvidia-smi`: what the real tool prints, over a reading of the GPU model.

A reading (SimDevice.nvidia_smi_reading: the GPUs, the compute processes, the
time) is plain JSON: the demo's device root writes one on every refresh for its
`nvidia-smi` (sim.device.standin); the tests' sshd takes a fresh one per tick
(tests/infra/fake_nvidia_smi.py). Both parse, then tick. It answers
the forms sparktui sends: `--query-gpu=...` and `--query-compute-apps=...`
with `--format=csv[,noheader][,nounits]`, looping with `-lms`; the head of the
plain screen (the facts read the driver and CUDA versions there) and `-q`
(the report the device details split into sections).
Output follows a 580 driver on a GB10 (shared/reference): missing values are
`[N/A]` with or without `nounits`, fields are joined by ", ", a field the driver
does not know fails the whole call with exit status 2.
Standard library only, no dataclasses or typing: the stand-in imports it per call.
"""

from __future__ import annotations

import time

NA = "[N/A]"
_BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"
#: other spellings the driver accepts; the header shows the canonical name
GPU_ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
               "clocks.sm": "clocks.current.sm", "clocks.mem": "clocks.current.memory",
               "clocks_throttle_reasons.active": "clocks_event_reasons.active"}
APP_ALIASES = {"name": "process_name", "used_memory": "used_gpu_memory"}
APP_FIELDS = ("gpu_uuid", "gpu_name", "gpu_bus_id", "pid", "process_name", "used_gpu_memory")
# What a value carries without `nounits`, by the start of its field's name.
_UNITS = (("utilization.", "%"), ("fan.", "%"), ("memory.", "MiB"), ("used_gpu_memory", "MiB"),
          ("clocks.", "MHz"), ("power.", "W"), ("enforced.power", "W"))
_OPTIONS = {"--query-gpu": "gpu", "--query-compute-apps": "apps", "--format": "format",
            "-lms": "lms"}  # the forms sparktui sends (and -q)


class NvsmiError(Exception):
    """A call that fails as a whole: what to print and the exit status (2: bad arguments)."""

    def __init__(self, stderr: str, exit_status: int = 2, stdout: str = "") -> None:
        super().__init__(stderr.strip() or stdout.strip())
        self.stdout, self.stderr, self.exit_status = stdout, stderr, exit_status


class Invocation:
    """One parsed nvidia-smi command line."""

    def __init__(self, mode: str, fields: tuple[str, ...] = (), header: bool = True,
                 units: bool = True, interval: float | None = None) -> None:
        self.mode = mode  # "gpu", "apps", "table" or "detail"
        self.fields = fields  # canonical names
        self.header, self.units = header, units
        self.interval = interval  # seconds between ticks in loop mode


def _unit(field: str) -> str:
    return next((unit for start, unit in _UNITS if field.startswith(start)), "")


def field_error(name: str, mode: str) -> NvsmiError:
    """How the tool fails on a field its driver does not know."""
    what = "compute-apps" if mode == "apps" else "gpu"
    return NvsmiError(f'Field "{name}" is not a valid field to query.\n\n'
                      f"Run 'nvidia-smi --help-query-{what}' for the list of valid fields.\n")


def parse(argv: list[str], reading: dict) -> Invocation:
    """nvidia-smi's arguments (without the program name); NvsmiError as the tool fails."""
    opts: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        key, eq, value = arg.partition("=")
        if key == "-q" and not eq:
            opts["-q"] = ""
        elif key in _OPTIONS and (value or not eq):
            opts[_OPTIONS[key]] = value if eq else next(args, "")
        else:
            raise NvsmiError(_BAD_ARGS)
    interval = int(opts["lms"]) / 1000 if opts.get("lms", "").isdigit() else None
    if "lms" in opts and not interval:
        raise NvsmiError(_BAD_ARGS)
    modes = [mode for mode in ("gpu", "apps") if mode in opts]
    if not modes:
        return Invocation("detail" if "-q" in opts else "table", interval=interval)
    parts = [p.strip() for p in opts.get("format", "").split(",")]
    # (the real tool words a missing or unknown format its own way; the status is the same)
    if len(modes) > 1 or "-q" in opts or parts[0] != "csv" or not set(parts[1:]) <= {
            "noheader", "nounits"}:
        raise NvsmiError(_BAD_ARGS)
    # this driver knows the fields its reading has
    known, aliases = ((APP_FIELDS, APP_ALIASES) if modes[0] == "apps" else
                      (reading["gpus"][0], GPU_ALIASES))
    fields = []
    for name in filter(None, (n.strip() for n in opts[modes[0]].split(","))):
        canonical = aliases.get(name.lower(), name.lower())
        if canonical not in known:
            raise field_error(name, modes[0])
        fields.append(canonical)
    if not fields:
        raise NvsmiError(_BAD_ARGS)
    return Invocation(modes[0], tuple(fields), header="noheader" not in parts,
                      units="nounits" not in parts, interval=interval)


def _app(app: dict, gpu: dict) -> dict:
    return {"gpu_uuid": gpu["uuid"], "gpu_name": gpu["name"], "gpu_bus_id": gpu["pci.bus_id"],
            "pid": app["pid"], "process_name": app["args"].split(" ", 1)[0],
            "used_gpu_memory": app["used_memory_mib"]}


def tick(inv: Invocation, reading: dict, first: bool = True) -> str:
    """What one tick prints: the CSV header (on the first tick only) and the rows."""
    if inv.mode in ("table", "detail"):
        return (table if inv.mode == "table" else detail_report)(reading)
    gpus = reading["gpus"]
    rows = gpus if inv.mode == "gpu" else [_app(app, gpus[app["gpu"]])
                                           for app in reading["apps"]]
    lines = [", ".join(NA if row[f] is None else f"{row[f]} {_unit(f)}" if inv.units
                       and _unit(f) else str(row[f]) for f in inv.fields) for row in rows]
    if first and inv.header:
        lines.insert(0, ", ".join(f"{f} [{_unit(f)}]" if _unit(f) else f for f in inv.fields))
    return "".join(line + "\n" for line in lines)


def table(reading: dict) -> str:
    """The head of the default `nvidia-smi` screen, where the facts read the driver and CUDA
    versions. The GPU and process boxes below it are left out: nothing reads them."""
    rule, driver = "+" + "-" * 89 + "+", reading["driver_version"]
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(reading["wall"]))
    return (f"{stamp}\n{rule}\n| NVIDIA-SMI {driver:<22} Driver Version: "
            f"{driver:<14} CUDA Version: {reading['cuda_version']:<9}|\n{rule}\n")


def detail_report(reading: dict) -> str:
    """`nvidia-smi -q`: the sections the device details show, in the real report's layout."""
    def kv(depth: int, key: str, value: object, unit: str = "") -> str:
        shown = NA if value is None else f"{value} {unit}".strip()
        return f"{'    ' * depth}{key:<{42 - 4 * depth}}: {shown}"

    lines = ["", "==============NVSMI LOG==============", "",
             kv(0, "Timestamp", time.strftime("%a %b %d %H:%M:%S %Y",
                                              time.localtime(reading["wall"]))),
             kv(0, "Driver Version", reading["driver_version"]),
             kv(0, "CUDA Version", reading["cuda_version"]), "",
             kv(0, "Attached GPUs", len(reading["gpus"]))]
    for g, r in enumerate(reading["gpus"]):
        lines += [f"GPU {r['pci.bus_id']}", kv(1, "Product Name", r["name"]),
                  kv(1, "Product Architecture", "Blackwell"),
                  kv(1, "GPU UUID", r["uuid"]), kv(1, "Minor Number", g),
                  kv(1, "Compute Capability", r["compute_cap"]),
                  kv(1, "Performance State", r["pstate"]), "    PCI",
                  kv(2, "Bus Id", r["pci.bus_id"]),
                  kv(2, "PCIe Generation", r["pcie.link.gen.current"]), "    FB Memory Usage",
                  *(kv(2, k.title(), r[f"memory.{k}"], "MiB") for k in ("total", "used", "free")),
                  "    Utilization", kv(2, "GPU", r["utilization.gpu"], "%"), "    Temperature",
                  kv(2, "GPU Current Temp", r["temperature.gpu"], "C"), "    GPU Power Readings",
                  kv(2, "Average Power Draw", r["power.draw"], "W"),
                  kv(2, "Current Power Limit", r["power.limit"], "W"), "    Clocks",
                  kv(2, "Graphics", r["clocks.current.sm"], "MHz"),
                  kv(2, "SM", r["clocks.current.sm"], "MHz"),
                  kv(2, "Memory", r["clocks.current.memory"], "MHz")]
        procs = [_app(app, r) for app in reading["apps"] if app["gpu"] == g]
        lines.append("    Processes" + ("" if procs else " " * 28 + ": None"))
        for p in procs:
            lines += [kv(2, "Process ID", p["pid"]), kv(2, "Type", "C"),
                      kv(2, "Name", p["process_name"]),
                      kv(2, "Used GPU Memory", p["used_gpu_memory"], "MiB")]
        lines.append("")
    return "\n".join(lines) + "\n"
