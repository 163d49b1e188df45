"""The recording format: timestamped telemetry as JSON lines.

One record per line, each a JSON object that stands on its own, so a file
cut anywhere still reads up to its last whole line and files can be joined:

    {"v": 1, "kind": "gpus", "t": 1764360000.25, "device": "spark-1", "data": [...]}

- `v`: the format version (FORMAT_VERSION). A reader refuses a line with a
  higher version rather than guess at it; a lower one reads as written.
- `kind`: what `data` holds (the KIND_* names below). The set is open: a
  reader keeps records of kinds it does not know and callers skip them, so a
  writer may add kinds (the flight recorder's memory or kernel events)
  without breaking an older replay.
- `t`: wall-clock seconds since the epoch (time.time()), not monotonic time:
  a recording outlives the process that wrote it.
- `device`: the device name, or absent for records about the recording.
- `data`: the payload, JSON only. Samples are their dataclass fields by name;
  a field a reader does not know is ignored, a field it lacks is None, so
  GpuSample or HostSample can gain fields without a new version.

Kinds:
- "meta": about the recording (writer version, host, start), device absent.
- "gpus": one complete nvidia-smi tick, a list of GpuSample objects.
- "host": one HostSample.
- "processes": the GPU processes, a list of objects (GpuProcess fields).
- "state": the device's problems and facts that change rarely
  (gpu_problem, host_problem, driver_version, dropped_fields).
- "link": the connection state ({"state": "connected", "reason": ...}).
- "event": something that happened ({"source": "kernel", "text": ...}).

Pure: encode and decode text; the services layer owns files
(sparktui/services/recordings.py: gzip, bounded, crash-safe). The decoder
takes arbitrary text and raises only RecordError: recordings come from other
machines and from bug reports.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

from sparktui.core.hoststat import HostSample
from sparktui.core.nvsmi import GpuSample

__all__ = [
    "FORMAT_VERSION", "KIND_EVENT", "KIND_GPUS", "KIND_HOST", "KIND_LINK", "KIND_META",
    "KIND_PROCESSES", "KIND_STATE", "MAX_LINE_CHARS", "Record", "RecordError",
    "decode_gpus", "decode_host", "decode_line", "decode_lines", "encode_line",
    "from_jsonable", "gpus_record", "host_record", "to_jsonable",
]

FORMAT_VERSION = 1
# A line longer than this is damage (a tick of 8 GPUs is about 4 KB).
MAX_LINE_CHARS = 1 << 20
# Nesting deeper than this is not something a writer of this format produces.
_MAX_DEPTH = 8

KIND_META = "meta"
KIND_GPUS = "gpus"
KIND_HOST = "host"
KIND_PROCESSES = "processes"
KIND_STATE = "state"
KIND_LINK = "link"
KIND_EVENT = "event"

T = TypeVar("T")


class RecordError(ValueError):
    """A line that is not a record of a version this reader understands."""


@dataclass(frozen=True, slots=True)
class Record:
    """One line of a recording."""

    kind: str
    t: float  # wall-clock seconds since the epoch
    device: str | None = None
    data: Any = None  # JSON-ready: dict, list, str, int, float, bool or None
    version: int = FORMAT_VERSION


# ------------------------------------------------------------------ to JSON

def to_jsonable(value: object, *, omit: Sequence[str] = ()) -> Any:
    """A dataclass (or tuple, list, dict, enum, scalar) as JSON-ready values.

    Dataclasses become objects of their fields (minus `omit` at the top level);
    a float that is NaN or infinite becomes None, as JSON has no such numbers
    and a missing value is None everywhere in sparktui.
    """
    return _jsonable(value, frozenset(omit), 0)


_NO_OMIT: frozenset[str] = frozenset()
_PLAIN = frozenset({type(None), bool, int, str})
# the field names of each dataclass met, in order: dataclasses.fields() builds them
# anew at every call, and the flight recorder encodes 2 samples a second per device
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _jsonable(value: object, omit: Set[str], depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply for a recording")
    kind = type(value)
    # the exact types first (a sample is mostly these), then the general rules
    if kind in _PLAIN:
        return value
    if kind is float:
        return value if math.isfinite(value) else None  # type: ignore[arg-type]
    if kind is tuple or kind is list:
        return [_jsonable(v, _NO_OMIT, depth + 1) for v in value]  # type: ignore[attr-defined]
    if kind is dict:
        return {str(k): _jsonable(v, _NO_OMIT, depth + 1)
                for k, v in value.items()}  # type: ignore[attr-defined]
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: _jsonable(getattr(value, name), _NO_OMIT, depth + 1)
                for name in names if name not in omit}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return _jsonable(value.value, _NO_OMIT, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
        return _jsonable(value, omit, depth)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, _NO_OMIT, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, _NO_OMIT, depth + 1) for v in value]
    raise TypeError(f"cannot record a {type(value).__name__}")


# ---------------------------------------------------------------- from JSON

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def from_jsonable(cls: type[T], data: object) -> T:
    """Build dataclass `cls` from what to_jsonable made of one.

    Tolerant the way a reader of old and new files must be: unknown keys are
    ignored; a field that is absent or holds a value of the wrong type takes
    its default, None where the field allows None, or () for a tuple.
    RecordError when a
    field that has neither (GpuSample.index) cannot be filled.
    """
    if not isinstance(data, Mapping):
        raise RecordError(f"{cls.__name__}: expected an object")
    built = _build(cls, data, 0)
    return typing.cast(T, built)


_MISSING = object()


def _build(cls: type, data: Mapping[str, Any], depth: int) -> object:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = hints.get(f.name, Any)
        value = _convert(hint, data.get(f.name, _MISSING), depth + 1)
        if value is not _MISSING:
            kwargs[f.name] = value
            continue
        if (f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING):
            continue
        if _allows_none(hint):
            kwargs[f.name] = None
            continue
        if typing.get_origin(hint) is tuple:
            kwargs[f.name] = ()  # a series nobody recorded is an empty one
            continue
        raise RecordError(f"{cls.__name__}: no usable value for {f.name!r}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a __post_init__ that refuses the values
        raise RecordError(f"{cls.__name__}: {exc}") from None


def _allows_none(hint: Any) -> bool:
    return hint is Any or hint is type(None) or type(None) in typing.get_args(hint)


def _convert(hint: Any, value: Any, depth: int) -> Any:
    """`value` as type `hint`, or _MISSING when it is not one."""
    if value is _MISSING or depth > _MAX_DEPTH:
        return _MISSING
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        if value is None:
            return None if type(None) in typing.get_args(hint) else _MISSING
        for arm in typing.get_args(hint):
            if arm is type(None):
                continue
            converted = _convert(arm, value, depth)
            if converted is not _MISSING:
                return converted
        return _MISSING
    if origin is tuple:
        return _convert_tuple(typing.get_args(hint), value, depth)
    if hint is type(None):
        return None if value is None else _MISSING
    if hint is bool:
        return value if isinstance(value, bool) else _MISSING
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
            return number if math.isfinite(number) else _MISSING
        return _MISSING
    if hint is str:
        return value if isinstance(value, str) else _MISSING
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except (ValueError, TypeError):
            return _MISSING
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            return _MISSING
        try:
            return _build(hint, value, depth)
        except RecordError:
            return _MISSING
    return _MISSING  # a type this format does not carry


def _convert_tuple(args: tuple[Any, ...], value: Any, depth: int) -> Any:
    if not isinstance(value, list):
        return _MISSING
    if len(args) == 2 and args[1] is Ellipsis:
        items = [_convert(args[0], v, depth + 1) for v in value]
        if any(item is _MISSING for item in items):
            return _MISSING
        return tuple(items)
    if len(args) != len(value):
        return _MISSING
    items = [_convert(a, v, depth + 1) for a, v in zip(args, value, strict=True)]
    return _MISSING if any(item is _MISSING for item in items) else tuple(items)


# ------------------------------------------------------------------- lines

def encode_line(record: Record) -> str:
    """One record as one line of JSON, newline included."""
    if not isinstance(record.kind, str) or not record.kind:
        raise ValueError("a record needs a kind")
    if not math.isfinite(record.t):
        raise ValueError("a record needs a finite time")
    obj: dict[str, Any] = {"v": record.version, "kind": record.kind, "t": record.t}
    if record.device is not None:
        obj["device"] = record.device
    if record.data is not None:
        obj["data"] = _jsonable(record.data, _NO_OMIT, 0)
    # ensure_ascii: a device's odd bytes cannot break the line structure
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=True) + "\n"


def decode_line(line: str | bytes) -> Record:
    """One line -> Record; RecordError for anything else (never another exception)."""
    if isinstance(line, bytes | bytearray):
        try:
            line = bytes(line).decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8") from None
    if not isinstance(line, str):
        raise RecordError("not text")
    if len(line) > MAX_LINE_CHARS:
        raise RecordError("line too long")
    try:
        obj = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise RecordError("not JSON") from None
    if not isinstance(obj, dict):
        raise RecordError("not a JSON object")
    version = obj.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError("no format version")
    if version > FORMAT_VERSION:
        raise RecordError(f"format version {version} is newer than this sparktui reads "
                          f"({FORMAT_VERSION}): upgrade sparktui")
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind or len(kind) > 64:
        raise RecordError("no kind")
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not math.isfinite(t):
        raise RecordError("no time")
    device = obj.get("device")
    if device is not None and not isinstance(device, str):
        raise RecordError("device is not a string")
    return Record(kind=kind, t=float(t), device=device, data=obj.get("data"), version=version)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def decode_lines(lines: Iterable[str | bytes], problems: list[str] | None = None,
                 ) -> Iterator[Record]:
    """Every record of `lines`; a bad line is skipped (and described in `problems`)."""
    for number, line in enumerate(lines, 1):
        if isinstance(line, str) and not line.strip():
            continue
        if isinstance(line, bytes | bytearray) and not bytes(line).strip():
            continue
        try:
            yield decode_line(line)
        except RecordError as exc:
            if problems is not None and len(problems) < 100:
                problems.append(f"line {number}: {exc}")


# ----------------------------------------------------------- typed payloads

def gpus_record(device: str, t: float, gpus: Sequence[GpuSample]) -> Record:
    """One nvidia-smi tick; each sample's own (monotonic) t is left out."""
    return Record(KIND_GPUS, t, device, [to_jsonable(g, omit=("t",)) for g in gpus])


def host_record(device: str, t: float, host: HostSample) -> Record:
    return Record(KIND_HOST, t, device, to_jsonable(host, omit=("t",)))


def decode_gpus(record: Record) -> tuple[GpuSample, ...]:
    """The samples of a "gpus" record, timed at the record's t; bad entries skipped."""
    if record.kind != KIND_GPUS or not isinstance(record.data, list):
        return ()
    out: list[GpuSample] = []
    for item in record.data:
        if isinstance(item, Mapping):
            try:
                out.append(from_jsonable(GpuSample, {**item, "t": record.t}))
            except RecordError:
                continue
    return tuple(out)


def decode_host(record: Record) -> HostSample | None:
    """The sample of a "host" record, timed at the record's t; None when unusable."""
    if record.kind != KIND_HOST or not isinstance(record.data, Mapping):
        return None
    try:
        return from_jsonable(HostSample, {**record.data, "t": record.t})
    except RecordError:
        return None
