"""The shipped alert rules and scrape config pass promtool, and every alert fires.

`promtool test rules` evaluates the real rules file on synthetic series: each
alert must fire on its condition (after its `for`) and stay quiet otherwise.
"""

from __future__ import annotations

import json

from sparktui.monitoring import ALERT_RULES, GRAFANA_DASHBOARD, SCRAPE_CONFIG, WATCH_UNIT
from tests.infra.prometheus import promtool

GIB = 1024**3

RULE_TESTS = f"""
rule_files:
  - {ALERT_RULES}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'sparktui_memory_available_bytes{{device="low"}}'
        values: '{20 * GIB}x2 {5 * GIB}x5'
      - series: 'sparktui_memory_available_bytes{{device="fine"}}'
        values: '{20 * GIB}x8'
      - series: 'sparktui_gpu_utilization_percent{{device="slow",gpu="0"}}'
        values: '95x10'
      - series: 'sparktui_gpu_performance_state{{device="slow",gpu="0"}}'
        values: '0x10'
      - series: 'sparktui_gpu_sm_clock_hertz{{device="slow",gpu="0"}}'
        values: '600e6x10'
      - series: 'sparktui_gpu_utilization_percent{{device="fast",gpu="0"}}'
        values: '95x10'
      - series: 'sparktui_gpu_performance_state{{device="fast",gpu="0"}}'
        values: '0x10'
      - series: 'sparktui_gpu_sm_clock_hertz{{device="fast",gpu="0"}}'
        values: '2400e6x10'
      - series: 'sparktui_gpu_temperature_celsius{{device="hot",gpu="0"}}'
        values: '90x5'
      - series: 'sparktui_device_up{{device="gone"}}'
        values: '1 0x5'
      - series: 'sparktui_device_up{{device="fine"}}'
        values: '1x8'
      - series: 'up{{job="sparktui",instance="watcher:9835"}}'
        values: '0x5'
      - series: 'sparktui_collector_last_sample_age_seconds{{device="fine",stream="gpu"}}'
        values: '1 120x5'
      - series: 'sparktui_containers{{device="fine",state="restarting"}}'
        values: '0 1x5'
      - series: 'sparktui_containers{{device="fine",state="running"}}'
        values: '3x8'
      - series: 'up{{job="models",sparktui_role="endpoint",instance="spark:8000"}}'
        values: '1 0x5'
      - series: 'sparktui_endpoint_up{{device="fine",endpoint="http://localhost:8000/v1",engine="vllm",model="m"}}'
        values: '1 0x5'
    alert_rule_test:
      - eval_time: 2m
        alertname: SparkMemoryLow
        exp_alerts: []
      - eval_time: 5m
        alertname: SparkMemoryLow
        exp_alerts:
          - exp_labels: {{severity: warning, device: low}}
            exp_annotations:
              summary: "low: only 5GiB memory available"
              description: "MemAvailable on low is under the 8 GiB floor. On a GB10 the GPU allocates from the same pool: loads and vLLM's memory check fail next."
      - eval_time: 6m
        alertname: SparkGpuStuckLowPower
        exp_alerts:
          - exp_labels: {{severity: warning, device: slow, gpu: "0"}}
            exp_annotations:
              summary: "slow GPU 0 is stuck in low power"
              description: "Utilisation above 80 % in P0 with the SM clock under 900 MHz for 5 minutes. Power the unit off at the wall (AC) and on again."
      - eval_time: 3m
        alertname: SparkGpuHot
        exp_alerts:
          - exp_labels: {{severity: warning, device: hot, gpu: "0"}}
            exp_annotations:
              summary: "hot GPU 0 at 90 °C"
              description: "The GPU has been at or above 85 °C for 2 minutes."
      - eval_time: 4m
        alertname: SparkDeviceDown
        exp_alerts:
          - exp_labels: {{severity: critical, device: gone}}
            exp_annotations:
              summary: "gone is unreachable"
              description: "sparktui's exporter has had no connection to gone for 2 minutes."
      - eval_time: 3m
        alertname: SparkExporterDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: sparktui, instance: "watcher:9835"}}
            exp_annotations:
              summary: "sparktui exporter watcher:9835 is not answering"
              description: "No Spark behind this exporter is being watched."
      - eval_time: 3m
        alertname: SparkTelemetryStale
        exp_alerts:
          - exp_labels: {{severity: warning, device: fine, stream: gpu}}
            exp_annotations:
              summary: "fine: no gpu sample for 2m 0s"
              description: "The device is connected but its gpu stream went quiet."
      - eval_time: 4m
        alertname: SparkContainerRestarting
        exp_alerts:
          - exp_labels: {{severity: warning, device: fine, state: restarting}}
            exp_annotations:
              summary: "fine: 1 container(s) restarting"
              description: "A container on fine has been in a restart loop for 2 minutes."
      - eval_time: 3m
        alertname: SparkEndpointDown
        exp_alerts:
          - exp_labels: {{severity: critical, device: fine, endpoint: "http://localhost:8000/v1", engine: vllm, model: m}}
            exp_annotations:
              summary: "fine: model endpoint http://localhost:8000/v1 is down"
              description: "The vllm server at http://localhost:8000/v1 on fine has not answered for a minute."
      - eval_time: 3m
        alertname: SparkScrapedEndpointDown
        exp_alerts:
          - exp_labels: {{severity: critical, job: models, sparktui_role: endpoint, instance: "spark:8000"}}
            exp_annotations:
              summary: "model endpoint spark:8000 is down"
              description: "The model server at spark:8000 has not answered for a minute."
"""  # noqa: E501 - promtool compares the annotations whole


def test_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout


def test_every_alert_fires_on_its_condition_only(tmp_path) -> None:
    tests = tmp_path / "rules_test.yml"
    tests.write_text(RULE_TESTS, encoding="utf-8")
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_scrape_config_is_valid(tmp_path) -> None:
    # the example names its rules file beside it: check it where it ships
    checked = promtool("check", "config", "--syntax-only", str(SCRAPE_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_and_unit_ship_in_the_package() -> None:
    dashboard = json.loads(GRAFANA_DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any("sparktui_memory_available_bytes" in e for e in exprs)
    assert any("sparktui_gpu_sm_clock_hertz" in e for e in exprs)
    assert "@EXEC@" in WATCH_UNIT.read_text(encoding="utf-8")
