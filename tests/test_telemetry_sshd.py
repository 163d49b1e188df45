"""TelemetryService over a real OpenSSH sshd, with the stand-in nvidia-smi on its PATH.

The host stream runs the real hoststat script on this very machine (the sshd
is local), so its figures are checked against our own /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.core.nvsmi import EVENT_REASONS_FIELD, THROTTLE_REASONS_FIELD
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import DeviceTelemetry, ReadOnlyError, TelemetryService
from tests.infra import ClientSetup, SshdServer
from tests.infra.common import alive, proc_id

pytestmark = pytest.mark.sshd

FAST = Settings(refresh_interval=0.2, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=1.0)
MIB = 1024**2
GIB = 1024**3
GB10_POWER_W = (11.0, 63.0)  # the simulator's GB10: idle 11-17 W, full load below 63 W
SIM_DRIVER = "580.126.09"


def local_meminfo() -> dict[str, int]:
    """This machine's /proc/meminfo in bytes: the sshd host is this host."""
    out = {}
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0]) * 1024
    return out


@contextlib.asynccontextmanager
async def telemetry(alias: str = "spark-test", settings: Settings = FAST
                    ) -> AsyncIterator[tuple[DeviceLink, TelemetryService]]:
    link = make_link(DeviceSpec.parse(alias), settings)
    service = TelemetryService(link, settings)
    link.start()
    service.start()
    try:
        yield link, service
    finally:
        await service.close()
        await link.close()


async def wait_for(service: TelemetryService, predicate: Callable[[DeviceTelemetry], object],
                   what: str, timeout: float = 15.0) -> DeviceTelemetry:
    deadline = time.monotonic() + timeout
    while not predicate(service.latest):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s: {service.latest!r}; "
                                 f"link {service.link.status.describe()}")
        await asyncio.sleep(0.02)
    return service.latest


def has_gpus(t: DeviceTelemetry) -> bool:
    return bool(t.gpus)


def has_cpu(t: DeviceTelemetry) -> bool:
    return t.host is not None and t.host.cpu_pct is not None


def check_host_is_this_machine(t: DeviceTelemetry) -> None:
    host = t.host
    assert host is not None and host.cpu_pct is not None
    assert 0.0 <= host.cpu_pct <= 100.0
    mine = local_meminfo()
    assert host.mem_total == mine["MemTotal"]
    assert host.mem_available is not None and host.mem_used is not None
    assert host.mem_used == host.mem_total - host.mem_available
    assert abs(host.mem_available - mine["MemAvailable"]) < 2 * GIB
    with open("/proc/loadavg", encoding="ascii") as fh:
        load1 = float(fh.read().split()[0])
    assert host.load1 is not None and abs(host.load1 - load1) < 2.0


def check_gb10(gpu) -> None:
    assert gpu.index == 0 and gpu.name == "NVIDIA GB10"
    assert gpu.uuid is not None and gpu.uuid.startswith("GPU-")
    # every [N/A] of a GB10 is None, never 0
    assert gpu.mem_used_mib is None and gpu.mem_total_mib is None
    assert gpu.power_limit_w is None and gpu.fan_pct is None and gpu.mem_clock_mhz is None
    assert not gpu.has_memory
    assert gpu.power_w is not None and GB10_POWER_W[0] <= gpu.power_w <= GB10_POWER_W[1]
    assert gpu.temp_c is not None and 30 <= gpu.temp_c <= 95
    assert gpu.util_gpu is not None and 0 <= gpu.util_gpu <= 100
    assert gpu.sm_clock_mhz is not None and 2300 <= gpu.sm_clock_mhz <= 3003
    assert gpu.sm_clock_max_mhz == 3003
    assert gpu.pstate in {"P0", "P8"}


# ----------------------------------------------------------------------- scenarios

async def test_gb10_unified_memory_from_the_real_proc_meminfo(ssh_client: ClientSetup,
                                                             fake_gpu):
    fake_gpu("gb10")
    async with telemetry() as (link, service):
        t = await wait_for(service, lambda t: has_gpus(t) and has_cpu(t), "GB10 figures")
        assert link.status.state is LinkState.CONNECTED
        assert t.driver_version == SIM_DRIVER
        assert len(t.gpus) == 1
        check_gb10(t.gpus[0])
        assert t.unified_memory is True
        assert t.gpu_problem is None and t.dropped_fields == ()
        check_host_is_this_machine(t)
        view = t.memory_view(t.gpus[0])
        assert view.label == "unified" and view.unified
        assert view.total_bytes == local_meminfo()["MemTotal"]
        assert view.used_bytes == t.host.mem_used
        # the stand-in's compute apps (when it has any) land on GPU 0 by uuid
        for proc in t.processes:
            assert proc.gpu_index == 0 and proc.used_memory_mib is not None


