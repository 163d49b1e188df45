"""The simulated shell's commands, driven through a fake process object, and the
host-stat script run by a real `sh`."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal

import pytest

from sparktui.core import hostscript
from sparktui.sim import shell
from sparktui.sim.gpu_model import NCPU, SimDevice


class _Sink:
    def __init__(self, proc: FakeProcess) -> None:
        self.proc = proc
        self.text = ""

    def write(self, data: str) -> None:
        if self.proc.closed:
            raise BrokenPipeError
        self.text += data


class FakeProcess:
    """Just enough of asyncssh's SSHServerProcess for the dispatcher."""

    def __init__(self) -> None:
        self.closed = False
        self.stdout = _Sink(self)
        self.stderr = _Sink(self)

    def is_closing(self) -> bool:
        return self.closed


async def run(command: str, device: SimDevice | None = None) -> tuple[str, str, int]:
    proc = FakeProcess()
    ctx = shell.Context(device or SimDevice(seed=5, auto=False))
    status = await shell.execute(command, shell.ShellIO(proc), ctx)
    return proc.stdout.text, proc.stderr.text, status


async def test_unknown_command_is_127_like_sh():
    assert await run("frobnicate --now") == ("", "sh: 1: frobnicate: not found\n", 127)


async def test_identity_commands():
    out, _, status = await run("uname -a")
    assert status == 0
    assert out.startswith("Linux spark-demo 6.17.0-1029-nvidia ")
    assert out.rstrip().endswith("aarch64 GNU/Linux")
    assert (await run("uname -r"))[0] == "6.17.0-1029-nvidia\n"
    assert (await run("uname -m"))[0] == "aarch64\n"
    assert (await run("hostname"))[0] == "spark-demo\n"
    assert (await run("nproc"))[0] == f"{NCPU}\n"
    assert (await run("echo hello   'big world'"))[0] == "hello big world\n"
    assert (await run("true"))[2] == 0
    assert (await run("exit 7"))[2] == 7
    assert (await run("command -v nvidia-smi"))[0] == "/usr/bin/nvidia-smi\n"


async def test_files():
    out, _, _ = await run("cat /etc/dgx-release /etc/os-release")
    assert 'DGX_NAME="DGX Spark"' in out and 'DGX_PRETTY_NAME="NVIDIA DGX Spark"' in out
    assert "DGX_OTA_VERSION=" in out and 'VERSION_ID="24.04"' in out and "Noble Numbat" in out
    cpuinfo = (await run("cat /proc/cpuinfo"))[0]
    parts = re.findall(r"CPU part\s+: (0x[0-9a-f]+)", cpuinfo)
    assert parts.count("0xd85") == 10 and parts.count("0xd87") == 10
    uptime = (await run("cat /proc/uptime"))[0].split()
    assert len(uptime) == 2 and float(uptime[0]) > 0
    assert (await run("cat /proc/loadavg"))[0].count(" ") == 4
    out, err, status = await run("cat /nope /proc/uptime")
    assert status == 1 and err == "cat: /nope: No such file or directory\n" and out


async def test_thermal_globs_expand_over_the_zones():
    temps, _, status = await run("cat /sys/class/thermal/thermal_zone*/temp")
    types, _, _ = await run("cat /sys/class/thermal/thermal_zone*/type")
    assert status == 0
    assert len(temps.split()) == len(types.split()) >= 5
    assert all(t.isdigit() and 20_000 < int(t) < 100_000 for t in temps.split())
    one, _, _ = await run("cat /sys/class/thermal/thermal_zone0/temp")
    assert one.strip().isdigit()


async def test_operators_and_redirections():
    assert (await run("false && echo no; echo yes"))[0] == "yes\n"
    assert (await run("false || echo fallback"))[0] == "fallback\n"
    assert (await run("nope 2>/dev/null || echo $?"))[:2] == ("127\n", "")
    assert (await run("nope 2>&1"))[:2] == ("sh: 1: nope: not found\n", "")
    assert (await run("echo hidden >/dev/null"))[0] == ""
    assert (await run("LC_ALL=C exec hostname"))[0] == "spark-demo\n"
    assert (await run("sh -c 'exit 3'; echo $?"))[0] == "3\n"
    assert (await run("echo 'unbalanced"))[2] == 2


