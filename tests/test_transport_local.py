"""The local transport: the same interface as SSH, for sparktui running on the Spark itself."""

from __future__ import annotations

import asyncio
import os

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec, LinkState
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.transport.local import LocalTransport


async def test_run_collects_output_and_status():
    transport = LocalTransport()
    result = await transport.run("echo out; echo err >&2; exit 4")
    assert (result.exit_status, result.stdout, result.stderr) == (4, "out\n", "err\n")
    result = await transport.run("cat", input="fed\n")
    assert result.stdout == "fed\n"
    result = await transport.run("sleep 5", timeout=0.2)
    assert result.exit_status == -1 and "timed out" in result.stderr
    await transport.close()


async def test_stream_yields_lines_as_they_come_and_close_kills_the_command(tmp_path):
    transport = LocalTransport()
    pidfile = tmp_path / "pid"
    stream = await transport.stream(f"echo $$ > {pidfile}; while :; do echo tick; sleep 0.05; done")
    lines = []
    async for line in stream:
        lines.append(line)
        if len(lines) == 3:
            break
    await stream.close()
    pid = int(pidfile.read_text())
    await asyncio.sleep(0.1)
    assert lines == ["tick"] * 3
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    await transport.close()


async def test_stream_reports_exit_status_and_a_final_partial_line():
    transport = LocalTransport()
    stream = await transport.stream("printf 'a\\nb'; echo bad >&2; exit 2")
    assert [line async for line in stream] == ["a", "b"]
    # stderr keeps its last lines (drained while the command runs), without the final newline
    assert stream.exit_status == 2 and stream.stderr == "bad"
    await transport.close()


async def test_port_and_unix_socket_forwards(tmp_path):
    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    unix_server = await asyncio.start_unix_server(echo, str(tmp_path / "up.sock"))
    transport = LocalTransport()
    forward = await transport.forward_local_port("127.0.0.1", 0, "127.0.0.1", port)
    reader, writer = await asyncio.open_connection(*forward.listen)
    writer.write(b"through tcp\n")
    assert await reader.readline() == b"through tcp\n"
    writer.close()
    path = str(tmp_path / "down.sock")
    await transport.forward_unix_socket(path, str(tmp_path / "up.sock"))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"through unix\n")
    assert await reader.readline() == b"through unix\n"
    writer.close()
    await transport.close()  # closes the forwards too
    assert not os.path.exists(path)
    server.close()
    unix_server.close()


async def test_local_link_connects_at_once():
    link = make_link(DeviceSpec.parse("local"), Settings())
    link.start()
    transport = await within(link.wait_connected(), 5)
    assert link.status.state is LinkState.CONNECTED
    assert (await transport.run("echo hi")).stdout == "hi\n"
    await link.close()
    assert link.status.state is LinkState.CLOSED