async def test_discrete8_publishes_whole_ticks_with_gpu_memory(ssh_client, fake_gpu):
    fake_gpu("discrete8")
    sizes: list[int] = []
    async with telemetry() as (_link, service):
        service.subscribe(lambda t: sizes.append(len(t.gpus)) if t.gpus else None)
        t = await wait_for(service, lambda t: has_gpus(t) and has_cpu(t), "8 GPUs")
        await wait_for(service, lambda t: len(sizes) >= 3, "three ticks")
    # never a tick published piecemeal (1 GPU, then 2, ...)
    assert set(sizes) == {8}, sizes
    assert [g.index for g in t.gpus] == list(range(8))
    assert t.unified_memory is False
    for gpu in t.gpus:
        assert gpu.name is not None and "H100" in gpu.name
        assert gpu.mem_total_mib is not None and gpu.mem_total_mib > 70_000
        assert gpu.mem_used_mib is not None and 0 <= gpu.mem_used_mib <= gpu.mem_total_mib
        assert gpu.power_limit_w == 700.0
        assert gpu.power_w is not None and 60 <= gpu.power_w <= 700
        view = t.memory_view(gpu)
        assert view.label == "GPU" and not view.unified
        assert view.total_bytes == int(gpu.mem_total_mib * MIB)
        assert view.used_bytes == int(gpu.mem_used_mib * MIB)
    assert len({g.uuid for g in t.gpus}) == 8


async def test_rejected_event_reasons_field_falls_back_to_the_old_name(ssh_client, fake_gpu):
    fake_gpu(f"reject-field:{EVENT_REASONS_FIELD}")
    ticks: list[float] = []
    async with telemetry() as (_link, service):
        service.subscribe(lambda t: ticks.append(t.gpus[0].t) if t.gpus else None)
        t = await wait_for(service, lambda t: len(set(ticks)) >= 3, "values after the retry")
        assert t.dropped_fields[0] == EVENT_REASONS_FIELD
        assert EVENT_REASONS_FIELD not in service.fields
        # The stand-in maps the old name onto the new one before it checks the
        # rejected name, so it refuses the fallback as well: then that goes too.
        # (test_old_driver_gets_the_old_field_name pins the fallback itself.)
        assert t.dropped_fields in ((EVENT_REASONS_FIELD,),
                                    (EVENT_REASONS_FIELD, THROTTLE_REASONS_FIELD))
        assert t.gpu_problem is None
        check_gb10(t.gpus[0])


