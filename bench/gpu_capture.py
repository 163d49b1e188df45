"""Capture what a REAL nvidia-smi prints, for tests/fixtures/ (run on a GPU machine).

Usage: python3 bench/gpu_capture.py OUTDIR

Records the exact output (stdout, stderr, exit status) of the nvidia-smi calls
sparktui makes, idle and under a CUDA load, then runs sparktui's own
TelemetryService over the local transport against the real nvidia-smi and
records what it parsed. Needs only the standard library (and torch, if present,
for the load). tests/fixtures/real/ is split out of the JSON this writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from sparktui.core import nvsmi

FIELDS = ",".join(nvsmi.DEFAULT_FIELDS)
ONE_SHOT = {
    "table": "nvidia-smi",
    "list": "nvidia-smi -L",
    "query_nounits": f"nvidia-smi --query-gpu={FIELDS} --format=csv,noheader,nounits",
    "query_units_header": f"nvidia-smi --query-gpu={FIELDS} --format=csv",
    "query_memory": "nvidia-smi --query-gpu=index,name,memory.total,memory.used,memory.free "
                    "--format=csv,noheader",
    "driver": "nvidia-smi --query-gpu=driver_version,compute_cap --format=csv,noheader",
    "old_throttle_field": "nvidia-smi --query-gpu=index,clocks_throttle_reasons.active "
                          "--format=csv,noheader,nounits",
    "invalid_field": "nvidia-smi --query-gpu=index,clocks.applications.bogus "
                     "--format=csv,noheader,nounits",
    "compute_apps": nvsmi.COMPUTE_APPS_COMMAND,
    "power_limits": "nvidia-smi --query-gpu=power.limit,power.default_limit,"
                    "enforced.power.limit,fan.speed,clocks.max.memory --format=csv,noheader",
    "detail_q": "nvidia-smi -q",
}
LOAD = r"""
import time, torch
x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
hold = torch.empty(8 * 1024**3, dtype=torch.uint8, device="cuda")  # 8 GiB held
end = time.time() + float(__import__("sys").argv[1])
while time.time() < end:
    for _ in range(50):
        y = x @ x
    torch.cuda.synchronize()
"""


def run(command: str) -> dict:
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    return {"command": command, "stdout": proc.stdout, "stderr": proc.stderr,
            "exit_status": proc.returncode}


def loop_capture(seconds: float) -> dict:
    command = f"nvidia-smi --query-gpu={FIELDS} --format=csv,noheader,nounits -lms 250"
    proc = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    time.sleep(seconds)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    return {"command": command, "stdout": out, "stderr": err, "exit_status": proc.returncode}


def capture(tag: str) -> dict:
    results = {f"{tag}.{name}": run(cmd) for name, cmd in ONE_SHOT.items()}
    results[f"{tag}.loop"] = loop_capture(2.0)
    return results


async def collect(seconds: float) -> dict:
    from sparktui.core.device import DeviceSpec
    from sparktui.services.config import Settings
    from sparktui.services.devices import make_link
    from sparktui.services.telemetry import TelemetryService

    settings = Settings(refresh_interval=0.5)
    link = make_link(DeviceSpec.parse("local"), settings)
    link.start()
    service = TelemetryService(link, settings)
    service.start()
    updates = []
    service.subscribe(lambda state: updates.append(state.t))
    await asyncio.sleep(seconds)
    state = service.latest
    await service.close()
    await link.close()
    out = dataclasses.asdict(state)
    out["memory_views"] = [dataclasses.asdict(state.memory_view(g)) for g in state.gpus]
    out["updates"] = len(updates)
    out["unified_memory"] = state.unified_memory
    return out


def main() -> int:
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    results = capture("idle")
    load = None
    try:
        import torch  # noqa: F401

        load = subprocess.Popen([sys.executable, "-c", LOAD, "30"])
        time.sleep(8)  # let it allocate and spin up
    except ImportError:
        results["load_error"] = {"stdout": "", "stderr": "torch not importable", "exit_status": 1}
    results.update(capture("load"))
    telemetry = asyncio.run(collect(6.0))
    status = run(f"{sys.executable} -m sparktui status --json local")
    if load is not None:
        load.terminate()
        load.wait(timeout=30)
    with open(os.path.join(outdir, "capture.json"), "w") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(outdir, "telemetry.json"), "w") as handle:
        json.dump({"service": telemetry, "status_cli": status}, handle, indent=1, default=str)
    print(json.dumps(telemetry, indent=1, default=str)[:3000])
    print(results["load.query_units_header"]["stdout"])
    print(results["load.compute_apps"]["stdout"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
