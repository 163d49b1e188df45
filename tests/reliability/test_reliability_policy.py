"""Groups 6 and 8: errors in the right shape, and policies that hold at every entry point.

- a refused remote listen is a TransportError with the device's words, not AttributeError;
- an audit log that cannot be written never turns a successful kill into "kill failed";
- read-only refuses `sparktui forward -R`; reverse forwards from autostart are audited;
- chat.sqlite3, the audit log and the app log are 0600 in 0700 directories;
- a chat endpoint on a device is reached through a private UNIX socket, not a TCP port.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sparktui.core.device import DeviceSpec
from sparktui.services.audit import AuditLog
from sparktui.services.config import Settings
from sparktui.services.conversations import ConversationStore
from sparktui.services.devices import Fleet
from sparktui.services.endpoints import EndpointConnector, device_spec
from sparktui.services.telemetry import TelemetryService
from sparktui.services.tunnels import TunnelManager, TunnelState
from sparktui.transport.base import TransportError
from tests.infra import ClientSetup
from tests.test_tunnels_sshd import free_port, wait_tunnel
from tests.test_ui_shell import LocalConnector, link


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sshd
async def test_a_refused_remote_listen_says_why(ssh_client: ClientSetup) -> None:
    from sparktui.transport.ssh import connect_ssh

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    transport = await connect_ssh(DeviceSpec.parse("spark-test"))
    try:
        # raised AttributeError ('ChannelListenError' object has no attribute 'reason')
        with pytest.raises(TransportError, match=f"refused to listen on 127.0.0.1:{port}"):
            await transport.forward_remote_port("127.0.0.1", port, "127.0.0.1", 9)
    finally:
        await transport.close()
        taken.close()


def _unwritable_audit(tmp_path: Path) -> AuditLog:
    # a file where the directory should be: fails for root too (chmod would not)
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    return AuditLog(blocker / "audit.jsonl")


async def test_a_kill_that_worked_is_reported_as_sent_without_an_audit_log(tmp_path) -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    audit = _unwritable_audit(tmp_path)
    service = TelemetryService(device, Settings(), audit=audit)
    try:
        await device.wait_connected()
        result = await service.kill_process(victim.pid)  # raised NotADirectoryError before
        assert result.ok
        assert victim.wait(10) == -15
        assert audit.unwritten == 1 and "not written" in (audit.last_error or "")
    finally:
        victim.kill()
        await service.close()
        await device.close()


async def test_reverse_forwards_from_autostart_are_audited(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[tunnels]]\ndevice = "spark-01"\nname = "hook"\nreverse = true\n'
                      f"remote_port = {free_port()}\nlocal_port = {free_port()}\n"
                      "autostart = true\n", encoding="utf-8")
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    audit = AuditLog(tmp_path / "audit.jsonl")
    manager = TunnelManager(Fleet([device]), config_path=config, audit=audit)
    try:
        assert await manager.load() == []
        tunnel = manager.tunnels[0]
        await wait_tunnel(tunnel, TunnelState.UP)
        for _ in range(200):
            if audit.entries():
                break
            await asyncio.sleep(0.01)
        assert [e["action"] for e in audit.entries()] == ["tunnel.reverse.start"]
    finally:
        await manager.close()
        await device.close()


def test_cli_forward_reverse_is_refused_in_read_only_mode(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[settings]\nread_only = true\n", encoding="utf-8")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "sparktui", "forward", "--demo", "--config", str(config),
         "-R", f"{free_port()}:{free_port()}"],
        capture_output=True, text=True, timeout=90, env=env)
    assert done.returncode != 0
    assert "read-only mode" in done.stderr, done.stderr


async def test_private_files_are_0600_in_0700_directories(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(os, "umask", os.umask)  # restored by monkeypatch
    old = os.umask(0o022)
    try:
        store = ConversationStore(tmp_path / "data" / "chat.sqlite3")
        await store.open()
        await store.close()
        audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
        audit.record("spark", "test", "x", "ok")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "data" / "chat.sqlite3") == 0o600  # was 0644
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(tmp_path / "audit" / "audit.jsonl") == 0o600
    assert _mode(tmp_path / "audit") == 0o700


async def test_a_chat_endpoint_forward_is_a_private_unix_socket(tmp_path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"data": [{"id": "tiny"}]}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    connector = EndpointConnector(lambda name: device if name == "spark-01" else None)
    try:
        await device.wait_connected()
        endpoint = await connector.probe(device_spec("spark-01", port, host="127.0.0.1"))
        assert endpoint.error is None and endpoint.models == ("tiny",)
        route = connector._routes[endpoint.id]
        listen = route.forward.listen
        assert isinstance(listen, str), "a loopback TCP port any local user could use"
        assert _mode(Path(listen)) == 0o600 and _mode(Path(listen).parent) == 0o700
    finally:
        await connector.close()
        await device.close()
        server.close()
    assert not os.path.exists(listen)
