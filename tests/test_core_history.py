"""Ring buffers and the per-source history."""

from __future__ import annotations

import math
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.history import GPU_METRICS, HOST_METRICS, History, RingBuffer
from sparktui.core.hoststat import HostSample, ThermalZone
from sparktui.core.nvsmi import GpuSample

FUZZ = settings(max_examples=200, deadline=None)


def test_ring_buffer_keeps_the_newest():
    ring = RingBuffer(3)
    assert len(ring) == 0 and ring.last is None and ring.last_value is None
    for i in range(5):
        ring.append(float(i), i * 10.0)
    assert len(ring) == 3
    assert ring.values() == [20.0, 30.0, 40.0]
    assert ring.times() == [2.0, 3.0, 4.0]
    assert ring.last == (4.0, 40.0)


def test_gaps_stay_gaps():
    ring = RingBuffer(4)
    ring.append(1.0, 5.0)
    ring.append(2.0, None)
    ring.append(3.0, math.nan)
    ring.append(4.0, math.inf)
    assert ring.values() == [5.0, None, None, None]
    assert ring.last_value is None
    assert ring.span(10, 4.0) == (5.0, 5.0)


def test_window():
    ring = RingBuffer(100)
    for t in range(10):
        ring.append(float(t), float(t))
    assert ring.window(3, 9.0) == [(6.0, 6.0), (7.0, 7.0), (8.0, 8.0), (9.0, 9.0)]
    assert ring.window(3, 100.0) == []
    assert ring.span(100, 9.0) == (0.0, 9.0)
    assert RingBuffer(2).span(10, 0) is None


def test_memory_stays_flat():
    ring = RingBuffer(10)
    size = (ring._t.buffer_info()[1], ring._v.buffer_info()[1])
    for i in range(10_000):
        ring.append(float(i), float(i))
    assert (ring._t.buffer_info()[1], ring._v.buffer_info()[1]) == size == (10, 10)
    ring.clear()
    assert len(ring) == 0


def test_bad_capacity():
    with pytest.raises(ValueError):
        RingBuffer(0)
    with pytest.raises(ValueError):
        History(0, 1)


@FUZZ
@given(st.integers(1, 20),
       st.lists(st.tuples(st.floats(-1e6, 1e6), st.one_of(st.none(), st.floats(-1e9, 1e9))),
                max_size=60),
       st.floats(0, 1e6), st.floats(-1e6, 1e6))
def test_ring_buffer_matches_a_deque(capacity, points, seconds, now):
    ring = RingBuffer(capacity)
    model: deque[tuple[float, float | None]] = deque(maxlen=capacity)
    for t, v in points:
        ring.append(t, v)
        model.append((t, v))
    assert ring.items() == list(model)
    assert len(ring) == len(model)
    assert ring.last == (model[-1] if model else None)
    assert ring.window(seconds, now) == [p for p in model if now - seconds <= p[0] <= now]


def test_history_capacity_and_keys():
    history = History(history_seconds=300, interval_s=0.7)
    assert history.capacity == math.ceil(300 / 0.7)
    sample = GpuSample(index=0, t=1.0, util_gpu=96.0, power_w=53.2)
    history.record_gpu(sample)
    assert len(history) == len(GPU_METRICS)
    assert history.series(("gpu0", "power_w")).last == (1.0, 53.2)
    assert history.series(("gpu0", "mem_used_mib")).last == (1.0, None)  # GB10: a gap
    host = HostSample(t=2.0, cpu_pct=12.5, per_core_pct=(10.0, None), load1=0.5, load5=None,
                      load15=None, mem_total=10, mem_used=5, mem_available=5, page_cache=1,
                      swap_used=None, hottest_zone=ThermalZone("acpitz", 45.0))
    history.record_host(host, "spark-1")
    assert history.series(("spark-1", "hottest_c")).last_value == 45.0
    assert history.series(("spark-1", "core1")).last_value is None
    assert ("spark-1", "cpu_pct") in history
    assert len(history) == len(GPU_METRICS) + len(HOST_METRICS) + 2
    history.forget("spark-1")
    assert len(history) == len(GPU_METRICS)
    assert history.series(("gpu0", "power_w")).capacity == history.capacity


def test_history_series_count_is_capped():
    history = History(10, 1)
    history.MAX_SERIES = 5
    for i in range(50):
        history.record(("gpu", str(i)), 0.0, 1.0)
    assert len(history) == 5
    history.clear()
    assert history.keys() == []
