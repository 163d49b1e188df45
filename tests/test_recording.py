"""The recording format (core) and its files (services): round trips, tolerance, fuzzing."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.hoststat import HostSample, ThermalZone
from sparktui.core.nvsmi import GpuSample
from sparktui.core.recording import (
    FORMAT_VERSION,
    KIND_EVENT,
    KIND_GPUS,
    Record,
    RecordError,
    decode_gpus,
    decode_host,
    decode_line,
    decode_lines,
    encode_line,
    from_jsonable,
    gpus_record,
    host_record,
)
from sparktui.services.recordings import (
    RecordingRing,
    RecordingWriter,
    read_records,
    ring_segments,
)

FUZZ = settings(max_examples=100, deadline=None)

GPU = GpuSample(index=0, t=12.5, uuid="GPU-1234", name="NVIDIA GB10", util_gpu=96.0,
                mem_used_mib=None, mem_total_mib=None, temp_c=71.0, power_w=42.5,
                sm_clock_mhz=2405.0, pstate="P0", event_reasons=0x4)
HOST = HostSample(t=3.0, cpu_pct=12.5, per_core_pct=(10.0, None, 15.0), load1=1.5,
                  load5=1.0, load15=0.5, mem_total=128 * 1024**3, mem_used=40 * 1024**3,
                  mem_available=88 * 1024**3, page_cache=10 * 1024**3, swap_used=None,
                  hottest_zone=ThermalZone("acpitz", 55.0))


def test_samples_round_trip_with_the_record_time() -> None:
    line = encode_line(gpus_record("spark-1", 1764360000.25, [GPU]))
    assert line.endswith("\n") and line.count("\n") == 1
    record = decode_line(line)
    assert (record.kind, record.device, record.t, record.version) == \
        (KIND_GPUS, "spark-1", 1764360000.25, FORMAT_VERSION)
    (gpu,) = decode_gpus(record)
    assert gpu == GPU.__class__(**{**to_dict(GPU), "t": 1764360000.25})
    assert gpu.mem_total_mib is None  # missing stays missing, never 0
    host = decode_host(decode_line(encode_line(host_record("spark-1", 7.0, HOST))))
    assert host is not None and host.t == 7.0
    assert host.per_core_pct == (10.0, None, 15.0)
    assert host.hottest_zone == ThermalZone("acpitz", 55.0)
    assert host.swap_used is None and host.mem_available == HOST.mem_available


def test_gb10_host_figures_round_trip() -> None:
    from sparktui.core.hoststat import MemInfo
    from sparktui.core.memtruth import BuddyZone, Pressure, PressureLine, Rail

    host = dataclasses.replace(
        HOST, mem=MemInfo(total=1, free=2, available=3, shmem=4, unevictable=5),
        uptime_s=12.5, boot_id="618eab9c-6504-48fc-8519-18c99aecab3e",
        pressure=Pressure(some=PressureLine(1.0, 2.0, 3.0, total_us=99)),
        buddy=(BuddyZone(0, "Normal", (1, 2, 3)),), rails=(Rail("gpu", 17.5),), prochot=False)
    back = decode_host(decode_line(encode_line(host_record("d", 3.0, host))))
    assert back == host


def to_dict(sample: object) -> dict:
    return {name: getattr(sample, name) for name in sample.__dataclass_fields__}


def test_unknown_fields_are_ignored_and_absent_ones_are_none() -> None:
    data = {"index": 1, "util_gpu": 5, "new_field_from_the_future": [1, 2], "temp_c": "hot"}
    gpu = from_jsonable(GpuSample, {**data, "t": 1.0})
    assert gpu.index == 1 and gpu.util_gpu == 5.0 and gpu.temp_c is None
    host = from_jsonable(HostSample, {"t": 1.0, "cpu_pct": 3})
    assert host.cpu_pct == 3.0 and host.mem_total is None and host.per_core_pct == ()
    with pytest.raises(RecordError):
        from_jsonable(GpuSample, {"t": 1.0, "index": True})  # a bool is not an index


def test_non_finite_numbers_are_recorded_as_missing() -> None:
    line = encode_line(gpus_record("d", 1.0, [GpuSample(index=0, t=0, power_w=float("nan"))]))
    assert "NaN" not in line
    assert decode_gpus(decode_line(line))[0].power_w is None


def test_a_newer_version_is_refused_with_a_reason() -> None:
    with pytest.raises(RecordError, match="newer"):
        decode_line(json.dumps({"v": FORMAT_VERSION + 1, "kind": "gpus", "t": 1}))


@pytest.mark.parametrize("line", [
    "", "{", "[]", "null", '{"v":1}', '{"v":1,"kind":"x"}', '{"v":true,"kind":"x","t":1}',
    '{"v":1,"kind":"x","t":NaN}', '{"v":1,"kind":"x","t":1e999}', '{"v":1,"kind":5,"t":1}',
    '{"v":1,"kind":"x","t":1,"device":3}', "[" * 100000, b"\xff\xfe",
])
def test_bad_lines_raise_record_error_only(line) -> None:
    with pytest.raises(RecordError):
        decode_line(line)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_decoder_never_raises_anything_else(text) -> None:
    try:
        record = decode_line(text)
    except RecordError:
        return
    decode_gpus(record)
    decode_host(record)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=6)
_field_names = st.sampled_from([*GpuSample.__dataclass_fields__,
                                *HostSample.__dataclass_fields__, "hottest_zone"])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["gpus", "host"]), st.floats(allow_nan=False, allow_infinity=False),
       st.one_of(_json, st.lists(st.dictionaries(_field_names, _json, max_size=8), max_size=3),
                 st.dictionaries(_field_names, _json, max_size=12)))
def test_typed_decoders_survive_any_payload(kind, t, data) -> None:
    record = decode_line(json.dumps({"v": 1, "kind": kind, "t": t, "data": data}))
    for gpu in decode_gpus(record):
        assert isinstance(gpu.index, int) and gpu.t == t
    host = decode_host(record)
    assert host is None or host.t == t


@FUZZ
@given(st.lists(st.sampled_from([encode_line(gpus_record("a", 1.0, [GPU])),
                                 encode_line(host_record("b", 2.0, HOST)),
                                 "garbage\n", '{"v":1}\n', "\n"]), max_size=20))
def test_decode_lines_skips_bad_lines_and_says_so(lines) -> None:
    problems: list[str] = []
    records = list(decode_lines("".join(lines).splitlines(), problems))
    good = [line for line in lines if line.startswith('{"v":1,"kind"')]
    assert len(records) == len(good)
    assert len(problems) == sum(1 for line in lines if line in ("garbage\n", '{"v":1}\n'))


def test_unknown_kinds_are_kept_for_callers_to_skip() -> None:
    record = decode_line(encode_line(Record(KIND_EVENT, 5.0, "d",
                                            {"source": "kernel", "text": "NVRM: Xid 79"})))
    assert record.data == {"source": "kernel", "text": "NVRM: Xid 79"}
    assert decode_gpus(record) == () and decode_host(record) is None


# ------------------------------------------------------------------- files


def _records(n: int) -> list[Record]:
    return [gpus_record("spark", float(i), [GpuSample(index=0, t=0, util_gpu=float(i))])
            for i in range(n)]


def test_writer_reads_back_in_order_and_is_private(tmp_path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = RecordingWriter(path, flush_records=3)
    for record in _records(10):
        writer.write(record)
        if writer.due:
            writer.flush()
    writer.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [r.t for r in read_records(path)] == [float(i) for i in range(10)]
    # a plain gzip reader reads it too: the members are standard
    assert len(gzip.decompress(path.read_bytes()).splitlines()) == 10


def test_every_truncation_reads_a_prefix(tmp_path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = RecordingWriter(path, flush_records=2)
    for record in _records(6):
        writer.write(record)
        if writer.due:
            writer.flush()
    writer.close()
    whole = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    for size in range(len(whole) + 1):
        cut.write_bytes(whole[:size])
        problems: list[str] = []
        times = [r.t for r in read_records(cut, problems)]
        assert times == [float(i) for i in range(len(times))]
        if size == len(whole):
            assert len(times) == 6 and problems == []


def test_damage_in_the_middle_skips_to_the_next_member(tmp_path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = RecordingWriter(path, flush_records=2)
    for record in _records(6):
        writer.write(record)
        if writer.due:
            writer.flush()
    writer.close()
    data = bytearray(path.read_bytes())
    first = gzip.compress(b"", mtime=0)  # locate the second member by its header
    second = data.find(b"\x1f\x8b\x08", 1)
    assert second > len(first) // 2
    for i in range(12, second - 8):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    problems: list[str] = []
    times = [r.t for r in read_records(path, problems)]
    assert times[-4:] == [2.0, 3.0, 4.0, 5.0] and 0.0 not in times
    assert problems


def test_a_size_limit_stops_the_file_growing(tmp_path) -> None:
    path = tmp_path / "rec.jsonl.gz"
    writer = RecordingWriter(path, max_bytes=400, flush_records=1)
    for record in _records(50):
        writer.write(record)
        writer.flush()
    writer.close()
    assert writer.full and path.stat().st_size <= 400
    assert writer.records_dropped > 0
    assert len(list(read_records(path))) == writer.records_written


def test_ring_stays_bounded_and_reads_oldest_first(tmp_path) -> None:
    ring = RecordingRing(tmp_path / "ring", segment_bytes=1024, max_segments=3,
                         flush_records=5)
    for record in _records(400):
        ring.write(record)
        if ring.due:
            ring.flush()
    ring.close()
    segments = ring_segments(tmp_path / "ring")
    assert len(segments) == 3
    assert sum(s.stat().st_size for s in segments) < 3 * 1024 + 1024
    times = [r.t for r in read_records(tmp_path / "ring")]
    assert times == sorted(times) and times[-1] == 399.0 and times[0] > 0
    # a second run continues the numbering instead of appending to a maybe-cut segment
    again = RecordingRing(tmp_path / "ring", segment_bytes=1024, max_segments=3)
    again.close()
    assert ring_segments(tmp_path / "ring")[-1].name > segments[-1].name
