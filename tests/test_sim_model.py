"""The simulated device model: plausible ranges, determinism, processes, host files."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.sim.device.gpu_model import MEM_TOTAL_KB, NCPU, THERMAL_ZONES, SimDevice


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _device(**kw) -> tuple[SimDevice, FakeClock]:
    clock = FakeClock()
    kw.setdefault("seed", 7)
    return SimDevice(clock=clock, **kw), clock


def test_same_seed_same_clock_gives_same_values_whatever_the_query_pattern():
    a, ca = _device()
    b, cb = _device()
    for t in range(0, 300, 7):
        ca.t = 1000.0 + t
        a.gpu(0)  # a is queried often, b only at the end
    cb.t = ca.t
    assert a.gpu(0) == b.gpu(0)
    assert a.meminfo() == b.meminfo()
    assert a.cpu_stat_lines() == b.cpu_stat_lines()


def test_gb10_idle_values_match_the_reference():
    dev, _ = _device(auto=False)
    r = dev.gpu(0)
    assert r.name == "NVIDIA GB10"
    assert r.memory_total is None and r.memory_used is None and r.memory_free is None
    assert r.power_limit is None and r.fan_speed is None and r.clocks_mem is None
    assert r.utilization_gpu == 0 and r.utilization_memory == 0
    assert 11.0 <= r.power_draw <= 17.0
    assert 35 <= r.temperature <= 41
    assert 2385 <= r.clocks_sm <= 2489 and r.clocks_max_sm == 3003
    assert r.pstate == "P8"
    assert r.pci_bus_id == "0000000F:01:00.0" and r.compute_cap == "12.1"
    assert re.fullmatch(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        r.uuid)


def test_sustained_load_heats_up_and_hits_the_power_cap():
    dev, clock = _device(auto=False)
    dev.set_load(0.96)
    seen_cap = False
    for _ in range(600):
        clock.t += 1
        r = dev.gpu(0)
        seen_cap |= bool(r.event_reasons & 0x4)
    assert r.pstate == "P0" and r.utilization_gpu == 96
    assert 75 <= r.temperature <= 89
    assert 53 <= r.power_draw <= 63
    assert 2385 <= r.clocks_sm <= 2489
    assert seen_cap
    # a manual load shows up as a compute process, and killing it releases the load
    (proc,) = dev.compute_apps()
    dev.kill(proc.pid)
    clock.t += 1
    assert dev.gpu(0).utilization_gpu == 0 and dev.compute_apps() == []


def test_load_burst_lifts_then_ends():
    dev, clock = _device(auto=False)
    dev.add_load_burst(5, level=0.8)
    clock.t += 1
    assert dev.gpu(0).utilization_gpu == 80
    clock.t += 5
    assert dev.gpu(0).utilization_gpu == 0


def test_automatic_schedule_starts_a_job_that_eats_unified_memory():
    dev, clock = _device()
    avail0 = _meminfo(dev)["MemAvailable"]
    clock.t += 3 + 20  # the first job starts ~3 s in and loads for at most 12 s
    apps = dev.compute_apps()
    assert len(apps) == 1 and apps[0].used_memory_mib > 1000
    assert _meminfo(dev)["MemAvailable"] < avail0 - apps[0].used_memory_mib * 1024 * 0.8
    with pytest.raises(ProcessLookupError):
        dev.kill(12345678)
    with pytest.raises(PermissionError):
        dev.kill(1)
    dev.kill(apps[0].pid)
    assert dev.compute_apps() == []


def _meminfo(dev: SimDevice) -> dict[str, int]:
    out = {}
    for line in dev.meminfo().splitlines():
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def test_meminfo_shape():
    dev, _ = _device()
    info = _meminfo(dev)
    assert info["MemTotal"] == MEM_TOTAL_KB
    assert 120 * 2**20 < MEM_TOTAL_KB < 122 * 2**20  # about 121 GiB
    for key in ("MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal"):
        assert 0 <= info[key] <= MEM_TOTAL_KB


def _stat(dev: SimDevice) -> list[list[int]]:
    return [[int(v) for v in line.split()[1:]] for line in dev.cpu_stat_lines()]


def test_proc_stat_is_cumulative_and_consistent():
    dev, clock = _device()
    before = _stat(dev)
    assert len(before) == NCPU + 1
    clock.t += 10
    after = _stat(dev)
    assert [sum(col) for col in zip(*after[1:], strict=True)] == after[0]
    for b, a in zip(before, after, strict=True):
        assert all(x <= y for x, y in zip(b, a, strict=True))
    # 10 s at 100 Hz on each cpu (give or take rounding of the running step)
    for b, a in zip(before[1:], after[1:], strict=True):
        assert abs((sum(a) - sum(b)) - 1000) <= 60


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=15))
def test_values_stay_in_range_for_any_query_times(steps):
    dev, clock = _device(seed=3)
    for dt in steps:
        clock.t += dt
        r = dev.gpu(0)
        assert 0 <= r.utilization_gpu <= 100
        assert 30 <= r.temperature <= 90
        assert 10 <= r.power_draw <= 65
        zones = dev.thermal()
        assert len(zones) == len(THERMAL_ZONES)
        assert all(20_000 < milli < 100_000 for _, milli in zones)
        la = dev.loadavg().split()
        assert len(la) == 5 and "/" in la[3]


def test_discrete_kind_has_framebuffer_memory():
    dev, clock = _device(gpus=8, kind="discrete")
    clock.t += 30
    readings = dev.readings()
    assert len(readings) == 8 and len({r.uuid for r in readings}) == 8
    for r in readings:
        assert r.name == "NVIDIA H100 80GB HBM3" and r.memory_total == 81559
        assert r.memory_used + r.memory_free <= r.memory_total
        assert r.power_limit == 700.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        SimDevice(kind="tpu")
    with pytest.raises(ValueError):
        SimDevice(gpus=0)
