"""Tunnels over a real OpenSSH sshd: fetches through them, counters, reconnects, port clashes.

The sshd runs on this machine, so "localhost:PORT on the device" is a server of
this test process: an http.server on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sparktui.core.device import DeviceSpec, LinkState
from sparktui.services.config import Settings
from sparktui.services.devices import Fleet, make_link
from sparktui.services.link import DeviceLink
from sparktui.services.tunnels import (
    CLIENT_WAIT_S,
    Tunnel,
    TunnelManager,
    TunnelSpec,
    TunnelSpecError,
    TunnelState,
)
from tests.infra import SshdServer

pytestmark = pytest.mark.sshd

FAST = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=2.0)
BODY = b"spark " * 4000  # 24 000 bytes: enough to see the counters move


# -- helpers shared with the other tunnel tests --------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@pytest.fixture
def http_port() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (a thread) answering every GET with BODY."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_bindable(port: int) -> bool:
    """Whether a new server could listen on the port (SO_REUSEADDR, as servers set it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def fetch(url: str, timeout: float = 10.0) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        return await client.get(url)


async def wait_tunnel(tunnel: Tunnel, *states: TunnelState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while tunnel.status.state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"{tunnel.name} stayed {tunnel.status.describe()}, "
                                 f"wanted {[s.value for s in states]}")
        await asyncio.sleep(0.02)


async def wait_link(link: DeviceLink, state: LinkState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while link.status.state is not state:
        assert time.monotonic() < deadline, link.status.describe()
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def manager_for(name: str, **kwargs):
    link = make_link(DeviceSpec.parse(name), FAST)
    link.start()
    manager = TunnelManager(Fleet([link]), **kwargs)
    try:
        yield manager, link
    finally:
        await manager.close()
        await link.close()


# -- the tests ------------------------------------------------------------------------------------
async def test_fetch_counts_and_survives_an_sshd_restart(ssh_client, sshd: SshdServer,
                                                         http_port: int, record_property):
    async with manager_for("spark-test") as (manager, _link):
        result = await manager.add(TunnelSpec(device="spark-test", name="web",
                                              remote_port=http_port, preset="dashboard"),
                                   save=False)
        tunnel = result.tunnel
        assert tunnel.spec.local_port is not None
        await wait_tunnel(tunnel, TunnelState.UP)

        response = await fetch(tunnel.url)
        assert response.status_code == 200 and response.content == BODY
        assert tunnel.traffic.bytes_in >= len(BODY)  # from the device
        assert tunnel.traffic.bytes_out > 0  # the request
        assert tunnel.traffic.total_connections == 1
        probe = await tunnel.check()
        assert probe.answers and probe.detail == "HTTP 200"

        sshd.stop(kill_sessions=True)  # the device goes away: listener and sessions
        await wait_tunnel(tunnel, TunnelState.WAITING, timeout=5)
        assert port_is_bindable(tunnel.spec.local_port) is False, "still listening meanwhile"
        # a client arriving now waits (up to CLIENT_WAIT_S) for the device to come back
        pending = asyncio.create_task(fetch(tunnel.url, timeout=CLIENT_WAIT_S + 5))
        await asyncio.sleep(1.0)
        sshd.restart()
        back = time.monotonic()
        await wait_tunnel(tunnel, TunnelState.UP, timeout=10)
        up_after = time.monotonic() - back
        assert (await pending).content == BODY, "the waiting client was served"
        answered_after = time.monotonic() - back
        response = await fetch(tunnel.url)
        assert response.content == BODY
        record_property("tunnel_up_after_sshd_back_s", round(up_after, 3))
        record_property("tunnel_answering_after_sshd_back_s", round(answered_after, 3))
        print(f"\ntunnel up {up_after:.2f} s and answering {answered_after:.2f} s "
              "after sshd came back")
        assert answered_after < 5
        assert tunnel.traffic.total_connections == 3
        assert tunnel.traffic.bytes_in >= 3 * len(BODY)
        port = tunnel.spec.local_port
    assert port_is_bindable(port), "closing the manager frees the local port"


async def test_local_port_clash_is_reported_or_moved_when_automatic(ssh_client, http_port):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        async with manager_for("spark-test") as (manager, _link):
            with pytest.raises(TunnelSpecError) as raised:
                await manager.add(TunnelSpec(device="spark-test", name="fixed",
                                             remote_port=http_port, local_port=busy),
                                  save=False)
            assert f"local port 127.0.0.1:{busy} is already in use" in str(raised.value)

            # automatic: the same port as the remote one, taken here, so the next free one
            result = await manager.add(TunnelSpec(device="spark-test", name="auto",
                                                  remote_port=busy), save=False)
            chosen = result.tunnel.spec.local_port
            assert chosen is not None and chosen != busy
            assert result.notes == [f"local port {busy} is taken: auto uses {chosen} instead"]


async def test_a_saved_tunnel_whose_port_was_taken_fails_with_the_reason(
        ssh_client, http_port, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(f'[[tunnels]]\ndevice = "spark-test"\nname = "web"\n'
                          f"remote_port = {http_port}\nlocal_port = {busy}\n")
        async with manager_for("spark-test", config_path=config) as (manager, _link):
            assert await manager.load() == []
            tunnel = manager.tunnels[0]
            await wait_tunnel(tunnel, TunnelState.FAILED)
            assert tunnel.status.describe().startswith(
                f"failed: local port 127.0.0.1:{busy} is in use by another program")
            assert tunnel.spec.local_port == busy, "not silently moved"


async def test_reverse_forward_reaches_a_service_here(ssh_client, http_port):
    device_port = free_port()
    async with manager_for("spark-test") as (manager, _link):
        result = await manager.add(TunnelSpec(device="spark-test", name="rev",
                                              remote_port=device_port, local_port=http_port,
                                              reverse=True), save=False)
        tunnel = result.tunnel
        await wait_tunnel(tunnel, TunnelState.UP)
        assert tunnel.device_listen == ("localhost", device_port)
        # the device (sshd, on this machine) listens on its loopback port
        response = await fetch(f"http://127.0.0.1:{device_port}/")
        assert response.content == BODY
        assert tunnel.traffic.bytes_out >= len(BODY)  # to the device
        assert (await tunnel.check()).answers
        await manager.stop(tunnel)
        await asyncio.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            await fetch(f"http://127.0.0.1:{device_port}/", timeout=3)
