"""Number formatting shared by the UI and the CLI.

Every formatter takes None (and NaN/inf) and prints NO_VALUE, an en dash:
a missing reading must never look like a real 0.
"""

from __future__ import annotations

import math

__all__ = [
    "NO_VALUE",
    "fmt_bytes",
    "fmt_celsius",
    "fmt_duration",
    "fmt_mhz",
    "fmt_mib",
    "fmt_percent",
    "fmt_watts",
]

NO_VALUE = "\u2013"  # an en dash

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB")

MIB = 1024 * 1024


def _number(value: float | int | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def fmt_bytes(n: float | int | None, binary: bool = True, precision: int = 1) -> str:
    """1.303e11 -> "121.3 GiB"; whole bytes below 1 KiB print without decimals."""
    value = _number(n)
    if value is None:
        return NO_VALUE
    base, units = (1024.0, _BINARY) if binary else (1000.0, _DECIMAL)
    size = abs(value)
    if size < base:
        return f"{value:.0f} B"
    exponent = 0
    while size >= base and exponent < len(units) - 1:
        size /= base
        exponent += 1
    # Rounding can reach the next unit ("1024.0 MiB"): step up instead.
    if round(size, precision) >= base and exponent < len(units) - 1:
        size /= base
        exponent += 1
    sign = "-" if value < 0 else ""
    return f"{sign}{size:.{precision}f} {units[exponent]}"


def fmt_mib(mib: float | int | None, precision: int = 1) -> str:
    """nvidia-smi reports MiB: 19135 -> "18.7 GiB"."""
    value = _number(mib)
    return NO_VALUE if value is None else fmt_bytes(value * MIB, precision=precision)


def fmt_percent(value: float | int | None, precision: int = 0) -> str:
    number = _number(value)
    return NO_VALUE if number is None else f"{number:.{precision}f}%"


def fmt_watts(value: float | int | None, precision: int = 1) -> str:
    number = _number(value)
    return NO_VALUE if number is None else f"{number:.{precision}f} W"


def fmt_mhz(value: float | int | None) -> str:
    number = _number(value)
    return NO_VALUE if number is None else f"{number:.0f} MHz"


def fmt_celsius(value: float | int | None, precision: int = 0) -> str:
    number = _number(value)
    return NO_VALUE if number is None else f"{number:.{precision}f} °C"


def fmt_duration(seconds: float | int | None) -> str:
    """Two units at most: "3d 4h", "2h 05m", "5m 02s", "42s"."""
    number = _number(seconds)
    if number is None or number < 0:
        return NO_VALUE
    total = int(number)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
