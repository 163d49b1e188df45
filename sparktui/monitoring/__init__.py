"""Files for a lab's monitoring stack, shipped inside the package (so a wheel has them).

- prometheus.yml: an example scrape config for `sparktui exporter` (and DCGM,
  node_exporter and model servers beside it);
- sparktui-rules.yml: Alertmanager-ready alert rules (promtool-checked in the tests);
- grafana-dashboard.json: a Grafana dashboard over sparktui's metrics;
- sparktui-watch.service: the systemd user unit `sparktui watch --install` writes.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

SCRAPE_CONFIG = HERE / "prometheus.yml"
ALERT_RULES = HERE / "sparktui-rules.yml"
GRAFANA_DASHBOARD = HERE / "grafana-dashboard.json"
WATCH_UNIT = HERE / "sparktui-watch.service"


def files() -> dict[str, Path]:
    return {"scrape config": SCRAPE_CONFIG, "alert rules": ALERT_RULES,
            "grafana dashboard": GRAFANA_DASHBOARD, "systemd unit": WATCH_UNIT}
