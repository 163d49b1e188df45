"""Group 2: absurd numbers from a device and absurd values in the config.

A device that reports `1e308` MiB, `inf` or NaN, and a config that says
`memory_floor_gib = inf` or `tags = 5`, must give a missing figure or a clear
message per bad key, never an exception for the whole fleet.
"""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core import nvsmi
from sparktui.core.nvsmi import CsvRowParser, parse_compute_apps
from sparktui.services.config import ConfigError, Settings, load_config, save_settings
from sparktui.services.settings_rules import RULES, check_setting
from sparktui.services.telemetry import DeviceTelemetry, GpuProcess, join_processes

ABSURD = ["1e308", "-1e308", "inf", "-inf", "nan", "NaN", "1e4000", "99999999999999999999999"]


def _row(**values: str) -> str:
    base = dict.fromkeys(nvsmi.DEFAULT_FIELDS, "")
    base.update({"index": "0", "uuid": "GPU-1", "name": "NVIDIA GB10"})
    base.update(values)
    return ", ".join(base[name] for name in nvsmi.DEFAULT_FIELDS)


@pytest.mark.parametrize("value", ABSURD)
def test_absurd_gpu_memory_is_missing_and_memory_view_never_raises(value: str) -> None:
    parser = CsvRowParser(list(nvsmi.DEFAULT_FIELDS))
    sample = parser.parse_line(_row(**{"memory.used": value, "memory.total": value,
                                       "power.draw": value, "utilization.gpu": value}), 0.0)
    assert sample is not None
    assert sample.mem_used_mib is None and sample.mem_total_mib is None
    assert sample.power_w is None and sample.util_gpu is None
    apps = parse_compute_apps(f"GPU-1, 42, python, {value}\n")
    processes = join_processes(apps, {}, (sample,))
    telemetry = DeviceTelemetry("spark", gpus=(sample,), processes=processes)
    view = telemetry.memory_view(sample)  # raised OverflowError on 1e308 before
    assert view.gpu_processes_bytes is None


def test_memory_view_survives_values_built_by_hand() -> None:
    """Another source (a recording, Prometheus) may build samples without the parser."""
    sample = nvsmi.GpuSample(index=0, t=0.0, uuid="GPU-1", mem_used_mib=1e308,
                             mem_total_mib=1e308)
    process = GpuProcess(pid=1, gpu_uuid="GPU-1", gpu_index=0, name="x", used_memory_mib=1e308)
    view = DeviceTelemetry("spark", gpus=(sample,), processes=(process,)).memory_view(sample)
    assert view.used_bytes is None and view.total_bytes is None
    assert view.gpu_processes_bytes is None


def test_percent_is_clamped_and_impossible_values_are_missing() -> None:
    assert nvsmi.clamp_reading(100.4, "%") == 100.0
    assert nvsmi.clamp_reading(-0.2, "%") == 0.0
    assert nvsmi.clamp_reading(250.0, "%") is None
    assert nvsmi.clamp_reading(-5.0, "W") is None
    assert nvsmi.clamp_reading(45.0, "C") == 45.0


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["%", "MiB", "C", "W"]))
def test_any_float_reading_is_in_range_or_missing(value: float, unit: str) -> None:
    text = repr(value)
    parser = CsvRowParser(list(nvsmi.DEFAULT_FIELDS))
    field = {"%": "utilization.gpu", "MiB": "memory.used", "C": "temperature.gpu",
             "W": "power.draw"}[unit]
    sample = parser.parse_line(_row(**{field: text}), 0.0)
    assert sample is not None
    got = getattr(sample, nvsmi.field_for(field).attr)
    if got is not None:
        low, high = nvsmi.PHYSICAL_RANGES[unit]
        assert math.isfinite(got) and low <= got <= high
    DeviceTelemetry("spark", gpus=(sample,)).memory_view(sample)


# -- the config ------------------------------------------------------------------------------
BAD_SETTINGS = {
    "memory_floor_gib = inf": "memory_floor_gib",
    "memory_floor_gib = nan": "memory_floor_gib",
    "history_minutes = 1e9": "history_minutes",
    "keepalive_count_max = 0": "keepalive_count_max",
    "refresh_interval = 0.0": "refresh_interval",
    "refresh_interval = -inf": "refresh_interval",
    "temperature_alert_c = nan": "temperature_alert_c",
    "units = \"furlongs\"": "units",
    "power_alert_w = 1e300": "power_alert_w",
    "keymap = { quit = 5 }": "keymap",
}


@pytest.mark.parametrize("line", sorted(BAD_SETTINGS))
def test_bad_setting_is_reported_by_name_and_default_kept(tmp_path, line: str) -> None:
    key = BAD_SETTINGS[line]
    path = tmp_path / "config.toml"
    path.write_text(f"[settings]\nread_only = true\n{line}\n", encoding="utf-8")
    config = load_config(path)
    assert getattr(config.settings, key) == getattr(Settings(), key)
    assert config.settings.read_only is True  # the good key next to it still counts
    assert len(config.problems) == 1
    assert f"{path}:3: {key} must" in config.problems[0]


def test_bad_device_tags_and_fields_skip_only_themselves(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent("""\
        [[devices]]
        name = "a"
        host = "a.lan"
        tags = 5
        [[devices]]
        name = "b"
        host = "b.lan"
        user = 7
        port = true
        [[devices]]
        name = "c"
        host = "c.lan"
        tags = ["lab"]
        """), encoding="utf-8")
    config = load_config(path)  # raised TypeError ('int' object is not iterable) before
    assert [d.name for d in config.devices] == ["a", "c"]
    assert config.devices[0].tags == () and config.devices[1].tags == ("lab",)
    assert any("tags must be a list of strings" in p for p in config.problems)
    assert any("'b': bad port" in p for p in config.problems)


def test_saving_an_out_of_range_value_is_refused(tmp_path) -> None:
    path = tmp_path / "config.toml"
    with pytest.raises(ConfigError, match="history_minutes must be between"):
        save_settings(path, history_minutes=1e9)
    assert not path.exists()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(RULES)),
       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
def test_check_setting_never_raises_and_accepts_only_in_range(key: str, value: object) -> None:
    checked, problem = check_setting(key, value)
    if problem is None:
        rule = RULES[key]
        if isinstance(checked, int | float) and not isinstance(checked, bool):
            assert math.isfinite(checked)
            assert rule.low is None or rule.low <= checked <= rule.high
    else:
        assert key in problem or "unknown" in problem
