"""Prometheus text, read with prometheus-client's own parser, and the arithmetic on it.

The exposition format has enough corners (escaping, HELP/TYPE order, counters
named with and without `_total`, OpenMetrics suffixes) that a hand-written
parser would be wrong somewhere; `prometheus_client.parser` is the reference
implementation, so it does the reading. What is here is what a dashboard does
with the samples: sum a series over its labels, take the rate of a counter
between two scrapes, and estimate a quantile from histogram buckets the way
PromQL's `histogram_quantile` does (linear within a bucket).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: sample name -> [(labels, value)], as the exposition listed them
Samples = dict[str, list[tuple[dict[str, str], float]]]

MAX_TEXT = 4 * 1024 * 1024  # a /metrics page larger than this is not a serving engine's


class MetricsError(ValueError):
    """The text is not Prometheus exposition format (the message says where it broke)."""


def parse_prometheus(text: str) -> Samples:
    """Every sample of a /metrics page, by sample name (raises MetricsError)."""
    from prometheus_client.parser import text_string_to_metric_families

    if len(text) > MAX_TEXT:
        raise MetricsError(f"metrics page of {len(text)} characters is too large")
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                value = float(sample.value)
                samples.setdefault(sample.name, []).append((dict(sample.labels), value))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise MetricsError(f"not Prometheus text: {exc}") from exc
    return samples


def total(samples: Samples, names: Iterable[str]) -> float | None:
    """The sum over all label sets of the first name present; None when none is."""
    for name in names:
        rows = samples.get(name)
        if rows:
            values = [v for _labels, v in rows if math.isfinite(v)]
            return sum(values) if values else None
    return None


def first_present(samples: Samples, names: Iterable[str]) -> str | None:
    for name in names:
        if samples.get(name):
            return name
    return None


def label_values(samples: Samples, label: str) -> tuple[str, ...]:
    """Every value one label takes across the page (e.g. model_name), in order seen."""
    seen: dict[str, None] = {}
    for rows in samples.values():
        for labels, _value in rows:
            value = labels.get(label)
            if value:
                seen.setdefault(value, None)
    return tuple(seen)


Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), ascending


def buckets(samples: Samples, base: str) -> Buckets | None:
    """A histogram's cumulative buckets, summed over its other labels; None when absent."""
    rows = samples.get(base + "_bucket")
    if not rows:
        return None
    summed: dict[float, float] = {}
    for labels, value in rows:
        try:
            bound = float(labels.get("le", "nan"))
        except ValueError:
            continue
        if math.isnan(bound) or not math.isfinite(value):
            continue
        summed[bound] = summed.get(bound, 0.0) + value
    if not summed:
        return None
    return tuple(sorted(summed.items()))


def bucket_delta(now: Buckets, then: Buckets | None) -> Buckets | None:
    """Observations between two scrapes; None when the server restarted (counts fell)."""
    if then is None:
        return now
    before = dict(then)
    out = []
    for bound, count in now:
        delta = count - before.get(bound, 0.0)
        if delta < 0:
            return None
        out.append((bound, delta))
    return tuple(out)


def observations(histogram: Buckets) -> float:
    return histogram[-1][1] if histogram else 0.0


def histogram_quantile(q: float, histogram: Buckets | None) -> float | None:
    """PromQL's estimate: linear interpolation inside the bucket the rank falls in.

    None when there are no observations. A rank in the +Inf bucket gives the
    highest finite bound (as PromQL does): the true value is somewhere above it.
    """
    if not histogram:
        return None
    count = observations(histogram)
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in histogram:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower_bound
            if cumulative == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                cumulative - lower_count)
        lower_bound, lower_count = bound, cumulative
    return lower_bound


@dataclass(frozen=True)
class Scrape:
    """One reading of an endpoint's metrics page, stamped with the monotonic clock."""

    t: float
    samples: Samples


def rate(now: Scrape, then: Scrape | None, names: Iterable[str]) -> float | None:
    """Per-second increase of a counter; None without two readings or after a reset."""
    if then is None or now.t <= then.t:
        return None
    names = tuple(names)
    a, b = total(then.samples, names), total(now.samples, names)
    if a is None or b is None or b < a:
        return None
    return (b - a) / (now.t - then.t)


def increase(now: Scrape, then: Scrape | None, names: Iterable[str]) -> float | None:
    """How much a counter grew between two readings (the whole value without `then`)."""
    names = tuple(names)
    b = total(now.samples, names)
    if b is None:
        return None
    if then is None:
        return b
    a = total(then.samples, names)
    if a is None or b < a:
        return None
    return b - a
