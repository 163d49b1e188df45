"""`sparktui status`: what it prints (pure), its arguments, and the demo end to end."""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from sparktui.commands import status
from sparktui.commands.report import DeviceReport, device_json, gpu_line, render
from sparktui.core.device import FailureKind, LinkState, LinkStatus
from sparktui.core.hoststat import HostSample, ThermalZone
from sparktui.core.nvsmi import GpuSample
from sparktui.core.units import NO_VALUE
from sparktui.services.telemetry import DeviceTelemetry, GpuProcess
from tests.infra import REPO_ROOT

GIB = 1024**3
ESC_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
EVIL = "\x1b]0;pwned\x07\x1b[2J\x9b31m"


def host_sample(**changes) -> HostSample:
    values = dict(t=1.0, cpu_pct=12.5, per_core_pct=(), load1=0.5, load5=0.4, load15=0.3,
                  mem_total=int(121.6 * GIB), mem_used=int(12.3 * GIB),
                  mem_available=int(109.3 * GIB), page_cache=4 * GIB, swap_used=0,
                  hottest_zone=ThermalZone("cpu-x925-0", 46.0))
    values.update(changes)
    return HostSample(**values)


def gb10(**changes) -> GpuSample:
    values = dict(index=0, t=1.0, uuid="GPU-1", name="NVIDIA GB10", util_gpu=96.0,
                  util_mem=0.0, temp_c=45.0, power_w=58.0, sm_clock_mhz=2405.0,
                  sm_clock_max_mhz=3003.0, pstate="P0", event_reasons=0)
    values.update(changes)
    return GpuSample(**values)


def connected(telemetry: DeviceTelemetry) -> DeviceReport:
    return DeviceReport(telemetry.device, LinkStatus(LinkState.CONNECTED), telemetry)


# --------------------------------------------------------------------- the lines

def test_gb10_line_reads_like_gpustat():
    proc = GpuProcess(pid=114687, gpu_uuid="GPU-1", gpu_index=0,
                      name="/usr/local/bin/python", used_memory_mib=19135.0, user="alice")
    t = DeviceTelemetry(device="spark-1", gpus=(gb10(),), host=host_sample(),
                        processes=(proc,), driver_version="580.126.09")
    assert gpu_line(t, t.gpus[0]) == (
        "[0] NVIDIA GB10 | 45°C, 96 % | unified 12.3/121.6 GiB (GPU procs 18.7 GiB) "
        f"| 58 W / {NO_VALUE} | 2405 MHz")
    text = render([connected(t)])
    assert text.splitlines()[0].startswith("spark-1  connected  driver 580.126.09  CPU 12 %")
    assert "mem 12.3/121.6 GiB" in text.splitlines()[0]
    assert "    alice/114687(python, 19135 MiB)" in text.splitlines()


def test_missing_values_are_dashes_never_zero():
    bare = GpuSample(index=3, t=1.0)
    t = DeviceTelemetry(device="box", gpus=(bare,))
    line = gpu_line(t, bare)
    assert line == (f"[3] {NO_VALUE} | {NO_VALUE}, {NO_VALUE} | unified {NO_VALUE} "
                    f"| {NO_VALUE} / {NO_VALUE} | {NO_VALUE}")
    header = render([connected(t)]).splitlines()[0]
    assert "0" not in header and f"CPU {NO_VALUE}" in header
    data = device_json(connected(t))
    gpu = data["gpus"][0]
    assert gpu["util_gpu"] is None and gpu["power_w"] is None and gpu["temp_c"] is None
    assert gpu["memory"] == {"label": "unified", "used_bytes": None, "total_bytes": None,
                             "gpu_processes_bytes": None}
    assert data["host"] is None and data["reason"] is None and data["state"] == "connected"


def test_device_text_is_sanitised_in_human_output():
    proc = GpuProcess(pid=7, gpu_uuid="GPU-1", gpu_index=0, name=f"/bin/{EVIL}x",
                      used_memory_mib=None, user=f"ev{EVIL}il")
    t = DeviceTelemetry(device=f"spark{EVIL}", gpus=(gb10(name=f"GB10{EVIL}"),),
                        host=host_sample(hottest_zone=ThermalZone(f"z{EVIL}", 50.0)),
                        processes=(proc,), gpu_problem=f"nvidia-smi said {EVIL}",
                        dropped_fields=("fan.speed",))
    failed = DeviceReport(f"other{EVIL}", LinkStatus(LinkState.FAILED, reason=f"no{EVIL}",
                                                     failure=FailureKind.AUTH), None,
                          f"failed (auth): no{EVIL}")
    text = render([connected(t), failed])
    assert not ESC_CHARS.search(text.replace("\n", "")), repr(text)
    assert f"    evil/7(x, {NO_VALUE})" in text.splitlines()
    assert "[0] GB10 | " in text and "  GPU: nvidia-smi said " in text
    # JSON keeps the raw value but escapes it, so the document is safe to print too
    dumped = json.dumps([device_json(connected(t)), device_json(failed)])
    assert not ESC_CHARS.search(dumped)
    assert json.loads(dumped)[0]["gpus"][0]["name"] == f"GB10{EVIL}"


