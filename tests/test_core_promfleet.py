"""Prometheus query results -> devices: naming, joining, fallbacks, and fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparktui.core.metric_names import instance_host
from sparktui.core.promfleet import parse_matrix, parse_vector, readings

GIB = 1024**3


def vector(*items: tuple[dict, float]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1700000000.5, str(value)]} for labels, value in items]}}


def test_exporter_on_the_spark_itself_is_named_by_its_target() -> None:
    devices = readings(parse_vector(vector(
        ({"__name__": "sparktui_gpu_power_watts", "device": "local", "gpu": "0",
          "instance": "spark-7:9835"}, 40.0),
        ({"__name__": "sparktui_gpu_power_watts", "device": "spark-2", "gpu": "0",
          "instance": "watcher:9835"}, 30.0),
        ({"__name__": "up", "instance": "watcher:9835", "job": "sparktui"}, 1.0))))
    assert set(devices) == {"spark-7", "spark-2"}  # never a device called "watcher"
    assert devices["spark-7"].gpu_samples()[0].power_w == 40.0


def test_dcgm_framebuffer_energy_and_node_memory() -> None:
    dcgm = {"gpu": "0", "UUID": "GPU-1", "modelName": "H100", "instance": "box:9400",
            "device": "nvidia0"}
    devices = readings(parse_vector(vector(
        ({**dcgm, "__name__": "DCGM_FI_DEV_FB_USED"}, 1000.0),
        ({**dcgm, "__name__": "DCGM_FI_DEV_FB_FREE"}, 3000.0),
        ({**dcgm, "__name__": "DCGM_energy_watts"}, 250.0),
        ({"__name__": "node_memory_MemTotal_bytes", "instance": "box:9100"}, 64 * GIB),
        ({"__name__": "node_memory_MemAvailable_bytes", "instance": "box:9100"}, 40 * GIB),
        ({"__name__": "node_memory_MemFree_bytes", "instance": "box:9100"}, 10 * GIB),
        ({"__name__": "node_cpu_busy_percent", "instance": "box:9100"}, 12.5))))
    box = devices["box"]
    (gpu,) = box.gpu_samples()
    assert (gpu.mem_used_mib, gpu.mem_total_mib) == (1000.0, 4000.0)  # a discrete GPU
    assert gpu.power_w == 250.0  # from the energy counter's rate: no POWER_USAGE
    host = box.host_sample()
    assert (host.mem_total, host.mem_used, host.mem_free, host.cpu_pct) == \
        (64 * GIB, 24 * GIB, 10 * GIB, 12.5)
    assert host.page_cache is None and host.swap_used is None  # not scraped: missing


def test_missing_stays_missing_and_a_down_target_says_so() -> None:
    devices = readings(parse_vector(vector(
        ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": "0", "instance": "b:9400"}, 5.0),
        ({"__name__": "up", "instance": "b:9400"}, 0.0))))
    (gpu,) = devices["b"].gpu_samples()
    assert gpu.util_gpu == 5.0 and gpu.temp_c is None and gpu.mem_total_mib is None
    assert devices["b"].up is False and devices["b"].host_sample() is None


def test_instance_host() -> None:
    assert instance_host("spark-1:9100") == "spark-1"
    assert instance_host("[::1]:9400") == "::1"
    assert instance_host("spark-1") == "spark-1"
    assert instance_host("fe80::1") == "fe80::1"


_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6))
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
_names = st.sampled_from(["sparktui_gpu_power_watts", "DCGM_FI_DEV_GPU_UTIL", "up",
                          "node_memory_MemTotal_bytes", "sparktui_gpu_performance_state",
                          "sparktui_host_thermal_zone_celsius", "DCGM_FI_DEV_FB_FREE", "x"])
_labels = st.fixed_dictionaries({"__name__": _names}, optional={
    "device": st.text(max_size=5), "gpu": st.text(max_size=3), "instance": st.text(max_size=8),
    "zone": st.text(max_size=4)})
_value = st.one_of(st.floats(), st.text(max_size=5), st.integers())


@settings(max_examples=80, deadline=None)
@given(st.one_of(_json, st.lists(st.tuples(_labels, _value), max_size=8).map(
    lambda items: {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1.0, value]} for labels, value in items]}})))
def test_any_answer_parses_without_raising(payload) -> None:
    for device in readings(parse_vector(payload)).values():
        device.gpu_samples()
        device.host_sample()
    parse_matrix(payload)
