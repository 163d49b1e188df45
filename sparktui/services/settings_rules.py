"""What each setting may hold: its type and its physical range.

The config store (sparktui.services.config) reads TOML; this module decides
whether each value is one sparktui can run with. A value outside its range
(`memory_floor_gib = inf`, `history_minutes = 1e9`, `keepalive_count_max = 0`,
NaN) would crash or loop deep inside a service, far from the line that caused
it. Here it becomes one sentence naming the key, and the default stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """The type(s) a setting takes and, for numbers, its inclusive range."""

    types: tuple[type, ...]
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    why: str = ""  # what the range protects, said in the message

    def describe_types(self) -> str:
        return " or ".join("none" if t is type(None) else t.__name__ for t in self.types)


_NUM = (int, float)

#: every setting and what it accepts; config.Settings has exactly these fields
RULES: dict[str, Rule] = {
    "refresh_interval": Rule(_NUM, 0.1, 3600, why="seconds between samples"),
    "history_minutes": Rule(_NUM, 1, 24 * 60, why="the history is held in memory"),
    "theme": Rule((str,)),
    "compact": Rule((bool, type(None))),
    "read_only": Rule((bool,)),
    "restore_on_start": Rule((bool,)),
    "confirm_quit": Rule((bool,)),
    "memory_floor_gib": Rule(_NUM, 0, 4096, why="GiB of available memory"),
    "temperature_alert_c": Rule(_NUM, 0, 200, why="degrees Celsius"),
    "power_alert_w": Rule((*_NUM, type(None)), 0, 100_000, why="watts"),
    "units": Rule((str,), choices=("binary", "decimal")),
    "keepalive_interval": Rule(_NUM, 1, 3600, why="seconds between keepalives"),
    "keepalive_count_max": Rule((int,), 1, 100,
                                why="missed keepalives before a link counts as dead"),
    "reconnect_max_delay": Rule(_NUM, 1, 3600, why="seconds between reconnects at most"),
    "keymap": Rule((dict,)),
    "docker_socket": Rule((str,)),
    "guard_free_floor_gib": Rule(_NUM, 0, 4096, why="GiB of free memory"),
    "guard_hard_floor_gib": Rule(_NUM, 0, 4096, why="GiB of available memory"),
    "guard_hard_floor_s": Rule(_NUM, 0, 600, why="seconds under the hard floor"),
    "flight_recorder_minutes": Rule(_NUM, 0, 24 * 60, why="minutes kept on disk per device"),
    "prometheus_url": Rule((str,)),
}


def check_setting(key: str, value: Any) -> tuple[Any, str | None]:
    """`(value to use, None)` when acceptable, else `(None, why not)`.

    Never raises, whatever `value` is. The message names the key and what it
    must be; the caller adds where (file and line) and keeps the default.
    """
    rule = RULES.get(key)
    if rule is None:
        return None, f"unknown setting {key!r} ignored"
    # bool is an int subclass: refuse `refresh_interval = true`
    if not isinstance(value, rule.types) or (isinstance(value, bool) and bool not in rule.types):
        return None, f"{key} must be {rule.describe_types()}, got {_show(value)}; default kept"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None, f"{key} must be a finite number, got {_show(value)}; default kept"
        if rule.low is not None and rule.high is not None \
                and not rule.low <= value <= rule.high:
            what = f" ({rule.why})" if rule.why else ""
            return None, (f"{key} must be between {_num(rule.low)} and {_num(rule.high)}{what}, "
                          f"got {_show(value)}; default kept")
    if rule.choices and value not in rule.choices:
        return None, (f"{key} must be one of {', '.join(rule.choices)}, got {_show(value)}; "
                      "default kept")
    if key == "keymap":
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        if bad:
            return None, (f"keymap must map binding ids to key strings (see {bad[0]!r}); "
                          "default kept")
        value = {str(k): v for k, v in value.items()}
    if key == "docker_socket" and not value.startswith("/"):
        return None, f"docker_socket must be an absolute path, got {_show(value)}; default kept"
    return value, None


def _num(value: float) -> str:
    return f"{value:g}"


def _show(value: Any) -> str:
    from sparktui.core.sanitize import strip_control

    text = repr(value)
    return strip_control(text if len(text) <= 60 else text[:59] + "…")
