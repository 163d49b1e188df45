"""The SSH test infrastructure itself, checked with the real OpenSSH client and asyncssh."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time

import asyncssh
import pytest

from sparktui.core.aio import within
from tests.infra import ClientSetup, SshdServer, generate_key, require
from tests.infra.common import alive

pytestmark = pytest.mark.sshd


# ------------------------------------------------------------------ policy


def test_require_skips_outside_ci_and_fails_under_ci(monkeypatch):
    require(True, "present")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="thing missing"):
        require(False, "thing missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="thing missing"):
        require(False, "thing missing")


# -------------------------------------------------------- basic connections


def test_openssh_client_via_config_alias(ssh_client: ClientSetup, sshd: SshdServer):
    r = ssh_client.ssh("spark-test", "echo hi; whoami")
    assert r.returncode == 0, r.stderr + sshd.log_text()
    assert r.stdout.split() == ["hi", sshd.user]
    assert sshd.host_key_fingerprint.startswith("SHA256:")


async def test_asyncssh_uses_home_config_and_strict_known_hosts(
    ssh_client: ClientSetup, sshd: SshdServer
):
    async with asyncssh.connect("spark-test") as conn:
        r = await conn.run("echo hi", check=True)
        assert r.stdout == "hi\n"
        key = conn.get_server_host_key()
        assert key.get_fingerprint("sha256") == sshd.host_key_fingerprint

    ssh_client.clear_known_hosts()  # an unknown host key must be refused
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect("spark-test"):
            pass


async def test_session_environment_from_setenv(sshd_factory, ssh_home, monkeypatch, fake_gpu):
    server = sshd_factory(env={"SPARKTUI_FAKE_GPU": "busy", "SPACED": "a b"})
    ssh_home.add_server("s", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    fake_gpu("idle")
    async with asyncssh.connect("s") as conn:
        r = await conn.run(
            'echo "$SPARKTUI_FAKE_GPU|$SPACED|$PYTHONPATH"; cat "$SPARKTUI_FAKE_GPU_FILE";'
            ' echo "$PATH"',
            check=True,
        )
    lines = r.stdout.splitlines()
    assert lines[0] == f"busy|a b|{server.env['PYTHONPATH']}"
    assert lines[1] == "idle"
    assert server.bin_dir in lines[2].split(":")


# ------------------------------------------------------------ stand-in tools


async def test_standin_nvidia_smi_on_path(ssh_conn, sshd: SshdServer, fake_gpu):
    r = await ssh_conn.run("command -v nvidia-smi", check=True)
    assert r.stdout.strip() == os.path.join(sshd.bin_dir, "nvidia-smi")

    fake_gpu("gb10")
    r = await ssh_conn.run("nvidia-smi")
    assert r.exit_status == 0, r.stderr
    assert "No module named" not in r.stderr, r.stderr
    # the scenario file is re-read per call: switching needs no sshd restart
    fake_gpu("driver-failure")
    r = await ssh_conn.run("nvidia-smi")
    assert r.exit_status == 9, (r.stdout, r.stderr)


async def test_nvidia_smi_can_be_left_off_path(sshd_factory, ssh_home, monkeypatch):
    server = sshd_factory(nvidia_smi=False)
    ssh_home.add_server("bare", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    async with asyncssh.connect("bare") as conn:
        r = await conn.run("command -v nvidia-smi")
        assert r.exit_status == 1 and r.stdout == ""
        r = await conn.run("nvidia-smi")
        assert r.exit_status == 127


# ------------------------------------------------------- lifecycle control


async def test_kill_sessions_drops_live_connection(ssh_conn, sshd: SshdServer):
    proc = await ssh_conn.create_process("sleep 60")
    await asyncio.sleep(0.2)
    assert sshd.sessions(), "expected per-connection sshd processes"
    sshd.kill_sessions()
    await within(ssh_conn.wait_closed(), timeout=5)
    with pytest.raises((asyncssh.Error, OSError)):
        await within(ssh_conn.run("echo hi"), timeout=5)
    proc.close()
    assert sshd.is_running and not sshd.sessions()
    async with asyncssh.connect("spark-test") as conn:  # the listener is still there
        assert (await conn.run("echo back", check=True)).stdout == "back\n"


async def test_stop_keeps_sessions_and_restart_reuses_port_and_key(
    ssh_client: ClientSetup, sshd: SshdServer
):
    port, key = sshd.port, sshd.host_pubkey_line
    async with asyncssh.connect("spark-test") as live:
        sshd.stop()
        assert not sshd.is_running
        with pytest.raises(OSError):
            socket.create_connection((sshd.address, port), timeout=2).close()
        # like a real sshd: stopping the listener leaves open sessions running
        assert (await live.run("echo still", check=True)).stdout == "still\n"

        sshd.restart()
        assert sshd.is_running and sshd.port == port and sshd.host_pubkey_line == key
        async with asyncssh.connect("spark-test") as conn:  # strict known_hosts: same key
            assert (await conn.run("echo again", check=True)).stdout == "again\n"
        remembered = sshd.sessions()
        assert remembered
        sshd.kill_sessions()  # reaches the orphaned session of the first listener too
        await within(live.wait_closed(), timeout=5)
        assert not any(alive(p) for p in remembered)


def test_close_reaps_every_process(sshd_factory, ssh_home):
    server = sshd_factory()
    ssh_home.add_server("s", server)
    proc = subprocess.Popen(
        ["ssh", *ssh_home.openssh_args(), "s", "sleep 60"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if any("sleep" in _cmdline(p[0]) for p in server.sessions()):
                break
            time.sleep(0.02)
        procs = server.sessions()
        assert any("sleep" in _cmdline(p[0]) for p in procs)
        listener = server.pid
        server.close()
        assert not os.path.exists(server.tmp_dir)
        assert not any(alive(p) for p in procs)
        assert not os.path.exists(f"/proc/{listener}") or _state(listener) == "Z"
        assert proc.wait(timeout=10) != 0  # the client saw its session die
    finally:
        proc.kill()
        proc.wait()


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


# ------------------------------------------------------------- ProxyJump


async def test_proxyjump_through_second_sshd(sshd_factory, ssh_home, monkeypatch):
    jump = sshd_factory()
    target = sshd_factory(env={"WHO": "target"})
    ssh_home.add_server("jump", jump)
    ssh_home.add_server("target", target, ProxyJump="jump")

    r = ssh_home.ssh("target", 'echo "$WHO"')
    assert r.returncode == 0, r.stderr + jump.log_text()
    assert r.stdout == "target\n"
    assert "Accepted publickey" in jump.log_text()

    monkeypatch.setenv("HOME", ssh_home.home)  # asyncssh honours ProxyJump too
    async with asyncssh.connect("target") as conn:
        assert (await conn.run('echo "$WHO"', check=True)).stdout == "target\n"

    jump.stop()  # it really goes through the jump host
    assert ssh_home.ssh("target", "true").returncode == 255


# ---------------------------------------------------------------- agent


async def test_agent_auth_with_key_only_in_agent(
    sshd_factory, ssh_home, ssh_agent, tmp_path, monkeypatch
):
    server = sshd_factory(authorize=False)  # the home's file key is NOT accepted
    agent_key = str(tmp_path / "agent_key")
    server.authorize(generate_key(agent_key, "agent-only"))
    ssh_agent.add(agent_key)
    os.unlink(agent_key)  # now it lives only in the agent
    assert "agent-only" in ssh_agent.list_keys()
    ssh_home.add_server("via-agent", server, IdentityFile=None, IdentitiesOnly=None)

    r = ssh_home.ssh("via-agent", "echo agent")
    assert r.returncode != 0  # without the agent: refused
    r = ssh_home.ssh("via-agent", "echo agent", env=ssh_agent.env)
    assert r.returncode == 0, r.stderr + server.log_text()

    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.setenv("SSH_AUTH_SOCK", ssh_agent.sock)
    async with asyncssh.connect("via-agent") as conn:
        assert (await conn.run("echo agent", check=True)).stdout == "agent\n"


# ------------------------------------------------------ silent dead peer


@pytest.mark.netns
async def test_netns_peer_goes_silent_and_comes_back(netns_sshd, ssh_home, monkeypatch):
    server = netns_sshd()
    peer = server.netns
    ssh_home.add_server("spark-ns", server)
    monkeypatch.setenv("HOME", ssh_home.home)

    conn = await within(asyncssh.connect("spark-ns"), timeout=10)
    try:
        assert (await conn.run("echo up", check=True)).stdout == "up\n"

        peer.link_down()
        assert not peer.is_link_up
        with pytest.raises(TimeoutError):  # no RST, no FIN: it just hangs
            await within(conn.run("echo lost"), timeout=1.0)
        with pytest.raises(TimeoutError):  # new connections hang too
            await within(asyncssh.connect("spark-ns"), timeout=1.0)

        peer.link_up()
        async with asyncssh.connect("spark-ns") as conn2:
            assert (await conn2.run("echo again", check=True)).stdout == "again\n"
        # the old TCP connection recovers by retransmission once the wire is back
        r = await within(conn.run("echo resumed", check=True), timeout=15)
        assert r.stdout == "resumed\n"
    finally:
        conn.abort()
