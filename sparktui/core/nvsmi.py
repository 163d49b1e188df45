"""Parsing what `nvidia-smi` prints: query rows, compute apps, failures.

Pure: the services layer runs the commands built here and feeds their output
back in. Every parser takes arbitrary text and never raises, because the text
comes from another machine: a GB10 prints `[N/A]` where a discrete GPU prints
numbers, loop mode interleaves XID/ECC event text with rows, and a stream can
be cut mid-line. A missing value is always None, never 0, so the UI can tell
"no sensor" from "idle".
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sparktui.core.sanitize import strip_control

__all__ = [
    "ALARMING_REASONS", "COMPUTE_APPS_COMMAND", "DEFAULT_FIELDS", "DRIVER_VERSION_COMMAND",
    "DRIVER_VERSION_FIELD", "EVENT_REASONS", "EVENT_REASONS_FIELD", "FIELDS", "NOTABLE_REASONS",
    "THROTTLE_REASONS_FIELD", "ComputeApp", "CsvRowParser", "FieldKind", "GpuSample",
    "NvsmiFailure", "NvsmiFailureKind", "QueryField", "ReasonSeverity",
    "build_compute_apps_command", "build_query_command", "classify_failure",
    "decode_event_reasons", "drop_rejected_field", "event_severity", "field_for", "is_missing",
    "parse_compute_apps", "parse_driver_version", "parse_hex_mask", "parse_rejected_field",
]


# --------------------------------------------------------------------------- fields


class FieldKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STR = "str"
    HEXMASK = "hexmask"


@dataclass(frozen=True, slots=True)
class QueryField:
    """One `--query-gpu` field and where its value lands on a GpuSample."""

    query: str
    attr: str
    kind: FieldKind
    # What nvidia-smi appends without `nounits`; also what the UI labels it with.
    unit: str = ""


EVENT_REASONS_FIELD = "clocks_event_reasons.active"
# The pre-535 name of the same mask; tried once when a driver rejects the new one.
THROTTLE_REASONS_FIELD = "clocks_throttle_reasons.active"
DRIVER_VERSION_FIELD = "driver_version"

_F = FieldKind
FIELDS: tuple[QueryField, ...] = (
    QueryField("index", "index", _F.INT),
    QueryField("uuid", "uuid", _F.STR),
    QueryField("name", "name", _F.STR),
    QueryField("utilization.gpu", "util_gpu", _F.FLOAT, "%"),
    QueryField("utilization.memory", "util_mem", _F.FLOAT, "%"),
    QueryField("memory.used", "mem_used_mib", _F.FLOAT, "MiB"),
    QueryField("memory.total", "mem_total_mib", _F.FLOAT, "MiB"),
    QueryField("temperature.gpu", "temp_c", _F.FLOAT, "C"),
    QueryField("power.draw", "power_w", _F.FLOAT, "W"),
    QueryField("power.limit", "power_limit_w", _F.FLOAT, "W"),
    QueryField("clocks.sm", "sm_clock_mhz", _F.FLOAT, "MHz"),
    QueryField("clocks.max.sm", "sm_clock_max_mhz", _F.FLOAT, "MHz"),
    QueryField("clocks.mem", "mem_clock_mhz", _F.FLOAT, "MHz"),
    QueryField("pstate", "pstate", _F.STR),
    QueryField("fan.speed", "fan_pct", _F.FLOAT, "%"),
    QueryField(EVENT_REASONS_FIELD, "event_reasons", _F.HEXMASK),
)
_FALLBACK_FIELD = QueryField(THROTTLE_REASONS_FIELD, "event_reasons", _F.HEXMASK)
_BY_QUERY: dict[str, QueryField] = {f.query: f for f in (*FIELDS, _FALLBACK_FIELD)}

DEFAULT_FIELDS: tuple[str, ...] = tuple(f.query for f in FIELDS)


def field_for(query: str) -> QueryField | None:
    """The catalogue entry for a query name (old and new event-reason names both map)."""
    return _BY_QUERY.get(query)


# ------------------------------------------------------------------------- commands

# Field names go into a shell command line: allow only what nvidia-smi uses.
_FIELD_NAME = re.compile(r"[a-z0-9_.]+")

COMPUTE_APPS_COMMAND = (
    "nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory "
    "--format=csv,noheader,nounits"
)
DRIVER_VERSION_COMMAND = "nvidia-smi --query-gpu=driver_version --format=csv,noheader"


def build_query_command(fields: Sequence[str], interval_ms: int | None = None) -> str:
    """`nvidia-smi --query-gpu=...`; looping every `interval_ms` when given, else one shot."""
    names = list(fields)
    if not names:
        raise ValueError("no fields to query")
    for name in names:
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"not an nvidia-smi field name: {name!r}")
    command = f"nvidia-smi --query-gpu={','.join(names)} --format=csv,noheader,nounits"
    if interval_ms is None:
        return command
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms <= 0:
        raise ValueError(f"interval_ms must be a positive int, not {interval_ms!r}")
    return f"{command} -lms {interval_ms}"


def build_compute_apps_command() -> str:
    return COMPUTE_APPS_COMMAND


# ------------------------------------------------------------------------- failures

_REJECTED = re.compile(r"""Field\s+["'“]([^"'”\n]{1,200})["'”]\s+is not a valid field to query""")


def parse_rejected_field(text: str) -> str | None:
    """The field named in `Field "x" is not a valid field to query.`, if any."""
    if not isinstance(text, str):
        return None
    match = _REJECTED.search(text)
    return match.group(1).strip() if match else None


def drop_rejected_field(fields: Sequence[str], error_text: str) -> list[str] | None:
    """The field list to retry with after a rejection, or None when retrying is pointless.

    The new event-reasons name is swapped for the old one (drivers before 535),
    and only once: if the old name is rejected too it is dropped. `index` is
    never dropped, because rows cannot be told from event text without it.
    None also when the error names no field or one not asked for, so a caller
    looping on this cannot spin forever.
    """
    rejected = parse_rejected_field(error_text)
    if rejected is None or rejected not in fields or rejected == "index":
        return None
    if rejected == EVENT_REASONS_FIELD and THROTTLE_REASONS_FIELD not in fields:
        return [THROTTLE_REASONS_FIELD if f == rejected else f for f in fields]
    remaining = [f for f in fields if f != rejected]
    return remaining or None


class NvsmiFailureKind(enum.Enum):
    DRIVER = "driver"  # no driver loaded / driver mismatch after an update
    NOT_FOUND = "not found"  # nvidia-smi is not installed or not on PATH
    REJECTED_FIELD = "rejected field"  # retry without the field
    NVML_INIT = "nvml init"  # typically inside a container without GPU access
    NO_DEVICES = "no devices"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class NvsmiFailure:
    kind: NvsmiFailureKind
    message: str  # one line, for the user
    field: str | None = None  # for REJECTED_FIELD
    detail: str = ""  # first line of what nvidia-smi said, raw (sanitise before showing)

    @property
    def retry_without_field(self) -> bool:
        return self.kind is NvsmiFailureKind.REJECTED_FIELD


_DRIVER_FAIL = re.compile(r"NVIDIA-SMI has failed because it couldn't communicate", re.I)
_NVML_FAIL = re.compile(r"Failed to initialize NVML", re.I)
_NO_DEVICES = re.compile(r"No devices were found", re.I)
_NOT_FOUND = re.compile(r"command not found|nvidia-smi: not found|nvidia-smi: No such file", re.I)


def _first_line(*texts: str) -> str:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:300]
    return ""


def classify_failure(
    stdout: str, stderr: str, exit_status: int | None
) -> NvsmiFailure | None:
    """What went wrong with an nvidia-smi call, or None if nothing did.

    The text is searched in both streams: over SSH with a PTY, or through a
    shell wrapper, stderr often arrives merged into stdout.
    """
    stdout = stdout if isinstance(stdout, str) else ""
    stderr = stderr if isinstance(stderr, str) else ""
    both = f"{stderr}\n{stdout}"
    detail = _first_line(stderr, stdout)
    if _DRIVER_FAIL.search(both):
        return NvsmiFailure(
            NvsmiFailureKind.DRIVER,
            "nvidia-smi cannot talk to the NVIDIA driver: is it installed and loaded "
            "(a reboot may be due after a driver update)?",
            detail=detail,
        )
    if _NVML_FAIL.search(both):
        return NvsmiFailure(
            NvsmiFailureKind.NVML_INIT,
            "NVML failed to initialise (seen inside containers without GPU access): "
            "run on the host, or start the container with --gpus all",
            detail=detail,
        )
    field = parse_rejected_field(both)
    if field is not None:
        return NvsmiFailure(
            NvsmiFailureKind.REJECTED_FIELD,
            f"this driver's nvidia-smi does not know the field {field!r}",
            field=field,
            detail=detail,
        )
    if exit_status == 127 or _NOT_FOUND.search(both) or (
        exit_status not in (None, 0) and "not found" in stderr.lower()
    ):
        return NvsmiFailure(
            NvsmiFailureKind.NOT_FOUND,
            "nvidia-smi is not installed or not on the PATH of this device",
            detail=detail,
        )
    if _NO_DEVICES.search(both):
        return NvsmiFailure(
            NvsmiFailureKind.NO_DEVICES, "nvidia-smi found no NVIDIA GPU", detail=detail
        )
    if exit_status not in (None, 0):
        suffix = f": {detail}" if detail else ""
        return NvsmiFailure(
            NvsmiFailureKind.OTHER,
            f"nvidia-smi exited with status {exit_status}{suffix}",
            detail=detail,
        )
    return None


# --------------------------------------------------------------------------- values

# Every placeholder nvidia-smi prints for "no value". Any other bracketed text is
# treated the same, because new drivers invent new ones (`[GPU requires reset]`).
_MISSING = frozenset(
    {"", "n/a", "not supported", "unknown error", "insufficient permissions",
     "gpu requires reset", "not available", "unknown"}
)

# Strict ASCII numbers: float() would also take "nan", "1_000" and Arabic digits.
# (re.ASCII because \d would match every Unicode digit; fullmatch because $ allows "\n".)
_NUMBER = re.compile(
    r"([+-]?(?:\d{1,40}(?:\.\d{0,40})?|\.\d{1,40})(?:[eE][+-]?\d{1,4})?)(?:\s*(\S+))?", re.ASCII
)
_INT = re.compile(r"\d{1,9}", re.ASCII)
_HEX = re.compile(r"0[xX]([0-9a-fA-F]{1,32})", re.ASCII)
_UNIT_ALIASES = {"C": {"c", "°c"}}
# What a GPU can physically report, per unit. A value outside is not a reading
# (a broken driver, or a device lying on purpose): it is shown as missing, the
# way nvidia-smi's own "[N/A]" is, and never reaches arithmetic that could
# overflow (1e308 MiB * 2**20 is inf, and int(inf) raises).
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "%": (0.0, 100.0),
    "MiB": (0.0, float(1 << 30)),  # 1 PiB
    "C": (-100.0, 300.0),
    "W": (0.0, 100_000.0),
    "MHz": (0.0, 100_000.0),
}
# Percentages a hair outside 0-100 (rounding) are clamped rather than dropped.
_PERCENT_SLACK = 5.0


def is_missing(text: str) -> bool:
    """True for any of nvidia-smi's "no value" markers."""
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        return True
    return value.lower() in _MISSING


