"""Device links over a real OpenSSH sshd: config aliases, host keys, auth, reconnects."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from sparktui.core.device import DeviceSpec, FailureKind, LinkState
from sparktui.core.nvsmi import NvsmiFailureKind, classify_failure
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.link import DeviceLink
from sparktui.transport.base import ConnectionLost
from tests.infra import ClientSetup, SshdServer, generate_key

pytestmark = pytest.mark.sshd

FAST = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=2.0)
GPU_STREAM = ("nvidia-smi --query-gpu=index,utilization.gpu,power.draw "
              "--format=csv,noheader,nounits -lms 200")


async def wait_state(link: DeviceLink, *states: LinkState, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while link.status.state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"{link.name} stayed {link.status.describe()}, wanted {states}")
        await asyncio.sleep(0.02)


def remote_streams(server: SshdServer) -> list[int]:
    """PIDs of this sshd's stand-in nvidia-smi loops (other tests may run their own)."""
    pids = []
    for pid, _ in server.sessions():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"tests.infra.fake_nvidia_smi" in argv and b"-lms" in argv:
            pids.append(pid)
    return pids


async def test_connects_through_an_ssh_config_alias(ssh_client: ClientSetup):
    link = make_link(DeviceSpec.parse("spark-test"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
        result = await link.run("echo hello; echo oops >&2; exit 3")
        assert (result.exit_status, result.stdout, result.stderr) == (3, "hello\n", "oops\n")
        assert link.status.describe() == "connected"
    finally:
        await link.close()
    assert link.status.state is LinkState.CLOSED


async def test_stream_survives_sshd_restart_without_duplicates(ssh_client, sshd: SshdServer):
    link = make_link(DeviceSpec.parse("spark-test"), FAST)
    arrivals: list[float] = []
    issued = 0

    async def owner() -> None:
        nonlocal issued
        async for transport in link.sessions():
            try:
                issued += 1
                stream = await transport.stream(GPU_STREAM)
                async for line in stream:
                    if line.startswith("0, "):
                        arrivals.append(time.monotonic())
            except ConnectionLost:
                continue

    link.start()
    task = asyncio.create_task(owner())
    try:
        await wait_state(link, LinkState.CONNECTED)
        while len(arrivals) < 3:
            await asyncio.sleep(0.05)
        assert len(remote_streams(sshd)) == 1

        sshd.stop(kill_sessions=True)  # the device goes away: listener and sessions
        await wait_state(link, LinkState.RECONNECTING, timeout=5)
        await asyncio.sleep(1.0)
        sshd.restart()
        back = time.monotonic()
        before = len(arrivals)
        while len(arrivals) == before:
            assert time.monotonic() - back < 10, link.status.describe()
            await asyncio.sleep(0.05)
        resumed_after = arrivals[before] - back
        assert resumed_after < 5, f"stream resumed only after {resumed_after:.1f} s"
        await asyncio.sleep(0.6)
        assert issued == 2, "the stream was issued once per connection"
        assert len(remote_streams(sshd)) == 1, "no duplicate streams on the device"
    finally:
        task.cancel()
        await link.close()
    deadline = time.monotonic() + 5
    while remote_streams(sshd) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert remote_streams(sshd) == [], "closing the link leaves no process on the device"


async def test_silent_dead_peer_is_noticed_and_recovered(ssh_home: ClientSetup, netns_sshd,
                                                         monkeypatch):
    server = netns_sshd()
    ssh_home.add_server("spark-ns", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    link = make_link(DeviceSpec.parse("spark-ns"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
        server.netns.link_down()  # no RST, no FIN: packets just vanish
        lost_at = time.monotonic()
        await wait_state(link, LinkState.RECONNECTING, LinkState.FAILED, timeout=10)
        noticed = time.monotonic() - lost_at
        # keepalive interval 1 s x 2 unanswered, plus one interval of slack
        assert noticed < 1.0 * (2 + 2), f"dead peer noticed after {noticed:.1f} s"
        server.netns.link_up()
        await wait_state(link, LinkState.CONNECTED, timeout=20)
        assert (await link.run("echo back")).stdout == "back\n"
    finally:
        await link.close()


async def test_proxy_jump_through_a_second_sshd(ssh_home: ClientSetup, sshd_factory, monkeypatch):
    jump, target = sshd_factory(), sshd_factory()
    ssh_home.add_server("jump", jump)
    ssh_home.add_server("target", target, ProxyJump="jump")
    monkeypatch.setenv("HOME", ssh_home.home)
    link = make_link(DeviceSpec.parse("target"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
        result = await link.run("echo $SSH_CONNECTION")
        # the target sees the connection coming from the jump host's side (loopback)
        assert result.ok and result.stdout.split()[2] == "127.0.0.1"
        assert result.stdout.split()[3] == str(target.port)
    finally:
        await link.close()


async def test_agent_authentication(ssh_home: ClientSetup, sshd_factory, ssh_agent, monkeypatch):
    agent_key = os.path.join(ssh_home.home, "agent_key")
    server = sshd_factory(authorize=False)
    server.authorize(generate_key(agent_key, "agent-only"))
    ssh_agent.add(agent_key)
    ssh_home.add_server("spark-agent", server, IdentityFile=None, IdentitiesOnly=None)
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.setenv("SSH_AUTH_SOCK", ssh_agent.sock)
    os.unlink(ssh_home.key_path)  # only the agent holds a usable key
    link = make_link(DeviceSpec.parse("spark-agent"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
    finally:
        await link.close()


async def test_unknown_host_key_is_shown_and_added_when_accepted(ssh_client: ClientSetup,
                                                                 sshd: SshdServer):
    ssh_client.clear_known_hosts()
    offers = []

    async def accept(offer) -> bool:
        offers.append(offer)
        return True

    link = make_link(DeviceSpec.parse("spark-test"), FAST, host_key_prompt=accept)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
    finally:
        await link.close()
    assert [o.fingerprint for o in offers] == [sshd.host_key_fingerprint]
    assert offers[0].port == sshd.port
    with open(ssh_client.known_hosts_path) as handle:
        assert sshd.host_pubkey_line.split()[1] in handle.read()

    async def must_not_ask(offer) -> bool:
        raise AssertionError("asked again for a key already accepted")

    again = make_link(DeviceSpec.parse("spark-test"), FAST, host_key_prompt=must_not_ask)
    again.start()
    try:
        await wait_state(again, LinkState.CONNECTED)
    finally:
        await again.close()


async def test_unknown_host_key_declined_fails_with_fingerprint(ssh_client, sshd: SshdServer):
    ssh_client.clear_known_hosts()

    async def decline(offer) -> bool:
        return False

    link = make_link(DeviceSpec.parse("spark-test"), FAST, host_key_prompt=decline)
    link.start()
    try:
        await wait_state(link, LinkState.FAILED)
        assert link.status.failure is FailureKind.HOST_KEY_UNKNOWN
        assert sshd.host_key_fingerprint in link.status.describe()
    finally:
        await link.close()


async def test_changed_host_key_is_refused_loudly(ssh_client: ClientSetup, sshd: SshdServer,
                                                  tmp_path):
    other = generate_key(str(tmp_path / "impostor"), "impostor").split()
    ssh_client.clear_known_hosts()
    ssh_client.add_known_host(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}")

    async def must_not_ask(offer) -> bool:
        raise AssertionError("a changed key must never be offered for acceptance")

    link = make_link(DeviceSpec.parse("spark-test"), FAST, host_key_prompt=must_not_ask)
    link.start()
    try:
        await wait_state(link, LinkState.FAILED)
        status = link.status
        assert status.failure is FailureKind.HOST_KEY_CHANGED
        assert "HOST KEY CHANGED" in status.describe()
        assert "ssh-keygen -R" in status.describe()
        await asyncio.sleep(1.5)  # never retried behind the user's back
        assert link.status.state is LinkState.FAILED and link.status.attempt == 1
    finally:
        await link.close()


async def test_wrong_key_gives_an_authentication_failure(ssh_client, sshd_factory, monkeypatch):
    server = sshd_factory(authorize=False)
    ssh_client.add_server("spark-nokey", server)
    link = make_link(DeviceSpec.parse("spark-nokey"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.FAILED)
        assert link.status.failure is FailureKind.AUTH
        assert "authentication failed" in link.status.describe()
        assert "authorized_keys" in link.status.describe()
    finally:
        await link.close()


async def test_unreachable_device_retries_with_backoff(ssh_home: ClientSetup, sshd_factory,
                                                       monkeypatch):
    server = sshd_factory()
    ssh_home.add_server("spark-down", server)
    server.stop()
    monkeypatch.setenv("HOME", ssh_home.home)
    link = make_link(DeviceSpec.parse("spark-down"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.RECONNECTING)
        while link.status.next_retry_at is None:
            await asyncio.sleep(0.01)
        assert link.status.failure is FailureKind.UNREACHABLE
        assert "refused" in link.status.describe()
        assert "next try in" in link.status.describe() or link.status.next_retry_in() < 1
        while link.status.attempt < 3:
            await asyncio.sleep(0.05)
        server.restart()  # same port, same host key
        await wait_state(link, LinkState.CONNECTED, timeout=10)
    finally:
        await link.close()


async def test_missing_nvidia_smi_gives_a_clear_message(ssh_home, sshd_factory, monkeypatch):
    server = sshd_factory(nvidia_smi=False)
    ssh_home.add_server("spark-nogpu", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    link = make_link(DeviceSpec.parse("spark-nogpu"), FAST)
    link.start()
    try:
        await wait_state(link, LinkState.CONNECTED)
        result = await link.run("nvidia-smi --query-gpu=index --format=csv,noheader")
        failure = classify_failure(result.stdout, result.stderr, result.exit_status)
        assert failure is not None and failure.kind is NvsmiFailureKind.NOT_FOUND
        assert "nvidia-smi" in failure.message
    finally:
        await link.close()


async def test_aes_gcm_is_preferred_unless_the_ssh_config_names_ciphers(
        ssh_client: ClientSetup, sshd: SshdServer):
    """asyncssh's chacha20-poly1305 costs 6x AES-GCM's CPU per packet (PREFERRED_CIPHERS);
    a user's `Ciphers` line still decides."""
    from sparktui.transport.ssh import SSHOptions, connect_ssh

    transport = await connect_ssh(DeviceSpec.parse("spark-test"), SSHOptions())
    try:
        assert transport.connection.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
        assert transport.connection.get_extra_info("recv_cipher") == "aes128-gcm@openssh.com"
    finally:
        await transport.close()
    ssh_client.add_server("spark-ctr", sshd, Ciphers="aes256-ctr")
    transport = await connect_ssh(DeviceSpec.parse("spark-ctr"), SSHOptions())
    try:
        assert transport.connection.get_extra_info("send_cipher") == "aes256-ctr"
    finally:
        await transport.close()