async def test_ps_and_kill():
    dev = SimDevice(seed=5, auto=False)
    dev.set_load(0.7)
    (app,) = dev.compute_apps()
    out, _, status = await run(f"ps -o pid=,user=,args= -p {app.pid},1", dev)
    assert status == 0
    rows = out.splitlines()
    assert rows[0].split(None, 2) == ["1", "root", "/sbin/init splash"]
    assert rows[1].split(None, 2)[0] == str(app.pid)
    assert rows[1].split(None, 2)[2] == app.args
    out, _, _ = await run("ps -eo pid,user,comm", dev)
    assert out.splitlines()[0].split() == ["PID", "USER", "COMMAND"]
    assert len(out.splitlines()) == len(dev.processes()) + 1
    assert (await run("ps -o pid= -p 424242", dev))[2] == 1
    assert (await run("ps -o bogus", dev))[2] == 1
    assert await run("kill -TERM 99999", dev) == ("", "sh: 1: kill: No such process\n", 1)
    assert (await run("kill -9 1", dev))[1] == "sh: 1: kill: Operation not permitted\n"
    assert (await run("kill abc", dev))[2] == 2
    assert (await run("kill -FOO 5", dev))[2] == 2
    assert (await run(f"kill -15 {app.pid}", dev))[2] == 0
    assert dev.compute_apps() == []


async def test_nvidia_smi_through_the_shell():
    out, _, status = await run("nvidia-smi --query-gpu=index,name,memory.total "
                               "--format=csv,noheader")
    assert (out, status) == ("0, NVIDIA GB10, [N/A]\n", 0)
    out, err, status = await run("nvidia-smi --query-gpu=bogus --format=csv")
    assert status == 2 and out == "" and "bogus" in err


async def test_loops_stop_when_the_channel_closes():
    proc = FakeProcess()
    ctx = shell.Context(SimDevice(seed=5, auto=False))
    task = asyncio.ensure_future(shell.execute(
        "nvidia-smi --query-gpu=index --format=csv,noheader -lms 20", shell.ShellIO(proc), ctx))
    await asyncio.sleep(0.15)
    proc.closed = True
    with pytest.raises(shell.Closed):
        await asyncio.wait_for(task, 1)
    assert 3 <= proc.stdout.text.count("0\n") <= 12

    proc = FakeProcess()
    io = shell.ShellIO(proc)
    task = asyncio.ensure_future(shell.execute("sleep 30", io, ctx))
    await asyncio.sleep(0.05)
    io.stop("TERM")  # what an SSH signal does
    with pytest.raises(shell.Closed):
        await asyncio.wait_for(task, 1)


def parse_hoststat(text: str) -> list[dict]:
    """Split a host-stat stream into blocks; checks the framing on the way."""
    blocks = []
    current: dict | None = None
    for line in text.splitlines():
        if line.startswith(shell.HOSTSTAT_BEGIN):
            assert current is None, "block not closed"
            current = {"time": float(line[len(shell.HOSTSTAT_BEGIN):]), "cpu": [], "mem": {},
                       "loadavg": None, "thermal": [], "gb10": []}
        elif line == shell.HOSTSTAT_END:
            assert current is not None
            blocks.append(current)
            current = None
        elif current is None:
            continue  # a partial block at the start of a read
        elif line.startswith(("boot ", "psi ", "buddy ", "rail ", "prochot ")):
            current["gb10"].append(line)  # parsed by core.memtruth (tests/test_core_memtruth.py)
        elif re.match(r"cpu\d* ", line):
            assert not current["mem"], "cpu lines come first"
            current["cpu"].append(line)
        elif re.match(r"[A-Za-z_()0-9]+:\s", line):
            key, value = line.split(":", 1)
            current["mem"][key] = value.strip()
        elif line.startswith(shell.HOSTSTAT_THERMAL):
            _, name, milli = line.rsplit(" ", 2) if line.count(" ") >= 2 else (None, "", "x")
            assert milli.lstrip("-").isdigit(), line
            current["thermal"].append((name, int(milli)))
        else:
            assert current["loadavg"] is None, f"unexpected line {line!r}"
            assert len(line.split()) == 5, line
            current["loadavg"] = line
    return blocks


