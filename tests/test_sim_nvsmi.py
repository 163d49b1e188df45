"""The nvidia-smi emulation: what GB10 and discrete GPUs print."""

from __future__ import annotations

import re

import pytest

from sparktui.sim.device import nvsmi
from sparktui.sim.device.gpu_model import SimDevice


@pytest.fixture
def gb10() -> SimDevice:
    return SimDevice(seed=1, auto=False)


def test_gb10_memory_is_na_with_header_and_units(gb10):
    out, err, status = nvsmi.render(
        ["--query-gpu=index,name,memory.total,utilization.gpu", "--format=csv"], gb10)
    assert status == 0 and err == ""
    header, row = out.splitlines()
    assert header == "index, name, memory.total [MiB], utilization.gpu [%]"
    assert row == "0, NVIDIA GB10, [N/A], 0 %"


def test_gb10_reference_rows(gb10):
    out, _, _ = nvsmi.render(
        ["--query-gpu=memory.total,memory.used,memory.free,utilization.gpu,power.draw,"
         "temperature.gpu", "--format=csv,noheader"], gb10)
    assert re.fullmatch(r"\[N/A\], \[N/A\], \[N/A\], 0 %, \d+\.\d\d W, \d+\n", out)
    out, _, _ = nvsmi.render(["--query-gpu=index,name,memory.total,memory.free",
                              "--format=csv,noheader,nounits"], gb10)
    assert out == "0, NVIDIA GB10, [N/A], [N/A]\n"


def test_gb10_na_fields_and_formats(gb10):
    fields = ("power.limit,power.default_limit,enforced.power.limit,fan.speed,clocks.mem,"
              "clocks.current.memory,clocks.max.memory,utilization.memory,clocks.sm,"
              "clocks.max.sm,pstate,clocks_event_reasons.active,driver_version,compute_cap,"
              "pci.bus_id,uuid,timestamp")
    out, _, status = nvsmi.render([f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                                  gb10)
    assert status == 0
    cells = out.rstrip("\n").split(", ")
    assert cells[:7] == ["[N/A]"] * 7
    assert cells[7] == "0"
    assert 2385 <= int(cells[8]) <= 2489 and cells[9] == "3003"
    assert cells[10] == "P8"
    assert re.fullmatch(r"0x[0-9A-F]{16}", cells[11])
    assert cells[12:15] == ["580.126.09", "12.1", "0000000F:01:00.0"]
    assert cells[15].startswith("GPU-")
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}", cells[16])


def test_aliases_print_canonical_headers(gb10):
    out, _, status = nvsmi.render(
        ["--query-gpu=gpu_name,clocks.sm,clocks_throttle_reasons.active,power.draw",
         "--format=csv"], gb10)
    assert status == 0
    assert out.splitlines()[0] == ("name, clocks.current.sm [MHz], clocks_event_reasons.active,"
                                   " power.draw [W]")


def test_unknown_field_fails_whole_call(gb10):
    out, err, status = nvsmi.render(
        ["--query-gpu=index,clocks.applications.sm", "--format=csv"], gb10)
    assert status == 2 and out == ""
    assert err.splitlines()[0] == 'Field "clocks.applications.sm" is not a valid field to query.'
    assert "--help-query-gpu" in err


def test_rejected_field_plays_another_driver(gb10):
    out, err, status = nvsmi.render(
        ["--query-gpu=clocks_event_reasons.active", "--format=csv"], gb10,
        reject=("clocks_event_reasons.active",))
    assert status == 2 and out == ""
    assert 'Field "clocks_event_reasons.active" is not a valid field' in err


def test_bad_arguments(gb10):
    assert nvsmi.render(["--query-gpu=index"], gb10)[2] == 2  # no --format
    assert nvsmi.render(["--query-gpu=index", "--format=xml"], gb10)[2] == 2
    assert nvsmi.render(["--bogus"], gb10)[2] == 2
    assert nvsmi.render(["-lms", "0", "--query-gpu=index", "--format=csv"], gb10)[2] == 2
    _out, err, status = nvsmi.render(["-i", "3", "--query-gpu=index", "--format=csv"], gb10)
    assert status == 6 and "No devices were found" in err