def _parse_float(text: str, unit: str) -> float | None:
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    got_unit = match.group(2)
    if got_unit is not None:
        allowed = _UNIT_ALIASES.get(unit, set()) | {unit.lower()}
        # A unit other than the expected one would give a wrong number (GiB read as MiB).
        if not unit or got_unit.lower() not in allowed:
            return None
    try:
        value = float(match.group(1))
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    return clamp_reading(value, unit)


def clamp_reading(value: float, unit: str) -> float | None:
    """A reading inside its unit's physical range, or None when it cannot be one."""
    bounds = PHYSICAL_RANGES.get(unit)
    if bounds is None:
        return value if math.isfinite(value) else None
    low, high = bounds
    if not math.isfinite(value):
        return None
    if unit == "%" and low - _PERCENT_SLACK <= value <= high + _PERCENT_SLACK:
        return min(high, max(low, value))
    return value if low <= value <= high else None


def parse_hex_mask(text: str) -> int | None:
    """`0x0000000000000004` -> 4; plain decimal digits are accepted too."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    match = _HEX.fullmatch(value)
    if match:
        return int(match.group(1), 16)
    if _INT.fullmatch(value):
        return int(value)
    return None


def _parse_value(field: QueryField, text: str) -> object:
    text = text.strip()
    if is_missing(text):
        return None
    kind = field.kind
    if kind is FieldKind.STR:
        return text
    if kind is FieldKind.INT:
        return int(text) if _INT.fullmatch(text) else None
    if kind is FieldKind.HEXMASK:
        return parse_hex_mask(text)
    return _parse_float(text, field.unit)


# -------------------------------------------------------------------------- samples


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuSample:
    """One GPU at one tick. Every figure may be None: "no value", never 0."""

    index: int
    t: float  # given by the caller (the time the row arrived)
    uuid: str | None = None
    name: str | None = None
    util_gpu: float | None = None
    util_mem: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    temp_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    sm_clock_mhz: float | None = None
    sm_clock_max_mhz: float | None = None
    mem_clock_mhz: float | None = None
    pstate: str | None = None
    fan_pct: float | None = None
    event_reasons: int | None = None  # bitmask, see decode_event_reasons

    @property
    def has_memory(self) -> bool:
        """False on a GB10: unified memory, nvidia-smi reports no framebuffer totals."""
        return self.mem_total_mib is not None and self.mem_total_mib > 0

    @property
    def mem_used_pct(self) -> float | None:
        if not self.has_memory or self.mem_used_mib is None:
            return None
        assert self.mem_total_mib is not None
        return 100.0 * self.mem_used_mib / self.mem_total_mib

    @property
    def event_reason_names(self) -> list[str]:
        return [] if self.event_reasons is None else decode_event_reasons(self.event_reasons)


class CsvRowParser:
    """Parses `--format=csv,noheader[,nounits]` rows for a given field list.

    The field list must include `index`: it is what tells a row from the XID
    and ECC text that loop mode prints between samples (and from a header line).
    Unknown field names are allowed; their columns are counted but not kept.
    """

    def __init__(self, fields: Sequence[str | QueryField]) -> None:
        resolved: list[QueryField | None] = []
        for item in fields:
            if isinstance(item, QueryField):
                resolved.append(item)
            else:
                resolved.append(_BY_QUERY.get(item))
        if not resolved:
            raise ValueError("no fields")
        attrs = [f.attr for f in resolved if f is not None]
        if "index" not in attrs:
            raise ValueError("the field list must include 'index'")
        if len(attrs) != len(set(attrs)):
            raise ValueError("a field is asked for twice")
        self.fields: tuple[QueryField | None, ...] = tuple(resolved)
        self.width = len(resolved)
        self._index_pos = next(
            i for i, f in enumerate(resolved) if f is not None and f.attr == "index"
        )

    def parse_line(self, line: str, t: float) -> GpuSample | None:
        """A sample, or None for anything that is not a complete row."""
        try:
            return self._parse(line, t)
        except Exception:  # a parser for remote text must not take the stream down
            return None

    def _parse(self, line: str, t: float) -> GpuSample | None:
        if not isinstance(line, str):
            return None
        parts = line.strip("\r\n").split(",")
        # A row cut mid-line has fewer columns: never guess the rest.
        if len(parts) != self.width:
            return None
        index_text = parts[self._index_pos].strip()
        if not _INT.fullmatch(index_text):
            return None
        values: dict[str, object] = {}
        for field, text in zip(self.fields, parts, strict=True):
            if field is not None and field.attr != "index":
                values[field.attr] = _parse_value(field, text)
        return GpuSample(index=int(index_text), t=t, **values)  # type: ignore[arg-type]

    def parse_lines(self, lines: Iterable[str], t: float) -> list[GpuSample]:
        return [s for line in lines if (s := self.parse_line(line, t)) is not None]


# ---------------------------------------------------------------------- processes


@dataclass(frozen=True, slots=True)
class ComputeApp:
    gpu_uuid: str
    pid: int
    process_name: str  # CleanText from parse_compute_apps: the boundary for process names
    used_memory_mib: float | None


MAX_PROCESS_NAME = 512


def parse_compute_apps(text: str) -> list[ComputeApp]:
    """Rows of `--query-compute-apps=gpu_uuid,pid,process_name,used_memory`.

    nvidia-smi does not quote, so a process name may contain commas: the
    first two columns and the last are fixed, the name is everything between.
    Header lines, "No running processes found" and broken rows are skipped.
    """
    if not isinstance(text, str):
        return []
    apps: list[ComputeApp] = []
    for raw in text.splitlines():
        head = raw.split(",", 2)
        if len(head) != 3:
            continue
        name_mem = head[2].rsplit(",", 1)
        if len(name_mem) != 2:
            continue
        uuid, pid_text = head[0].strip(), head[1].strip()
        if not uuid or is_missing(uuid) or not _INT.fullmatch(pid_text):
            continue
        name = name_mem[0].strip()
        memory = name_mem[1].strip()
        used = None if is_missing(memory) else _parse_float(memory, "MiB")
        # cleaned here, once: a process name is whatever the device's user chose
        clean = strip_control("" if is_missing(name) else name, max_line=MAX_PROCESS_NAME)
        apps.append(ComputeApp(uuid, int(pid_text), clean, used))
    return apps


def parse_driver_version(text: str) -> str | None:
    """`580.126.09` from a driver_version query (header and extra columns tolerated)."""
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        first = line.split(",", 1)[0].strip()
        if re.fullmatch(r"\d{1,4}(?:\.\d{1,4}){1,3}", first, re.ASCII):
            return first
    return None


# ------------------------------------------------------------------ event reasons

EVENT_REASONS: dict[int, str] = {
    0x1: "GPU idle",
    0x2: "applications clocks setting",
    0x4: "SW power cap",
    0x8: "HW slowdown",
    0x10: "sync boost",
    0x20: "SW thermal slowdown",
    0x40: "HW thermal slowdown",
    0x80: "HW power brake slowdown",
    0x100: "display clock setting",
}
# Worth a red highlight: the GPU is being held back by heat or by hardware.
ALARMING_REASONS = 0x8 | 0x20 | 0x40 | 0x80
# Worth a mention: the power cap is reached (normal under full load).
NOTABLE_REASONS = 0x4


class ReasonSeverity(enum.IntEnum):
    NONE = 0
    NOTABLE = 1
    ALARMING = 2


def decode_event_reasons(mask: int) -> list[str]:
    """Names of the set bits, lowest first; unknown bits as hex (`0x200`)."""
    if not isinstance(mask, int) or mask <= 0:
        return []
    names = []
    remaining = mask
    while remaining:
        bit = remaining & -remaining  # lowest set bit: cost follows set bits, not width
        names.append(EVENT_REASONS.get(bit, hex(bit)))
        remaining ^= bit
    return names


def event_severity(mask: int | None) -> ReasonSeverity:
    if not isinstance(mask, int) or mask <= 0:
        return ReasonSeverity.NONE
    if mask & ALARMING_REASONS:
        return ReasonSeverity.ALARMING
    if mask & NOTABLE_REASONS:
        return ReasonSeverity.NOTABLE
    return ReasonSeverity.NONE
