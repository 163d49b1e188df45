"""SSHTransport's port forwards, over the simulated Spark's SSH server on loopback.

No sshd is needed, so the fast suite runs these on every Python CI tries (3.11 to
3.13): what asyncio's servers wait for when closing changed in 3.12.
"""

from __future__ import annotations

import asyncio

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.sim.ssh.server import start_sim
from sparktui.transport.ssh import connect_ssh
from sparktui.transport.ssh_types import SSHOptions


async def test_closing_a_port_forward_does_not_wait_for_its_clients(tmp_path):
    sim = await start_sim(seed=5)
    service = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    key, known_hosts = sim.write_client_files(str(tmp_path))
    spec = DeviceSpec(name="sim", host=sim.host, port=sim.port, user="spark", identity_file=key)
    transport = await connect_ssh(spec, SSHOptions(known_hosts=known_hosts,
                                                   use_ssh_config=False))
    try:
        forward = await transport.forward_local_port(
            "127.0.0.1", 0, "127.0.0.1", service.sockets[0].getsockname()[1])
        assert isinstance(forward.listen, tuple)
        # a client that keeps its connection, as a browser's keep-alive does
        _, writer = await asyncio.open_connection(*forward.listen)
        await within(forward.close(), 5)  # on Python 3.12+ this waited for the client
        with pytest.raises(OSError):
            await asyncio.open_connection(*forward.listen)  # the port is closed
        writer.close()
    finally:
        await transport.close()
        service.close()
        await sim.close()
