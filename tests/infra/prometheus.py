"""A real Prometheus (Debian's `prometheus`) on loopback, and promtool, for the fleet tests.

    server = start_prometheus(tmp_path, ["127.0.0.1:9835"], scrape_interval="1s")
    ... server.url ...
    server.close()

Each server has its own data directory and a free port; readiness is awaited on
/-/ready. Under CI=true a missing binary fails the test (`require`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.infra.common import require
from tests.infra.sshd import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def require_prometheus() -> None:
    require(os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK),
            "prometheus and promtool (apt-get install prometheus)")


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    require_prometheus()
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


@dataclass
class PrometheusServer:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_prometheus(workdir: Path, targets: list[str], *, scrape_interval: str = "1s",
                     job: str = "sparktui", extra_jobs: dict[str, list[str]] | None = None,
                     timeout: float = 30.0) -> PrometheusServer:
    require_prometheus()
    workdir.mkdir(parents=True, exist_ok=True)
    jobs = {job: targets, **(extra_jobs or {})}
    lines = ["global:", f"  scrape_interval: {scrape_interval}",
             f"  evaluation_interval: {scrape_interval}", "scrape_configs:"]
    for name, job_targets in jobs.items():
        quoted = ", ".join(f'"{t}"' for t in job_targets)
        lines += [f"  - job_name: {name}", f"    scrape_interval: {scrape_interval}",
                  "    static_configs:", f"      - targets: [{quoted}]"]
    config = workdir / "prometheus.yml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    port = free_port()
    log_path = workdir / "prometheus.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    server = PrometheusServer(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited {proc.returncode}: {server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.close()
            raise RuntimeError(f"prometheus not ready within {timeout} s: {server.log()}")
        time.sleep(0.1)  # polling readiness: Prometheus offers no event to wait on
