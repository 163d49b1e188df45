"""The simulated Spark over real SSH: asyncssh and OpenSSH clients, forwards.

Its shell is a real `sh` running the product's own scripts over the device's root:
what is checked here is that they read what a Spark would show them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat

import asyncssh
import pytest

from sparktui.core import hostscript
from sparktui.core.aio import within
from sparktui.core.hoststat import HostStatBlockParser
from sparktui.sim.ssh.server import SimServer, start_sim
from tests.infra.common import require


@pytest.fixture
async def sim():
    server = await start_sim(seed=11)
    yield server
    await server.close()


@pytest.fixture
async def conn(sim: SimServer, tmp_path):
    key, known_hosts = sim.write_client_files(str(tmp_path))
    async with asyncssh.connect(sim.host, sim.port, username="anyone", client_keys=[key],
                                known_hosts=known_hosts, agent_path=None,
                                config=None) as connection:
        yield connection


async def test_query_with_strict_known_hosts(conn):
    result = await conn.run("nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader")
    assert result.exit_status == 0
    assert result.stdout == "0, NVIDIA GB10, [N/A]\n"


async def test_client_files(sim: SimServer, tmp_path):
    key, known_hosts = sim.write_client_files(str(tmp_path / "c"))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    line = open(known_hosts).read().strip()
    assert re.fullmatch(rf"\[127\.0\.0\.1\]:{sim.port} ssh-ed25519 \S+", line)


def _running(marker: str) -> bool:
    """A process of this machine whose command line holds `marker` (the sim shares it)."""
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and marker.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                return True
    return False


async def _gone(marker: str) -> bool:
    for _ in range(100):
        if not _running(marker):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_command_ends_when_its_channel_closes(conn):
    proc = await conn.create_process("sleep 61.25")
    await within(_until(lambda: _running("61.25")), 5)
    proc.close()  # as sshd does: the channel goes, so does what it started
    await proc.wait_closed()
    assert await _gone("61.25"), "the command kept running"


async def test_a_command_ends_when_the_connection_drops(sim: SimServer, tmp_path):
    key, known_hosts = sim.write_client_files(str(tmp_path))
    connection = await asyncssh.connect(sim.host, sim.port, username="u", client_keys=[key],
                                        known_hosts=known_hosts, agent_path=None, config=None)
    proc = await connection.create_process(hostscript.hoststat_command(50))
    assert (await within(proc.stdout.readline(), 5)).startswith(hostscript.BLOCK_BEGIN)
    await connection.create_process("sleep 62.25")
    await within(_until(lambda: _running("62.25")), 5)
    connection.abort()  # no goodbye, as when a laptop sleeps
    assert await _gone("62.25")


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.05)


async def test_signal_stops_a_stream(conn):
    proc = await conn.create_process("sleep 63.25")
    await within(_until(lambda: _running("63.25")), 5)
    proc.send_signal("TERM")
    result = await within(proc.wait(), 5)
    assert result.exit_signal is not None and result.exit_signal[0] == "TERM"
    assert await _gone("63.25")


async def test_a_terminal_when_asked_for_one(conn):
    result = await within(conn.run("test -t 0 && stty size", term_type="xterm",
                                   term_size=(100, 30)), 5)
    assert result.stdout.replace("\r", "") == "30 100\n" and result.exit_status == 0


async def test_files_under_the_root_and_the_login_environment(conn):
    meminfo = await conn.run('cat "$SPARKTUI_ROOT/proc/meminfo"')
    assert meminfo.exit_status == 0
    assert re.search(r"^MemTotal:\s+127\d{6} kB$", meminfo.stdout, re.M)
    assert re.search(r"^MemAvailable:\s+\d+ kB$", meminfo.stdout, re.M)
    home = await conn.run('echo "$HOME"; hostname; uname -srm')
    assert home.stdout.split("\n")[0].endswith("/home/spark")
    assert home.stdout.split("\n")[1:3] == ["spark-demo", "Linux 6.17.0-1029-nvidia aarch64"]
    missing = await conn.run("no-such-tool-here")
    assert missing.exit_status == 127


async def test_hoststat_stream_over_ssh(conn):
    # the product's script and parser: every figure a Spark's block carries is there
    proc = await conn.create_process(hostscript.hoststat_command(300))
    parser, blocks = HostStatBlockParser(), []
    while len(blocks) < 2:
        line = await within(proc.stdout.readline(), 5)
        if (block := parser.feed_line(line.rstrip("\n"))) is not None:
            blocks.append(block)
    proc.close()
    first, second = blocks
    assert len(first.cores) == 20 and first.thermal and first.load is not None
    assert first.mem.total is not None and first.mem.available is not None
    assert first.boot_id and first.pressure is not None and first.buddy
    assert first.rails and first.prochot is False
    assert second.t > first.t


async def test_gpuprocs_loop_over_ssh_obeys_its_control_lines(sim: SimServer, conn):
    from sparktui.core.gpuprocs import GpuProcsBlockParser, control_line, gpuprocs_command

    sim.device.set_load(0.5)  # a compute process: the loop's first block comes at once
    proc = await conn.create_process(gpuprocs_command(60_000))
    parser = GpuProcsBlockParser()

    async def next_block():
        while True:
            block = parser.feed_line((await within(proc.stdout.readline(), 5))
                                     .rstrip("\n"))
            if block is not None:
                return block

    first = await next_block()  # at once
    proc.stdin.write(control_line(300))  # a 60 s period: only the control line brings more
    await next_block()
    await next_block()  # 300 ms later, by itself
    proc.close()
    assert first.ok
    for app in first.apps:  # the simulated compute processes, with what /proc would say
        detail = first.details[app.pid]
        assert detail.user and detail.cmdline and detail.cgroup_path


async def test_many_concurrent_channels(sim: SimServer, conn):
    results = await asyncio.gather(*(conn.run(f"echo {i}") for i in range(30)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(30)]
    streams = [await conn.create_process("nvidia-smi --query-gpu=index --format=csv -lms 50")
               for _ in range(5)]
    for p in streams:
        assert await within(p.stdout.readline(), 5) == "index\n"
        p.close()


async def test_interactive_shell(conn):
    proc = await conn.create_process(stdin=asyncssh.PIPE)  # no command: a shell request
    proc.stdin.write("hostname; exit 3\n")
    result = await within(proc.wait(), 5)
    assert "spark-demo\n" in result.stdout
    assert result.exit_status == 3


async def test_closing_while_commands_start_leaves_no_files(tmp_path):
    """Each command refreshes the device's files in a thread first: a close meanwhile waits
    for it, or a thread writing on would leave the tree behind (in /dev/shm)."""
    sim = await start_sim(seed=12)
    key, known_hosts = sim.write_client_files(str(tmp_path))
    conn = await asyncssh.connect(sim.host, sim.port, username="u", client_keys=[key],
                                  known_hosts=known_hosts, agent_path=None, config=None)
    started = asyncio.Semaphore(0)

    async def keep_starting() -> None:
        with contextlib.suppress(Exception):  # until the server goes
            while True:
                await conn.run("true")
                started.release()

    starters = [asyncio.ensure_future(keep_starting()) for _ in range(4)]
    for _ in range(8):  # commands are coming and going
        await within(started.acquire(), 10)
    await sim.close()
    await within(asyncio.gather(*starters), 10)
    conn.close()
    assert not os.path.exists(sim.root.path)


async def test_serves_from_a_loop_that_starts_tasks_eagerly(tmp_path):
    """Textual's loop (Python 3.12+) starts tasks eagerly, and the demo's server runs in it:
    with eager tasks asyncssh's server never answered a public-key request."""
    loop = asyncio.get_running_loop()
    eager = getattr(asyncio, "eager_task_factory", None)  # 3.12+; before, tasks are lazy
    loop.set_task_factory(eager)
    sim = None
    try:
        sim = await start_sim(seed=13)
        key, known_hosts = sim.write_client_files(str(tmp_path))
        conn = await within(asyncssh.connect(  # without the fix: no answer, for ever
            sim.host, sim.port, username="spark", client_keys=[key], known_hosts=known_hosts,
            agent_path=None, config=None), 10)
        async with conn:
            result = await within(conn.run("echo served"), 10)
        assert result.stdout == "served\n"
    finally:
        loop.set_task_factory(None)
        if sim is not None:
            await sim.close()