def test_failed_device_json_has_reason_and_no_figures():
    status_ = LinkStatus(LinkState.FAILED, reason="authentication failed for x",
                         failure=FailureKind.AUTH)
    data = device_json(DeviceReport("spark-1", status_, None, status_.describe()))
    assert data["state"] == "failed" and data["failure"] == "auth"
    assert data["reason"] == "failed (auth): authentication failed for x"
    assert data["gpus"] == [] and data["host"] is None and data["unified_memory"] is False


def test_alarming_event_reasons_are_named():
    t = DeviceTelemetry(device="d", gpus=(gb10(event_reasons=0x20),), host=host_sample())
    assert gpu_line(t, t.gpus[0]).endswith("| held back: SW thermal slowdown")
    assert device_json(connected(t))["gpus"][0]["event_reasons_decoded"] == [
        "SW thermal slowdown"]


# ----------------------------------------------------------------- the command

def test_no_devices_and_none_configured_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARKTUI_CONFIG", str(tmp_path / "none.toml"))
    assert status.main([]) == 2
    assert "no devices given and none configured" in capsys.readouterr().err


def test_a_bad_destination_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPARKTUI_CONFIG", str(tmp_path / "none.toml"))
    assert status.main(["not a host"]) == 2
    assert "is not a device" in capsys.readouterr().err


def test_bad_watch_period_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        status.main(["--watch", "0", "local"])
    assert exc.value.code == 2
    assert "must be more than 0" in capsys.readouterr().err


def test_logging_is_one_line_without_traceback(capsys):
    restore = status.quiet_logging()
    try:
        logging.getLogger("sparktui.test").info("not shown")
        try:
            raise RuntimeError(f"boom {EVIL}")
        except RuntimeError:
            logging.getLogger("sparktui.test").exception("a listener failed")
    finally:
        restore()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not shown" not in err
    assert err.startswith("sparktui: a listener failed (RuntimeError: boom ")
    assert len(err.strip().splitlines()) == 1 and not ESC_CHARS.search(err.strip())


def cli_env(tmp_path) -> dict[str, str]:
    env = dict(os.environ)
    env["SPARKTUI_CONFIG"] = str(tmp_path / "none.toml")
    env["HOME"] = str(tmp_path)
    env.pop("SSH_AUTH_SOCK", None)
    return env


def test_help_answers_fast(tmp_path):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sparktui", "status", "--help"],
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=30,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0 and "--accept-new-host-keys" in proc.stdout
    assert time.monotonic() - started < 5
    probe = ("import sys, sparktui.cli, sparktui.commands.status; "
             "print(sorted(m for m in ('asyncssh', 'textual', 'sparktui.services.telemetry') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, cwd=REPO_ROOT).stdout.strip()
    assert out == "[]", f"heavy modules imported at startup: {out}"


def test_demo_json(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sparktui", "status", "--json", "--demo"],
                          env=cli_env(tmp_path), capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    [demo] = json.loads(proc.stdout)
    assert demo["name"] == "spark-demo" and demo["state"] == "connected"
    assert demo["reason"] is None and demo["unified_memory"] is True
    assert demo["driver_version"] == "580.126.09"
    [gpu] = demo["gpus"]
    assert gpu["name"] == "NVIDIA GB10"
    assert gpu["mem_total_mib"] is None and gpu["power_limit_w"] is None
    assert gpu["memory"]["label"] == "unified"
    assert abs(gpu["memory"]["total_bytes"] / GIB - 121.6) < 0.5
    assert demo["host"]["cpu_pct"] is not None
    assert demo["host"]["mem_total"] == gpu["memory"]["total_bytes"]


def test_demo_watch_redraws_until_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sparktui", "status", "--demo",
                             "--watch", "0.3"], env=cli_env(tmp_path), cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while out.count(b"Ctrl+C to quit") < 2:
            assert time.monotonic() < deadline, out
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"exited early: {proc.wait()} {proc.stderr.read()!r}"
                out += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    text = (out + rest).decode()
    assert text.count("[0] NVIDIA GB10 | ") >= 2
    assert "\x1b" not in text  # not a terminal: no screen clearing either
    assert b"Traceback" not in err
