"""Formatting: no value is an en dash, never 0."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.units import (
    NO_VALUE,
    fmt_bytes,
    fmt_celsius,
    fmt_duration,
    fmt_mhz,
    fmt_mib,
    fmt_percent,
    fmt_watts,
)

ALL = (fmt_bytes, fmt_mib, fmt_percent, fmt_watts, fmt_mhz, fmt_celsius, fmt_duration)


def test_no_value_is_an_en_dash():
    assert NO_VALUE == "\u2013"
    for fmt in ALL:
        assert fmt(None) == NO_VALUE
        assert fmt(math.nan) == NO_VALUE
        assert fmt(math.inf) == NO_VALUE


@pytest.mark.parametrize(
    ("value", "binary", "expected"),
    [(0, True, "0 B"), (1023, True, "1023 B"), (1024, True, "1.0 KiB"),
     (121.3 * 1024**3, True, "121.3 GiB"), (1024**2 - 1, True, "1.0 MiB"),
     (1500, False, "1.5 kB"), (-2048, True, "-2.0 KiB"), (1024**7, True, "1024.0 EiB")],
)
def test_fmt_bytes(value, binary, expected):
    assert fmt_bytes(value, binary=binary) == expected


def test_other_formats():
    assert fmt_mib(19135) == "18.7 GiB"
    assert fmt_percent(0) == "0%"
    assert fmt_percent(96.4) == "96%"
    assert fmt_percent(12.345, precision=1) == "12.3%"
    assert fmt_watts(11.17) == "11.2 W"
    assert fmt_mhz(2405.4) == "2405 MHz"
    assert fmt_celsius(45) == "45 °C"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (42.9, "42s"), (302, "5m 02s"), (3600 + 5 * 60, "1h 05m"),
     (3 * 86400 + 4 * 3600 + 59, "3d 4h"), (-1, NO_VALUE)],
)
def test_fmt_duration(seconds, expected):
    assert fmt_duration(seconds) == expected


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.floats(), st.integers(-(2**80), 2**80)))
def test_formatters_never_raise(value):
    for fmt in ALL:
        text = fmt(value)
        assert isinstance(text, str) and text
        if value is None:
            assert text == NO_VALUE