async def test_wrong_key_and_passwords_are_refused(sim: SimServer, tmp_path):
    _, known_hosts = sim.write_client_files(str(tmp_path))
    other = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(sim.host, sim.port, username="x", client_keys=[other],
                               known_hosts=known_hosts, agent_path=None, config=None)
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(sim.host, sim.port, username="x", password="x", client_keys=None,
                               known_hosts=known_hosts, agent_path=None, config=None)


async def test_openssh_client(sim: SimServer, tmp_path):
    require(shutil.which("ssh") is not None, "the OpenSSH client (apt-get install openssh-client)")
    key, known_hosts = sim.write_client_files(str(tmp_path))
    assert key is not None
    proc = await asyncio.create_subprocess_exec(
        "ssh", "-F", "/dev/null", "-i", key, "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(sim.port),
        "127.0.0.1", "nvidia-smi", "--query-gpu=index,name,memory.total,memory.used",
        "--format=csv", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await within(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    assert out.decode() == ("index, name, memory.total [MiB], memory.used [MiB]\n"
                            "0, NVIDIA GB10, [N/A], [N/A]\n")


async def _echo_server():
    async def echo(reader, writer):
        writer.write(b"echo:" + await reader.readline())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _roundtrip(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    data = await within(reader.read(), 5)
    writer.close()
    return data


async def test_local_port_forward(sim: SimServer, conn):
    server = await _echo_server()
    port = server.sockets[0].getsockname()[1]
    try:
        listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", port)
        assert await _roundtrip(listener.get_port()) == b"echo:ping\n"
        listener.close()
        # a port on the "device" mapped onto a local service
        sim.map_port(11434, "127.0.0.1", port)
        listener = await conn.forward_local_port("127.0.0.1", 0, "localhost", 11434)
        assert await _roundtrip(listener.get_port()) == b"echo:ping\n"
        listener.close()
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_connection("192.0.2.1", 80)  # not loopback: refused
    finally:
        server.close()
        await server.wait_closed()


async def test_unix_socket_forward(conn, tmp_path):
    path = str(tmp_path / "app.sock")

    async def echo(reader, writer):
        writer.write(b"unix:" + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(echo, path)
    try:
        reader, writer = await conn.open_unix_connection(path)
        writer.write(b"hi\n")
        assert await within(reader.read(), 5) == b"unix:hi\n"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
