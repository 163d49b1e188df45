"""The stand-in nvidia-smi script, run as a real process, in each scenario."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sparktui.sim.device.fake_nvidia_smi import scenario

QUERY = ["--query-gpu=index,name,memory.total,memory.used", "--format=csv"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARKTUI_FAKE_GPU", "SPARKTUI_FAKE_GPU_FILE")}
    env.update(extra)
    return env


def fake(*args: str, timeout: float = 10, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparktui.sim.device.fake_nvidia_smi", *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(**env))


def start(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sparktui.sim.device.fake_nvidia_smi", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(**env))


def test_scenario_selection(tmp_path):
    path = tmp_path / "gpu"
    assert scenario({}) == "gb10"
    assert scenario({"SPARKTUI_FAKE_GPU": "discrete8"}) == "discrete8"
    env = {"SPARKTUI_FAKE_GPU": "discrete8", "SPARKTUI_FAKE_GPU_FILE": str(path)}
    assert scenario(env) == "discrete8"  # the file does not exist yet
    path.write_text("cut\nignored\n")
    assert scenario(env) == "cut"  # the file wins


def test_default_gb10():
    proc = fake(*QUERY)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("index, name, memory.total [MiB], memory.used [MiB]\n"
                           "0, NVIDIA GB10, [N/A], [N/A]\n")


def test_discrete8(tmp_path):
    path = tmp_path / "gpu"
    path.write_text("discrete8\n")
    proc = fake("--query-gpu=index,name", "--format=csv,noheader",
                SPARKTUI_FAKE_GPU_FILE=str(path))
    assert proc.stdout.splitlines() == [f"{i}, NVIDIA H100 80GB HBM3" for i in range(8)]


def test_reject_field():
    name = "clocks_event_reasons.active"
    proc = fake(f"--query-gpu=index,{name}", "--format=csv",
                SPARKTUI_FAKE_GPU=f"reject-field:{name}")
    assert proc.returncode == 2 and proc.stdout == ""
    assert f'Field "{name}" is not a valid field to query.' in proc.stderr
    ok = fake("--query-gpu=index", "--format=csv,noheader",
              SPARKTUI_FAKE_GPU=f"reject-field:{name}")
    assert ok.returncode == 0 and ok.stdout == "0\n"


def test_driver_failure():
    proc = fake(*QUERY, SPARKTUI_FAKE_GPU="driver-failure")
    assert proc.returncode == 9
    assert proc.stdout.startswith("NVIDIA-SMI has failed because it couldn't communicate with "
                                  "the NVIDIA driver.")


def test_unknown_scenario_is_loud():
    proc = fake(*QUERY, SPARKTUI_FAKE_GPU="tpu")
    assert proc.returncode == 3 and "tpu" in proc.stderr


def test_cut_stream_ends_mid_row():
    proc = fake("--query-gpu=index,utilization.gpu,power.draw", "--format=csv,noheader",
                "-lms", "50", SPARKTUI_FAKE_GPU="cut")
    assert proc.returncode == 0
    lines = proc.stdout.split("\n")
    assert len(lines) == 3 and lines[2] != "" and len(lines[2]) < len(lines[0])


def _read_lines(proc: subprocess.Popen, n: int) -> list[str]:
    assert proc.stdout is not None
    return [proc.stdout.readline() for _ in range(n)]


def test_events_are_interleaved_in_loop_mode():
    proc = start("--query-gpu=index,utilization.gpu", "--format=csv,noheader", "-lms", "50",
                 SPARKTUI_FAKE_GPU="events")
    try:
        lines = _read_lines(proc, 8)
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    rows = [line for line in lines if line.startswith("0, ")]
    events = [line for line in lines if "Xid" in line or "ECC" in line]
    assert rows and events and len(rows) + len(events) == 8
    assert any("GPU has fallen off the bus" in line for line in events)
    assert proc.returncode == 0  # SIGTERM ends a loop quietly


def test_loop_moves_with_real_time_and_flushes_per_tick():
    proc = start("--query-gpu=timestamp,index", "--format=csv,noheader", "-lms", "100")
    try:
        t0 = time.monotonic()
        lines = _read_lines(proc, 3)
        elapsed = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=5)
    assert len(set(lines)) == 3  # the timestamps move
    assert elapsed < 5
    assert err == "" and proc.returncode == 0


@pytest.mark.parametrize("how", ["close-pipe", "sigint"])
def test_loop_exits_quietly_when_the_reader_goes(how):
    proc = start("--query-gpu=index", "--format=csv,noheader", "-lms", "20")
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    if how == "close-pipe":
        proc.stdout.close()
    else:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=5)
    assert proc.stderr.read() == ""
    assert proc.returncode == 0
    proc.stderr.close()
    if how != "close-pipe":
        proc.stdout.close()
