"""`sparktui status` in a subprocess against a real OpenSSH sshd and the stand-in nvidia-smi."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from sparktui.core.units import NO_VALUE
from tests.infra import REPO_ROOT, ClientSetup, SshdServer

pytestmark = pytest.mark.sshd

GIB = 1024**3
MIB = 1024**2
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def mem_total() -> int:
    with open("/proc/meminfo", encoding="ascii") as fh:
        return int(fh.readline().split()[1]) * 1024


def sparktui_status(home: ClientSetup, tmp_path, *args: str, devices: str = "",
                    timeout: float = 60) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text("[settings]\nrefresh_interval = 0.2\n" + devices, encoding="utf-8")
    env = dict(os.environ, HOME=home.home, SPARKTUI_CONFIG=str(config))
    env.pop("SSH_AUTH_SOCK", None)
    return subprocess.run([sys.executable, "-m", "sparktui", "status", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def ok_json(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads(proc.stdout)


def test_gb10_json(ssh_client: ClientSetup, fake_gpu, tmp_path):
    fake_gpu("gb10")
    [spark] = ok_json(sparktui_status(ssh_client, tmp_path, "--json", "spark-test"))
    assert spark["name"] == "spark-test"
    assert (spark["state"], spark["reason"], spark["failure"]) == ("connected", None, None)
    assert spark["driver_version"] == "580.126.09"
    assert spark["unified_memory"] is True
    assert spark["dropped_fields"] == [] and spark["gpu_problem"] is None
    [gpu] = spark["gpus"]
    assert gpu["index"] == 0 and gpu["name"] == "NVIDIA GB10"
    for missing in ("mem_used_mib", "mem_total_mib", "power_limit_w", "fan_pct",
                    "mem_clock_mhz"):
        assert gpu[missing] is None, missing  # [N/A] is null, never 0
    assert 11 <= gpu["power_w"] <= 63 and 30 <= gpu["temp_c"] <= 95
    assert 0 <= gpu["util_gpu"] <= 100 and gpu["sm_clock_max_mhz"] == 3003
    assert isinstance(gpu["event_reasons"], int)
    assert isinstance(gpu["event_reasons_decoded"], list)
    host = spark["host"]
    memory = gpu["memory"]
    assert memory["label"] == "unified"
    assert memory["total_bytes"] == host["mem_total"] == mem_total()  # this machine's
    assert memory["used_bytes"] == host["mem_used"]
    assert 0 <= host["cpu_pct"] <= 100
    assert host["mem_used"] == host["mem_total"] - host["mem_available"]
    assert host["load1"] is not None and host["swap_used"] is not None
    for proc in spark["processes"]:
        assert proc["gpu_index"] == 0 and proc["pid"] > 0


def test_discrete8_json(ssh_client: ClientSetup, fake_gpu, tmp_path):
    fake_gpu("discrete8")
    [spark] = ok_json(sparktui_status(ssh_client, tmp_path, "--json", "spark-test"))
    assert spark["unified_memory"] is False
    gpus = spark["gpus"]
    assert [g["index"] for g in gpus] == list(range(8))
    for gpu in gpus:
        assert "H100" in gpu["name"]
        assert gpu["power_limit_w"] == 700.0 and gpu["mem_total_mib"] > 70_000
        memory = gpu["memory"]
        assert memory["label"] == "GPU"
        assert memory["total_bytes"] == int(gpu["mem_total_mib"] * MIB)
        assert memory["used_bytes"] == int(gpu["mem_used_mib"] * MIB)


def test_gb10_human_output_has_dashes_and_no_escapes(ssh_client: ClientSetup, fake_gpu,
                                                     tmp_path):
    fake_gpu("gb10")
    proc = sparktui_status(ssh_client, tmp_path, "spark-test")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert not CONTROL.search(proc.stdout.replace("\n", "")), repr(proc.stdout)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("spark-test  connected  driver 580.126.09  CPU ")
    gpu = next(line for line in lines if line.startswith("[0] "))
    fields = gpu.split(" | ")
    assert fields[0] == "[0] NVIDIA GB10"
    assert re.fullmatch(r"\d+°C, \d+ %", fields[1]), fields[1]
    assert fields[2].startswith("unified ") and f"/{mem_total() / GIB:.1f} GiB" in fields[2]
    assert re.fullmatch(rf"\d+ W / {NO_VALUE}", fields[3]), fields[3]  # no power limit
    assert re.fullmatch(r"\d+ MHz", fields[4]), fields[4]


def test_unreachable_device_exits_1_and_still_prints_the_others(
        ssh_client: ClientSetup, sshd_factory, fake_gpu, tmp_path):
    fake_gpu("gb10")
    down = sshd_factory()
    ssh_client.add_server("spark-down", down)
    down.stop()
    proc = sparktui_status(ssh_client, tmp_path, "--json", "spark-test", "spark-down")
    assert proc.returncode == 1
    up, gone = json.loads(proc.stdout)
    assert up["state"] == "connected" and up["gpus"][0]["name"] == "NVIDIA GB10"
    assert gone["name"] == "spark-down" and gone["state"] == "failed"
    assert gone["failure"] == "unreachable" and "refused" in gone["reason"]
    assert gone["gpus"] == [] and gone["host"] is None
    [line] = proc.stderr.splitlines()
    assert line.startswith("sparktui: spark-down: failed (unreachable): ")
    assert "refused the connection" in line


def test_configured_devices_and_an_auth_failure(ssh_client: ClientSetup, sshd_factory,
                                                fake_gpu, tmp_path):
    fake_gpu("gb10")
    ssh_client.add_server("spark-nokey", sshd_factory(authorize=False))
    devices = ('[[devices]]\nname = "spark-1"\nhost = "spark-nokey"\n'
               '[[devices]]\nname = "spark-2"\nhost = "spark-test"\n')
    proc = sparktui_status(ssh_client, tmp_path, "--json", devices=devices)  # no DEVICE
    assert proc.returncode == 1
    first, second = json.loads(proc.stdout)
    assert first["name"] == "spark-1" and first["state"] == "failed"
    assert first["failure"] == "auth"
    assert second["name"] == "spark-2" and second["state"] == "connected"
    assert second["gpus"][0]["name"] == "NVIDIA GB10"
    [line] = proc.stderr.splitlines()
    assert line.startswith("sparktui: spark-1: failed (auth): authentication failed")
    assert "Traceback" not in proc.stderr


def test_unknown_host_key_is_refused_unless_accepted(ssh_client: ClientSetup,
                                                     sshd: SshdServer, fake_gpu, tmp_path):
    fake_gpu("gb10")
    ssh_client.clear_known_hosts()
    proc = sparktui_status(ssh_client, tmp_path, "spark-test")
    assert proc.returncode == 1
    assert proc.stdout.startswith("spark-test  failed (host key unknown): ")
    [line] = proc.stderr.splitlines()
    assert line.startswith("sparktui: spark-test: failed (host key unknown): ")
    assert sshd.host_key_fingerprint in line and "--accept-new-host-keys" in line
    with open(ssh_client.known_hosts_path, encoding="utf-8") as fh:
        assert fh.read() == ""  # nothing trusted behind the user's back

    [spark] = ok_json(sparktui_status(ssh_client, tmp_path, "--json",
                                      "--accept-new-host-keys", "spark-test"))
    assert spark["state"] == "connected"
    with open(ssh_client.known_hosts_path, encoding="utf-8") as fh:
        assert sshd.host_pubkey_line.split()[1] in fh.read()


def test_missing_nvidia_smi_is_shown_not_fatal(ssh_home: ClientSetup, sshd_factory,
                                               monkeypatch, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("sh", "sleep", "ps"):
        os.symlink(next(f"{d}/{name}" for d in ("/usr/bin", "/bin")
                        if os.path.exists(f"{d}/{name}")), tools / name)
    server = sshd_factory(nvidia_smi=False, env={"PATH": str(tools)})
    ssh_home.add_server("spark-nogpu", server)
    [spark] = ok_json(sparktui_status(ssh_home, tmp_path, "--json", "spark-nogpu"))
    assert spark["state"] == "connected" and spark["gpus"] == []
    assert "not installed" in spark["gpu_problem"]
    assert spark["host"]["cpu_pct"] is not None and spark["host"]["mem_total"] == mem_total()