def test_discrete8_gives_eight_rows():
    dev = SimDevice(gpus=8, kind="discrete", seed=2, auto=False)
    out, _, _ = nvsmi.render(["--query-gpu=index,name,memory.total,memory.used,memory.free",
                              "--format=csv,noheader,nounits"], dev)
    rows = [r.split(", ") for r in out.splitlines()]
    assert [r[0] for r in rows] == [str(i) for i in range(8)]
    for r in rows:
        assert r[1] == "NVIDIA H100 80GB HBM3" and r[2] == "81559"
        assert int(r[3]) + int(r[4]) <= 81559
    out, _, _ = nvsmi.render(["-i", "5", "--query-gpu=index", "--format=csv,noheader"], dev)
    assert out == "5\n"


def test_loop_ticks_give_one_row_per_gpu_per_tick():
    dev = SimDevice(gpus=3, kind="discrete", seed=2, clock=lambda: 0.0)
    inv = nvsmi.parse(["--query-gpu=index,utilization.gpu", "--format=csv", "-lms", "200"])
    assert inv.interval == pytest.approx(0.2) and inv.looping
    texts = list(nvsmi.ticks(inv, dev, clock_readings=[0.0, 0.2, 0.4, 0.6]))
    assert len(texts) == 4
    assert texts[0].splitlines()[0] == "index, utilization.gpu [%]"
    assert len(texts[0].splitlines()) == 4  # header printed once, then 3 rows
    assert all(len(t.splitlines()) == 3 for t in texts[1:])
    assert nvsmi.parse(["-l", "2", "--query-gpu=index", "--format=csv"]).interval == 2.0
    assert nvsmi.parse(["--loop=3", "--query-gpu=index", "--format=csv"]).interval == 3.0
    assert nvsmi.parse(["--loop-ms=50", "--query-gpu=index", "--format=csv"]).interval == 0.05
    assert not nvsmi.parse(["--query-gpu=index", "--format=csv"]).looping


def test_compute_apps(gb10):
    argv = ["--query-compute-apps=gpu_uuid,pid,process_name,used_memory",
            "--format=csv,noheader,nounits"]
    assert nvsmi.render(argv, gb10) == ("", "", 0)  # no process: nothing at all
    gb10.set_load(0.5)
    out, _, _ = nvsmi.render(argv, gb10)
    uuid, pid, name, mem = out.rstrip("\n").split(", ")
    assert uuid == gb10.gpu(0).uuid and pid.isdigit() and name == "/usr/bin/python3"
    assert mem.isdigit()
    out, _, _ = nvsmi.render(["--query-compute-apps=pid,name,gpu_name,used_gpu_memory",
                              "--format=csv"], gb10)
    assert out.splitlines()[0] == "pid, process_name, gpu_name, used_gpu_memory [MiB]"
    assert out.splitlines()[1].endswith(" MiB")


def test_plain_table_and_query(gb10):
    gb10.set_load(0.5)
    table, _, status = nvsmi.render([], gb10)
    assert status == 0
    assert "CUDA Version: 13.0" in table and "Driver Version: 580.126.09" in table
    assert "Not Supported" in table and "NVIDIA GB10" in table
    assert "/usr/bin/python3" in table
    boxed = [line for line in table.splitlines() if line.startswith(("|", "+"))]
    assert {len(line) for line in boxed} == {91}
    report, _, _ = nvsmi.render(["-q"], gb10)
    assert "==============NVSMI LOG==============" in report
    assert re.search(r"Product Name\s+: NVIDIA GB10", report)
    assert re.search(r"Total\s+: \[N/A\]", report)
