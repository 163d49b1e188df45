"""Steady state starts no process through SSH: counted on the device side.

A Spark is someone's workstation: every SSH exec runs their login shell, which
reads their ~/.bashrc (pyenv, conda or nvm init: ~0.1 s of CPU each). Here the
device user's ~/.bashrc appends a line to a file at every shell start, and sshd
(LogLevel VERBOSE) logs every `Starting session: command`; both are counted.
Connecting opens the long-lived channels (a few execs, once); after that, on
every tab, over a window of telemetry ticks, neither count may move.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.core.gpuprocs import ProcessDetail
from sparktui.services.config import Config, Settings
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.devices import Fleet, make_link
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from sparktui.ui.app import SparkApp
from sparktui.ui.panes import PANES
from tests.infra import ClientSetup, SshdServer
from tests.infra.pilot import wait_until

pytestmark = pytest.mark.sshd

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"
SETTINGS = Settings(refresh_interval=0.25, keepalive_interval=5.0, reconnect_max_delay=1.0)
BASHRC = 'printf "%s\\n" "$$ $0" >> "$HOME/shell-starts"\n'


@dataclass
class CountedDevice:
    """An sshd whose user's .bashrc records every shell start."""

    server: SshdServer
    home: Path

    def shell_starts(self) -> int:
        path = self.home / "shell-starts"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def exec_sessions(self) -> int:
        return self.server.log_text().count("Starting session: command")

    def execs(self) -> tuple[int, int]:
        return self.shell_starts(), self.exec_sessions()


@pytest.fixture
def counted_device(ssh_home: ClientSetup, sshd_factory: Callable[..., SshdServer],
                   monkeypatch, tmp_path) -> CountedDevice:
    home = tmp_path / "device-home"
    home.mkdir()
    (home / ".bashrc").write_text(BASHRC)
    server = sshd_factory(remote_home=str(home))
    ssh_home.add_server("spark-test", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return CountedDevice(server, home)


@contextlib.asynccontextmanager
async def telemetry() -> AsyncIterator[TelemetryService]:
    link = make_link(DeviceSpec.parse("spark-test"), SETTINGS)
    service = TelemetryService(link, SETTINGS)
    link.start()
    service.start()
    try:
        yield service
    finally:
        await service.close()
        await link.close()


async def wait_for(service: TelemetryService, predicate: Callable[[DeviceTelemetry], object],
                   what: str, timeout: float = 20.0) -> DeviceTelemetry:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate(service.latest):
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {timeout} s: {service.latest!r}")
        await asyncio.sleep(0.02)
    return service.latest


@contextlib.contextmanager
def python_process(*args: str):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *args],
                            stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def proc_detail(pid: int) -> ProcessDetail:
    with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
        return ProcessDetail(pid, cgroups=tuple(fh.read().splitlines()))


async def test_gpu_processes_carry_user_cgroup_and_command_line_without_an_exec(
        counted_device: CountedDevice, fake_gpu):
    with python_process("--model", "Qwen3 8B") as vllm, python_process("serve") as other:
        fake_gpu(f"gb10\npids {vllm.pid}")
        async with telemetry() as service:
            t = await wait_for(service, lambda t: any(p.pid == vllm.pid for p in t.processes)
                               and t.host is not None and t.gpus, "the real GPU process")
            found = next(p for p in t.processes if p.pid == vllm.pid)
            assert found.user == getpass.getuser()
            assert found.cmdline == (sys.executable, "-c", "import time; time.sleep(300)",
                                     "--model", "Qwen3 8B")
            assert found.command == " ".join(found.cmdline)
            assert found.cgroup == proc_detail(vllm.pid).cgroup_path
            assert found.container_id is None and found.gpu_index == 0
            assert found.used_memory_mib == 512.0
            connected = counted_device.execs()
            assert connected[0] >= 3, "the rig counts shell starts (one per stream at least)"

            # the period follows the screen: no restart, no exec, and a list opened
            # now is polled at once (the stand-in now also lists the second process)
            service.watch_processes(False)
            fake_gpu(f"gb10\npids {vllm.pid} {other.pid}")
            service.watch_processes(True)
            await wait_for(service, lambda t: {p.pid for p in t.processes} >= {vllm.pid,
                                                                               other.pid},
                           "the second process, polled at once")
            # a process that ended leaves the list at the next poll it asks for
            other.kill()
            other.wait()
            service.request_process_poll()
            await wait_for(service, lambda t: other.pid not in {p.pid for p in t.processes},
                           "the ended process to go")
            assert counted_device.execs() == connected, "a steady state started a shell"


async def test_no_exec_in_steady_state_on_any_tab(counted_device: CountedDevice, fake_gpu,
                                                 docker_engine, tmp_path):
    fake_gpu("gb10")
    link = make_link(DeviceSpec.parse("spark-test"), SETTINGS)
    app = SparkApp(Config(path=tmp_path / "config.toml", settings=SETTINGS),
                   fleet=Fleet([link]), theme_dirs=[REPO_THEMES])
    ticks: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        service = app.telemetry.services["spark-test"]
        service.subscribe(lambda t: ticks.append(t.t) if t.host else None)
        await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED
                         and len(ticks) >= 4, 30, "connected, with host figures")

        async def ticks_pass(count: int) -> None:
            start = len(ticks)
            await wait_until(pilot, lambda: len(ticks) >= start + count, 20,
                             f"{count} telemetry ticks")

        async def settle() -> None:
            """What a tab does once when it opens is allowed (e.g. Chat's endpoint
            discovery): wait until no exec has started for 4 ticks in a row."""
            calm, last = 0, counted_device.execs()
            while calm < 4:
                await ticks_pass(1)
                now = counted_device.execs()
                calm, last = (calm + 1 if now == last else 0), now

        for pane in PANES:
            app.action_show_tab(pane.id)
            await settle()
            polls = service.process_polls
            before = counted_device.execs()
            await ticks_pass(9)  # over 2 s of steady state at 4 Hz
            if pane.id == "telemetry":  # the list on screen: polled, but not by an exec
                await wait_until(pilot, lambda p=polls: service.process_polls > p, 20,
                                 "a process poll")
            assert counted_device.execs() == before, (
                f"{pane.id} tab: {counted_device.execs()[0] - before[0]} shell starts, "
                f"{counted_device.execs()[1] - before[1]} exec sessions in steady state")


async def test_docker_retries_that_fail_alike_ask_the_device_once(counted_device: CountedDevice):
    """No daemon at the socket: the service retries every few seconds (a channel, no
    process) and asks the device why only once, not at every retry."""
    link = make_link(DeviceSpec.parse("spark-test"), SETTINGS)
    service = ContainerService(link, socket_path="/nonexistent/docker.sock", retry_interval=0.2)
    states: list[ServiceState] = []
    service.subscribe(lambda _change: states.append(service.state))
    link.start()
    service.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while states.count(ServiceState.PROBLEM) < 2:
            assert loop.time() < deadline, f"no problem reported: {states}"
            await asyncio.sleep(0.02)
        before = counted_device.execs()
        seen = states.count(ServiceState.PROBLEM)
        while states.count(ServiceState.PROBLEM) < seen + 5:  # five more retries
            assert loop.time() < deadline + 10, "the retries stopped"
            await asyncio.sleep(0.02)
        assert counted_device.execs() == before
        assert service.problem is not None and "docker" in service.problem.message.lower()
    finally:
        await service.close()
        await link.close()