async def test_old_driver_gets_the_old_field_name(ssh_home: ClientSetup, sshd_factory,
                                                  fake_gpu, monkeypatch, tmp_path):
    """A driver before 535: knows clocks_throttle_reasons.active, not the new name."""
    fake_gpu("gb10")
    bin_dir = tmp_path / "old-driver"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *{EVENT_REASONS_FIELD}*)\n'
        f"  echo 'Field \"{EVENT_REASONS_FIELD}\" is not a valid field to query.'\n"
        "  echo; echo \"Run 'nvidia-smi --help-query-gpu' for the list of valid fields.\"\n"
        "  exit 2 ;;\n"
        "esac\n"
        f"exec '{sys.executable}' -m tests.infra.fake_nvidia_smi \"$@\"\n")
    script.chmod(0o755)
    server = sshd_factory(nvidia_smi=False, path_dirs=[str(bin_dir)])
    ssh_home.add_server("spark-old", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    ticks: list[float] = []
    async with telemetry("spark-old") as (_link, service):
        service.subscribe(lambda t: ticks.append(t.gpus[0].t) if t.gpus else None)
        t = await wait_for(service, lambda t: len(set(ticks)) >= 3, "values after the retry")
        assert t.dropped_fields == (EVENT_REASONS_FIELD,)
        assert THROTTLE_REASONS_FIELD in service.fields
        assert t.gpu_problem is None
        check_gb10(t.gpus[0])
        assert t.gpus[0].event_reasons is not None  # the mask comes from the old name


async def test_rejected_fan_speed_is_dropped_and_values_keep_coming(ssh_client, fake_gpu):
    fake_gpu("reject-field:fan.speed")
    ticks: list[float] = []
    async with telemetry() as (_link, service):
        service.subscribe(lambda t: ticks.append(t.gpus[0].t) if t.gpus else None)
        t = await wait_for(service, lambda t: len(set(ticks)) >= 3, "values after the drop")
        assert t.dropped_fields == ("fan.speed",)
        assert "fan.speed" not in service.fields
        assert t.gpu_problem is None
        check_gb10(t.gpus[0])


async def test_event_text_between_samples_is_skipped(ssh_client, fake_gpu):
    fake_gpu("events")
    seen = []
    async with telemetry() as (_link, service):
        service.subscribe(lambda t: seen.extend(t.gpus) if t.gpus else None)
        await wait_for(service, lambda t: len({g.t for g in seen}) >= 5, "five ticks")
        assert service.latest.gpu_problem is None
    for gpu in seen:  # the XID / ECC lines never became (or spoiled) a sample
        check_gb10(gpu)


async def test_a_row_cut_mid_line_never_gives_a_wrong_sample(ssh_client, fake_gpu):
    fake_gpu("cut")  # two ticks, then half a row, then exit 0
    seen = []
    async with telemetry() as (_link, service):
        service.subscribe(lambda t: seen.extend(t.gpus) if t.gpus else None)
        await wait_for(service, has_gpus, "the first ticks")
        await asyncio.sleep(1.0)  # the stream has ended by now, cut mid-row
        assert 1 <= len({g.t for g in seen}) <= 2
        assert service.latest.gpu_problem is None  # ended by itself, rows were seen
    for gpu in seen:
        check_gb10(gpu)


async def test_missing_nvidia_smi_is_reported_and_host_figures_still_come(
        ssh_home: ClientSetup, sshd_factory, monkeypatch, tmp_path):
    # A PATH with only what the host loop needs, so a real nvidia-smi in /usr/bin
    # (on a GPU machine) cannot be found either.
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("sh", "sleep", "ps", "kill"):
        for folder in ("/usr/bin", "/bin"):
            if os.path.exists(f"{folder}/{name}"):
                os.symlink(f"{folder}/{name}", tools / name)
                break
    server = sshd_factory(nvidia_smi=False, env={"PATH": str(tools)})
    ssh_home.add_server("spark-nogpu", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    async with telemetry("spark-nogpu") as (_link, service):
        t = await wait_for(service, lambda t: t.gpu_problem and has_cpu(t), "the GPU problem")
    assert "nvidia-smi" in t.gpu_problem and "not installed" in t.gpu_problem
    assert t.gpus == () and t.driver_version is None and t.unified_memory is False
    check_host_is_this_machine(t)


async def test_driver_failure_is_reported_with_the_driver_message(ssh_client, fake_gpu):
    fake_gpu("driver-failure")
    async with telemetry() as (_link, service):
        t = await wait_for(service, lambda t: t.gpu_problem and has_cpu(t), "the GPU problem")
    assert "NVIDIA driver" in t.gpu_problem
    assert t.gpus == () and t.driver_version is None
    check_host_is_this_machine(t)


# ---------------------------------------------------------------------- processes

async def start_sleeper(link: DeviceLink) -> tuple[int, int]:
    result = await link.run("sh -c 'sleep 1000 >/dev/null 2>&1 & echo $!'")
    assert result.ok, result
    pid = int(result.stdout.strip())
    ident = proc_id(pid)
    assert ident is not None and alive(ident), "the sleeper runs on this machine"
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        assert fh.read().split(b"\0")[0].endswith(b"sleep")
    return pid, ident[1]


async def test_kill_process_ends_a_real_process(ssh_client, fake_gpu):
    fake_gpu("gb10")
    async with telemetry() as (link, service):
        await wait_for(service, lambda _t: link.status.state is LinkState.CONNECTED, "link")
        pid, start = await start_sleeper(link)
        result = await service.kill_process(pid)
        assert result.ok, result
        deadline = time.monotonic() + 5
        while alive((pid, start)):  # gone, or a zombie nobody reaped yet
            assert time.monotonic() < deadline, f"process {pid} survived SIGTERM"
            await asyncio.sleep(0.02)


async def test_kill_process_is_refused_in_read_only_mode(ssh_client, fake_gpu):
    fake_gpu("gb10")
    settings = Settings(refresh_interval=0.2, read_only=True)
    async with telemetry(settings=settings) as (link, service):
        await wait_for(service, lambda _t: link.status.state is LinkState.CONNECTED, "link")
        pid, start = await start_sleeper(link)
        try:
            with pytest.raises(ReadOnlyError):
                await service.kill_process(pid)
            await asyncio.sleep(0.3)
            assert alive((pid, start)), "read-only mode sent a signal anyway"
        finally:
            if alive((pid, start)):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------- reconnect

async def test_gpu_samples_resume_after_sshd_restart(ssh_client, sshd: SshdServer, fake_gpu,
                                                    record_property):
    fake_gpu("gb10")
    arrivals: list[float] = []
    async with telemetry() as (link, service):
        service.subscribe(lambda t: arrivals.append(time.monotonic()) if t.gpus else None)
        await wait_for(service, lambda t: len(arrivals) >= 3, "samples before the drop")
        sshd.stop(kill_sessions=True)
        deadline = time.monotonic() + 5
        while link.status.state is LinkState.CONNECTED:
            assert time.monotonic() < deadline, "the drop went unnoticed"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        sshd.restart()
        back = time.monotonic()
        before = len(arrivals)
        deadline = back + 15
        while len(arrivals) == before:
            assert time.monotonic() < deadline, f"no samples after restart: " \
                                                f"{link.status.describe()}"
            await asyncio.sleep(0.02)
        resumed = arrivals[before] - back
        record_property("reconnect_to_resume_s", round(resumed, 3))
        print(f"GPU samples resumed {resumed:.2f} s after sshd came back")
        assert resumed < 5.0, f"samples resumed only after {resumed:.1f} s"
        check_gb10(service.latest.gpus[0])
        t = await wait_for(service, lambda t: has_cpu(t) and t.host_problem is None,
                           "host figures after the restart")
        check_host_is_this_machine(t)