async def test_sim_hoststat_blocks():
    dev = SimDevice(seed=5)
    proc = FakeProcess()
    task = asyncio.ensure_future(shell.execute(
        f"sh -c 'ignored' {hostscript.HOSTSTAT_MARKER} 30", shell.ShellIO(proc),
        shell.Context(dev)))
    await asyncio.sleep(0.2)
    proc.closed = True
    with pytest.raises(shell.Closed):
        await task
    blocks = parse_hoststat(proc.stdout.text)
    assert len(blocks) >= 3
    for b in blocks:
        assert b["cpu"][0].startswith("cpu  ") and len(b["cpu"]) == NCPU + 1
        assert "MemTotal" in b["mem"] and "MemAvailable" in b["mem"]
        assert b["loadavg"] is not None and len(b["thermal"]) >= 5
        kinds = {line.split(" ", 1)[0] for line in b["gb10"]}
        assert kinds == {"boot", "psi", "buddy", "rail", "prochot"}
    assert blocks[1]["time"] > blocks[0]["time"]
    assert hostscript.hoststat_command(500).endswith(f" {hostscript.HOSTSTAT_MARKER} 500")


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
async def test_real_sh_runs_the_hoststat_script_with_the_same_framing():
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", hostscript.HOSTSTAT_SCRIPT, hostscript.HOSTSTAT_MARKER, "100",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    text = ""
    try:
        async with asyncio.timeout(10):
            assert proc.stdout is not None
            while text.count(shell.HOSTSTAT_END + "\n") < 2:
                line = await proc.stdout.readline()
                assert line, "script ended early"
                text += line.decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the script and its sleep, by group
        await proc.wait()
    assert proc.stderr is not None
    assert (await proc.stderr.read()) == b""
    blocks = parse_hoststat(text)
    assert len(blocks) == 2
    ncpu = os.cpu_count() or 1
    for b in blocks:
        assert b["cpu"][0].startswith("cpu ") and len(b["cpu"]) >= 2
        assert len(b["cpu"]) <= ncpu + 1
        assert "MemTotal" in b["mem"] and b["loadavg"] is not None
        kinds = {line.split(" ", 1)[0] for line in b["gb10"]}
        assert {"boot", "buddy"} <= kinds  # this machine's kernel has both
        if os.path.exists("/proc/pressure/memory"):
            assert "psi" in kinds
    assert 0.05 < blocks[1]["time"] - blocks[0]["time"] < 5
    real_zones = [z for z in os.listdir("/sys/class/thermal") if z.startswith("thermal_zone")] \
        if os.path.isdir("/sys/class/thermal") else []
    assert len(blocks[0]["thermal"]) <= len(real_zones)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
async def test_hoststat_script_thermal_loop(tmp_path):
    # This machine may have no thermal zones: point the script's loop at fake ones.
    for i, (kind, milli) in enumerate([("acpitz", "41000"), ("nvme", "38500"), ("bad", None)]):
        zone = tmp_path / f"thermal_zone{i}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        if milli is not None:  # a zone whose temp cannot be read is skipped
            (zone / "temp").write_text(milli + "\n")
    script = hostscript.HOSTSTAT_SCRIPT.replace("/sys/class/thermal", str(tmp_path))
    assert script != hostscript.HOSTSTAT_SCRIPT
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", script, hostscript.HOSTSTAT_MARKER, "5000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    text = ""
    try:
        async with asyncio.timeout(10):
            assert proc.stdout is not None
            while not text.endswith(shell.HOSTSTAT_END + "\n"):
                line = await proc.stdout.readline()
                assert line, "script ended early"
                text += line.decode()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()
    (block,) = parse_hoststat(text)
    assert block["thermal"] == [("acpitz", 41000), ("nvme", 38500)]
