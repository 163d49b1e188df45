"""Fixed-size time series for the charts.

Memory must stay flat however long the UI runs: every buffer is allocated at
its full capacity up front (two `array('d')`, no per-point objects) and the
number of series is capped too.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparktui.core.hoststat import HostSample
    from sparktui.core.nvsmi import GpuSample

__all__ = ["GPU_METRICS", "HOST_METRICS", "History", "RingBuffer"]

Point = tuple[float, float | None]

# GpuSample attributes charted per GPU.
GPU_METRICS: tuple[str, ...] = (
    "util_gpu", "util_mem", "mem_used_mib", "temp_c", "power_w",
    "sm_clock_mhz", "mem_clock_mhz", "fan_pct",
)
# HostSample attributes charted per host (per-core series are "core<N>").
HOST_METRICS: tuple[str, ...] = (
    "cpu_pct", "mem_used", "mem_available", "page_cache", "swap_used",
    "load1", "hottest_c",
)


def _as_value(value: float | None) -> float:
    # NaN is the gap marker inside the array; a NaN or inf given in is a gap too.
    if value is None:
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


class RingBuffer:
    """The last `capacity` (t, value) points; value None is a gap in the line."""

    __slots__ = ("_count", "_start", "_t", "_v", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = int(capacity)
        self._t = array("d", bytes(8 * self.capacity))
        self._v = array("d", bytes(8 * self.capacity))
        self._start = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def clear(self) -> None:
        self._start = 0
        self._count = 0

    def append(self, t: float, value: float | None) -> None:
        if self._count < self.capacity:
            slot = (self._start + self._count) % self.capacity
            self._count += 1
        else:
            slot = self._start
            self._start = (self._start + 1) % self.capacity
        self._t[slot] = float(t)
        self._v[slot] = _as_value(value)

    def _slot(self, i: int) -> int:
        return (self._start + i) % self.capacity

    def _point(self, slot: int) -> Point:
        v = self._v[slot]
        return (self._t[slot], None if math.isnan(v) else v)

    def __iter__(self) -> Iterator[Point]:
        """Points, oldest first."""
        for i in range(self._count):
            yield self._point(self._slot(i))

    def items(self) -> list[Point]:
        return list(self)

    def values(self) -> list[float | None]:
        return [v for _, v in self]

    def times(self) -> list[float]:
        return [t for t, _ in self]

    @property
    def last(self) -> Point | None:
        """The newest point, or None when empty."""
        if not self._count:
            return None
        return self._point(self._slot(self._count - 1))

    @property
    def last_value(self) -> float | None:
        point = self.last
        return None if point is None else point[1]

    def window(self, seconds: float, now: float) -> list[Point]:
        """Points with now - seconds <= t <= now, oldest first.

        A linear scan rather than a bisect: the caller's clock may step
        backwards (NTP), and then times are not sorted.
        """
        start = now - seconds
        return [p for p in self if start <= p[0] <= now]

    def span(self, seconds: float, now: float) -> tuple[float, float] | None:
        """(min, max) of the values in the window, gaps ignored; None if no value."""
        values = [v for _, v in self.window(seconds, now) if v is not None]
        if not values:
            return None
        return min(values), max(values)


class History:
    """Ring buffers keyed by (source, metric), e.g. ("gpu0", "power_w")."""

    # Sources come and go (GPUs, hosts, cores): cap the series so a long session
    # with churn cannot grow without bound. New keys past the cap are not kept.
    MAX_SERIES = 4096

    def __init__(self, history_seconds: float, interval_s: float) -> None:
        if history_seconds <= 0 or interval_s <= 0:
            raise ValueError("history_seconds and interval_s must be positive")
        self.history_seconds = float(history_seconds)
        self.interval_s = float(interval_s)
        self.capacity = max(1, math.ceil(self.history_seconds / self.interval_s))
        self._series: dict[Hashable, RingBuffer] = {}

    def __len__(self) -> int:
        return len(self._series)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._series

    def keys(self) -> list[Hashable]:
        return list(self._series)

    def series(self, key: Hashable) -> RingBuffer | None:
        return self._series.get(key)

    def record(self, key: Hashable, t: float, value: float | None) -> None:
        buffer = self._series.get(key)
        if buffer is None:
            if len(self._series) >= self.MAX_SERIES:
                return
            buffer = self._series[key] = RingBuffer(self.capacity)
        buffer.append(t, value)

    def record_gpu(self, sample: GpuSample, source: str | None = None) -> None:
        """Every GPU_METRICS figure of a sample under `source` (default "gpu<index>")."""
        name = source if source is not None else f"gpu{sample.index}"
        for metric in GPU_METRICS:
            self.record((name, metric), sample.t, getattr(sample, metric))

    def record_host(self, sample: HostSample, source: str = "host") -> None:
        for metric in HOST_METRICS:
            self.record((source, metric), sample.t, getattr(sample, metric))
        for i, pct in enumerate(sample.per_core_pct):
            self.record((source, f"core{i}"), sample.t, pct)

    def mark_gap(self, t: float) -> None:
        """End every line at `t` (the device dropped): the charts show the time until
        the next sample as a gap, never a line drawn across it."""
        for buffer in self._series.values():
            last = buffer.last
            if last is not None and last[1] is not None and last[0] <= t:
                buffer.append(t, None)

    def forget(self, source: str) -> None:
        """Drop every series of a source (a device removed from the config)."""
        for key in [k for k in self._series if isinstance(k, tuple) and k and k[0] == source]:
            del self._series[key]

    def clear(self) -> None:
        self._series.clear()
