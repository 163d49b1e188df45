"""The stand-in nvidia-smi answers as the real tool does (shared/reference: a GB10 on driver
580), for the forms sparktui sends, over a reading of the model (parse + tick, as the demo's
stand-in does) and on the tests' sshd (`python -m tests.infra.fake_nvidia_smi`, playing a
scenario)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from sparktui.core import nvsmi as core
from sparktui.core.facts import parse_nvidia_smi_header
from sparktui.sim.device import nvsmi
from sparktui.sim.device.gpu_model import SimDevice
from tests.infra import fake_nvidia_smi as fake


def call(argv: list[str], device: SimDevice) -> tuple[str, str, int]:
    reading = device.nvidia_smi_reading()
    try:
        return nvsmi.tick(nvsmi.parse(argv, reading), reading), "", 0
    except nvsmi.NvsmiError as exc:
        return exc.stdout, exc.stderr, exc.exit_status


@pytest.fixture
def gb10() -> SimDevice:
    return SimDevice(seed=1, auto=False)


def test_gb10_rows_as_the_reference_shows_them(gb10):
    out, err, status = call(["--query-gpu=index,name,memory.total,utilization.gpu",
                             "--format=csv"], gb10)
    assert (status, err) == (0, "")
    assert out.splitlines() == ["index, name, memory.total [MiB], utilization.gpu [%]",
                                "0, NVIDIA GB10, [N/A], 0 %"]
    out, _, _ = call(["--query-gpu=memory.total,memory.used,memory.free,utilization.gpu,"
                      "power.draw,temperature.gpu", "--format=csv,noheader"], gb10)
    assert re.fullmatch(r"\[N/A\], \[N/A\], \[N/A\], 0 %, \d+\.\d\d W, \d+\n", out)
    out, _, _ = call(["--query-gpu=index,name,memory.total,memory.free",
                      "--format=csv,noheader,nounits"], gb10)
    assert out == "0, NVIDIA GB10, [N/A], [N/A]\n"


def test_what_telemetry_streams_parses_to_gb10_figures(gb10):
    argv = core.build_query_command(core.DEFAULT_FIELDS, 500).split()[1:]
    inv = nvsmi.parse(argv, gb10.nvidia_smi_reading())
    assert inv.interval == 0.5
    parser = core.CsvRowParser(list(core.DEFAULT_FIELDS))
    sample = parser.parse_line(nvsmi.tick(inv, gb10.nvidia_smi_reading()).rstrip("\n"), t=0.0)
    assert sample is not None and sample.name == "NVIDIA GB10"
    assert sample.mem_total_mib is None and sample.power_limit_w is None
    assert sample.fan_pct is None and sample.mem_clock_mhz is None
    assert 11 <= (sample.power_w or 0) <= 17 and 35 <= (sample.temp_c or 0) <= 41  # idle
    assert 2385 <= (sample.sm_clock_mhz or 0) <= 2489 and sample.sm_clock_max_mhz == 3003
    assert sample.pstate == "P8" and sample.event_reasons == 0
    gb10.set_load(0.96)  # full load heats up towards 89 C and draws 53-63 W
    hot = parser.parse_line(nvsmi.tick(inv, gb10.nvidia_smi_reading(gb10.clock() + 600))
                            .rstrip("\n"), t=1.0)
    assert hot is not None and hot.pstate == "P0" and hot.util_gpu == 96
    assert 53 <= (hot.power_w or 0) <= 63 and 75 <= (hot.temp_c or 0) <= 89
    out, _, _ = call(core.DRIVER_VERSION_COMMAND.split()[1:], gb10)
    assert core.parse_driver_version(out) == "580.126.09"


def test_compute_apps(gb10):
    argv = core.COMPUTE_APPS_COMMAND.split()[1:]
    assert call(argv, gb10) == ("", "", 0)  # no process: nothing at all
    gb10.set_load(0.5)
    (app,) = core.parse_compute_apps(call(argv, gb10)[0])
    assert app.gpu_uuid == gb10.gpu(0)["uuid"] and app.process_name == "/usr/bin/python3"
    out, _, _ = call(["--query-compute-apps=pid,name,gpu_name,used_gpu_memory",
                      "--format=csv"], gb10)
    assert out.splitlines()[0] == "pid, process_name, gpu_name, used_gpu_memory [MiB]"
    assert out.splitlines()[1].endswith(" MiB")


def test_aliases_print_canonical_headers(gb10):
    out, _, _ = call(["--query-gpu=gpu_name,clocks.sm,clocks_throttle_reasons.active",
                      "--format=csv"], gb10)
    assert out.splitlines()[0] == "name, clocks.current.sm [MHz], clocks_event_reasons.active"


def test_a_bad_call_fails_as_a_whole(gb10):
    out, err, status = call(["--query-gpu=index,clocks.applications.sm", "--format=csv"], gb10)
    assert status == 2 and out == ""
    assert err.splitlines()[0] == 'Field "clocks.applications.sm" is not a valid field to query.'
    assert core.classify_failure(out, err, status).kind is core.NvsmiFailureKind.REJECTED_FIELD
    for argv in (["--query-gpu=index"], ["--query-gpu=index", "--format=xml"], ["--bogus"],
                 ["-lms", "0", "--query-gpu=index", "--format=csv"]):
        assert call(argv, gb10)[2] == 2, argv


def test_plain_screen_and_query_report(gb10):
    gb10.set_load(0.5)
    table, _, _ = call([], gb10)
    assert parse_nvidia_smi_header(table) == ("580.126.09", "13.0")
    assert {len(line) for line in table.splitlines() if line.startswith(("|", "+"))} == {91}
    report, _, _ = call(["-q"], gb10)
    assert "==============NVSMI LOG==============" in report
    assert re.search(r"Product Name\s+: NVIDIA GB10", report)
    assert re.search(r"Total\s+: \[N/A\]", report)


# -- the stand-in on the tests' sshd, in each scenario ----------------------------------------
QUERY = ["--query-gpu=index,name,memory.total,memory.used", "--format=csv"]


def stand_in(*args: str, scenario: str | None = None, file: str | None = None,
             **popen: object) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(fake.SCENARIO_ENV)}
    env |= {fake.SCENARIO_ENV: scenario} if scenario else {}
    env |= {fake.SCENARIO_FILE_ENV: file} if file else {}
    return subprocess.Popen([sys.executable, "-m", "tests.infra.fake_nvidia_smi", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            **popen)  # type: ignore[call-overload]


def finished(*args: str, **kw: str) -> tuple[str, str, int]:
    proc = stand_in(*args, **kw)
    out, err = proc.communicate(timeout=20)
    return out, err, proc.returncode


def test_scenarios(tmp_path):
    assert finished(*QUERY) == ("index, name, memory.total [MiB], memory.used [MiB]\n"
                                "0, NVIDIA GB10, [N/A], [N/A]\n", "", 0)
    path = tmp_path / "gpu"
    path.write_text("discrete8\nignored\n")  # the file wins over the variable
    out, _, _ = finished("--query-gpu=index,name,memory.total,power.limit",
                         "--format=csv,noheader,nounits", scenario="cut", file=str(path))
    assert out.splitlines() == [f"{i}, NVIDIA H100 80GB HBM3, 81559, 700.00" for i in range(8)]
    name = "clocks_event_reasons.active"
    out, err, status = finished(f"--query-gpu=index,{name}", "--format=csv",
                                scenario=f"reject-field:{name}")
    assert (out, status) == ("", 2) and f'Field "{name}" is not a valid field' in err
    out, _, status = finished(*QUERY, scenario="driver-failure")
    assert status == 9 and out == fake.DRIVER_FAILURE
    _, err, status = finished(*QUERY, scenario="tpu")
    assert status == 3 and "tpu" in err


def test_a_cut_stream_ends_mid_row():
    out, _, status = finished("--query-gpu=index,utilization.gpu,power.draw",
                              "--format=csv,noheader", "-lms", "50", scenario="cut")
    lines = out.split("\n")
    assert status == 0 and len(lines) == 3 and 0 < len(lines[2]) < len(lines[0])


def test_events_come_between_samples_and_sigterm_ends_quietly():
    proc = stand_in("--query-gpu=index,utilization.gpu", "--format=csv,noheader", "-lms", "50",
                    scenario="events")
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(8)]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=5)
    rows = [line for line in lines if line.startswith("0, ")]
    assert rows and len(rows) < 8 and any("fallen off the bus" in line for line in lines)
    assert (err, proc.returncode) == ("", 0)


def test_a_loop_ends_quietly_when_its_reader_goes():
    proc = stand_in("--query-gpu=timestamp,index", "--format=csv,noheader", "-lms", "20")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() != proc.stdout.readline()  # the timestamps move
    proc.stdout.close()
    assert proc.wait(timeout=5) == 0 and proc.stderr.read() == ""
    proc.stderr.close()
