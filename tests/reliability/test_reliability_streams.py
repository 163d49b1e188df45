"""Groups 3 and 5: streams that flood stderr, stall, or never end a line; commands that hang.

A real sshd runs a hostile `nvidia-smi` of the test's own (a small Python
script written over the stand-in on the server's PATH), so the bytes cross a
real SSH channel with its real flow-control window.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import TelemetryService
from tests.infra import ClientSetup, SshdServer

pytestmark = pytest.mark.sshd

FAST = Settings(refresh_interval=0.2, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=1.0)
ROW = ("0, GPU-1, NVIDIA GB10, 5, 0, [N/A], [N/A], 40, 12.5, 100, 1000, 2000, [N/A], P0, "
       "[N/A], 0x0000000000000000")

HOSTILE_SMI = textwrap.dedent('''\
    #!{python}
    import os, sys, time
    args = " ".join(sys.argv[1:])
    mode = open({mode_file!r}).read().strip()
    if "driver_version" in args:
        print("580.126.09"); sys.exit(0)
    if "--query-gpu" not in args:
        sys.exit(0)  # the process loop's query: no processes
    with open({count_file!r}, "a") as fh:
        fh.write(f"{{os.getpid()}}\\n")
    out = sys.stdout
    if mode == "stderr-flood":
        junk = "W" * 1023 + "\\n"
        for tick in range(10**6):
            if tick == 1:
                sys.stderr.write(junk * 4096)  # 4 MiB: twice the SSH channel window
                sys.stderr.flush()
            out.write({row!r} + "\\n"); out.flush()
            time.sleep(0.2)
    elif mode == "hang-after-one":
        out.write({row!r} + "\\n"); out.flush()
        time.sleep(3600)
    elif mode == "no-newline":
        while True:
            out.write("x" * 65536); out.flush()
    ''')


@contextlib.asynccontextmanager
async def telemetry(alias: str = "spark-test") -> AsyncIterator[tuple[DeviceLink,
                                                                     TelemetryService]]:
    link = make_link(DeviceSpec.parse(alias), FAST)
    service = TelemetryService(link, FAST)
    link.start()
    service.start()
    try:
        yield link, service
    finally:
        await within(service.close(), 30)
        await link.close()


@pytest.fixture
def hostile_smi(sshd: SshdServer, ssh_client: ClientSetup, tmp_path):
    mode_file = tmp_path / "mode"
    count_file = tmp_path / "starts"
    count_file.write_text("")
    path = os.path.join(sshd.bin_dir, "nvidia-smi")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HOSTILE_SMI.format(python=sys.executable, mode_file=str(mode_file),
                                    count_file=str(count_file), row=ROW))
    os.chmod(path, 0o755)

    def set_mode(mode: str):
        mode_file.write_text(mode)
        return count_file

    return set_mode


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.05)


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().split(") ", 1)[1][0] != "Z":
                alive.append(pid)
    return alive


async def test_a_stderr_flood_does_not_freeze_the_gpu_figures(hostile_smi) -> None:
    hostile_smi("stderr-flood")
    async with telemetry() as (_link, service):
        await _until(lambda: service.latest.gpus, 20, "first GPU tick")
        first = service.latest.gpus[0].t
        # 4 MiB of stderr has gone by at tick 1; stdout must keep flowing past it
        await _until(lambda: service.latest.gpus[0].t > first + 3, 20,
                     "GPU ticks after the stderr flood (stdout froze: stderr not drained)")


async def test_a_stalled_stream_is_noticed_restarted_and_killed_on_the_device(
        hostile_smi) -> None:
    starts = hostile_smi("hang-after-one")
    async with telemetry() as (link, service):
        await _until(lambda: service.latest.gpus, 20, "first GPU tick")
        t0 = time.monotonic()
        await _until(lambda: "not answering" in (service.latest.gpu_problem or ""), 15,
                     "'not answering'")
        noticed = time.monotonic() - t0
        assert noticed < 3 * 0.2 + 5 + 3, f"noticed after {noticed:.1f} s"
        await _until(lambda: len(starts.read_text().split()) >= 2, 25, "a restart")
        assert link.status.state.name == "CONNECTED"  # restarted without a reconnect
        first_pid = int(starts.read_text().split()[0])
        await _until(lambda: not _alive([first_pid]), 10,
                     "the hung nvidia-smi killed on the device")


async def test_output_without_newlines_is_bounded(hostile_smi) -> None:
    import resource

    mode = hostile_smi("stderr-flood").parent / "mode"
    async with telemetry() as (_link, service):  # warm: imports and buffers of a normal run
        await _until(lambda: service.latest.gpus, 20, "first GPU tick")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mode.write_text("no-newline")
    async with telemetry() as (_link, service):
        await _until(lambda: "not answering" in (service.latest.gpu_problem or ""), 20,
                     "'not answering' for a stream that never ends a line")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
    # old main: readline() kept the whole line, 0.4-1.8 GB per device, and a core busy
    print(f"peak RSS grew by {grown_mib} MiB")  # in the test output: a figure, not a speed
    assert grown_mib < 300, f"peak RSS grew by {grown_mib} MiB"


async def test_a_command_that_times_out_is_killed_on_the_device(ssh_client) -> None:
    from sparktui.transport.ssh import connect_ssh

    marker = f"sleep {3000 + os.getpid() % 1000}"
    transport = await connect_ssh(DeviceSpec.parse("spark-test"))
    try:
        result = await transport.run(f"exec {marker}", timeout=1)
        assert result.exit_status == -1 and "not answering" in result.stderr
        deadline = time.monotonic() + 10
        while True:
            found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
            if not found.stdout.strip():
                break
            assert time.monotonic() < deadline, "the timed-out command still runs on the device"
            await asyncio.sleep(0.1)
    finally:
        await transport.close()



ENDLESS_SERVER = textwrap.dedent('''\
    import socket, sys
    if len(sys.argv) > 1:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(sys.argv[1])
        listener.listen()
        print(0, flush=True)
    else:
        listener = socket.create_server(("127.0.0.1", 0))
        print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    block = b"z" * 65536
    try:
        while True:
            conn.sendall(block)
    except OSError:
        pass
    ''')


@pytest.mark.parametrize("through", ["tunnel", "unix-socket forward"])
async def test_a_fast_server_behind_a_forward_and_a_slow_reader_stays_bounded(
        ssh_client, tmp_path, through: str) -> None:
    """Tunnels and socket forwards (Docker's) read through BoundedSession too: the device
    side writes as fast as loopback allows, the reader here takes 64 KiB every 10 ms
    for 3 s."""
    import resource

    from sparktui.transport.ssh import connect_ssh

    remote = str(tmp_path / "endless.sock")
    argv = [sys.executable, "-c", ENDLESS_SERVER] + ([remote] if through != "tunnel" else [])
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    transport = await connect_ssh(DeviceSpec.parse("spark-test"))
    forward = None
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        if through == "tunnel":
            reader, writer = await transport.open_connection("127.0.0.1", port)
        else:
            local = str(tmp_path / "here.sock")
            forward = await transport.forward_unix_socket(local, remote)
            reader, writer = await asyncio.open_unix_connection(local)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        received = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3
        while loop.time() < deadline:
            received += len(await reader.read(65536))
            await asyncio.sleep(0.01)  # the slow reader is the point of the test
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024
        print(f"{through}: read {received >> 20} MiB slowly; peak RSS grew by {grown_mib} MiB")
        writer.close()
        assert received > 0
        assert grown_mib < 100, f"peak RSS grew by {grown_mib} MiB"
    finally:
        if forward is not None:
            await forward.close()
        await transport.close()
        server.kill()
        server.wait()
