"""The tunnel manager over local devices (LocalTransport): rules that need no sshd."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sparktui.core.aio import within
from sparktui.core.device import FailureKind, LinkState
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.devices import Fleet
from sparktui.services.tunnel_specs import load_tunnels
from sparktui.services.tunnels import TunnelManager, TunnelSpec, TunnelSpecError, TunnelState
from tests.test_tunnels_sshd import (
    BODY,
    fetch,
    free_port,
    http_port,
    port_is_bindable,
    wait_tunnel,
)
from tests.test_ui_shell import FailingConnector, LocalConnector, link

__all__ = ["http_port"]  # the fixture, imported for its name


async def test_a_device_that_needs_the_user_closes_new_clients_at_once():
    failing = link("spark-x", FailingConnector(FailureKind.AUTH, "no key was accepted"))
    failing.start()
    manager = TunnelManager(Fleet([failing]))
    try:
        result = await manager.add(TunnelSpec(device="spark-x", name="web", remote_port=80),
                                   save=False)
        tunnel = result.tunnel
        await wait_tunnel(tunnel, TunnelState.WAITING)
        while failing.status.state is not LinkState.FAILED:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert "failed (auth): no key was accepted" in tunnel.status.describe()
        reader, writer = await asyncio.open_connection("127.0.0.1", tunnel.spec.local_port)
        assert await within(reader.read(), 2) == b"", "closed, not kept waiting"
        writer.close()
        assert tunnel.traffic.refused == 1 and tunnel.last_error == "spark-x is not connected"
    finally:
        await manager.close()
        await failing.close()


async def test_edit_rename_and_move_port_then_remove(tmp_path: Path, http_port: int):
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    config = tmp_path / "config.toml"
    manager = TunnelManager(Fleet([device]), config_path=config)
    try:
        result = await manager.add(TunnelSpec(device="spark-01", name="web",
                                              remote_port=http_port, local_port=free_port()))
        tunnel = result.tunnel
        old_port = tunnel.spec.local_port
        await wait_tunnel(tunnel, TunnelState.UP)
        # a second tunnel with the same name gets a new one
        twin = await manager.add(TunnelSpec(device="spark-01", name="web",
                                            remote_port=http_port), start=False)
        assert twin.tunnel.name == "web-2"
        with pytest.raises(TunnelSpecError, match="already has a tunnel named 'web-2'"):
            await manager.update(tunnel, TunnelSpec(device="spark-01", name="web-2",
                                                    remote_port=http_port))

        new_port = free_port()
        await manager.update(tunnel, TunnelSpec(device="spark-01", name="site",
                                                remote_port=http_port, local_port=new_port,
                                                preset="dashboard"))
        await wait_tunnel(tunnel, TunnelState.UP)
        assert port_is_bindable(old_port)  # type: ignore[arg-type]
        assert (await fetch(f"http://127.0.0.1:{new_port}/")).content == BODY
        assert [s.name for s in load_tunnels(config)[0]] == ["site", "web-2"]
        probe = await tunnel.check()
        assert probe.answers and probe.detail == "HTTP 200"

        assert await manager.remove(tunnel) == []
        assert port_is_bindable(new_port)
        assert [s.name for s in load_tunnels(config)[0]] == ["web-2"]
    finally:
        await manager.close()
        await device.close()


async def test_probe_says_when_nothing_answers():
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    manager = TunnelManager(Fleet([device]))
    try:
        nothing = free_port()
        tunnel = (await manager.add(TunnelSpec(device="spark-01", name="void",
                                               remote_port=nothing, local_port=free_port()),
                                    save=False)).tunnel
        await wait_tunnel(tunnel, TunnelState.UP)
        probe = await tunnel.check()
        assert probe.answers is False and "refused" in probe.detail.lower()
        # a client gets closed, and the reason is kept for the detail line
        reader, writer = await asyncio.open_connection("127.0.0.1", tunnel.spec.local_port)
        assert await within(reader.read(), 5) == b""
        writer.close()
        assert tunnel.traffic.refused == 1
        assert tunnel.last_error and f"localhost:{nothing} on spark-01" in tunnel.last_error
    finally:
        await manager.close()
        await device.close()


async def test_read_only_refuses_reverse_forwards_and_audits_them_otherwise(tmp_path: Path):
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    reverse = TunnelSpec(device="spark-01", name="hook", remote_port=free_port(),
                         local_port=free_port(), reverse=True)
    read_only = TunnelManager(Fleet([device]), read_only=True)
    with pytest.raises(ReadOnlyError):
        await read_only.add(reverse, save=False)
    # a forward changes nothing on the device: allowed
    await read_only.add(TunnelSpec(device="spark-01", name="web", remote_port=80), save=False)
    await read_only.close()

    audit = AuditLog(tmp_path / "audit.jsonl")
    manager = TunnelManager(Fleet([device]), audit=audit)
    tunnel = (await manager.add(reverse, save=False)).tunnel
    await wait_tunnel(tunnel, TunnelState.UP)
    await manager.stop(tunnel)
    await device.close()
    assert [e["action"] for e in audit.entries()] == ["tunnel.reverse.start",
                                                      "tunnel.reverse.stop"]


async def test_tunnels_follow_devices_in_and_out_of_the_fleet(tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text('[[tunnels]]\ndevice = "spark-01"\nname = "lab"\npreset = "jupyter"\n'
                      f"local_port = {free_port()}\n")
    fleet = Fleet()
    manager = TunnelManager(fleet, config_path=config)
    await manager.load()
    tunnel = manager.tunnels[0]
    assert tunnel.status.state is TunnelState.NO_DEVICE
    first = fleet.add(link("spark-01", LocalConnector("spark-01")))
    first.start()
    manager.sync_fleet()
    await wait_tunnel(tunnel, TunnelState.UP)

    await fleet.remove("spark-01")
    manager.sync_fleet()
    assert tunnel.status.state is TunnelState.NO_DEVICE and not tunnel.running
    second = fleet.add(link("spark-01", LocalConnector("spark-01")))
    second.start()
    manager.sync_fleet()
    await wait_tunnel(tunnel, TunnelState.UP)
    assert tunnel.link is second
    await manager.close()
    await second.close()


async def test_on_this_machine_a_tunnel_never_forwards_to_itself():
    from sparktui.core.device import DeviceSpec
    from sparktui.services.config import Settings
    from sparktui.services.devices import make_link

    local = make_link(DeviceSpec.parse("local"), Settings())
    local.start()
    manager = TunnelManager(Fleet([local]))
    try:
        port = free_port()  # nothing listens there: "the same port" would be free here
        with pytest.raises(TunnelSpecError, match="would forward to itself"):
            await manager.add(TunnelSpec(device="local", name="x", remote_port=port,
                                         local_port=port), save=False)
        result = await manager.add(TunnelSpec(device="local", name="y", remote_port=port),
                                   save=False)
        assert result.tunnel.spec.local_port != port
        assert "is the service itself (the device is this machine)" in result.notes[0]
    finally:
        await manager.close()
        await local.close()


async def test_a_stop_the_user_asked_for_outlives_a_restart(tmp_path: Path, http_port: int):
    config = tmp_path / "config.toml"
    config.write_text("# mine\n")
    device = link("spark-01", LocalConnector("spark-01"))
    device.start()
    first = TunnelManager(Fleet([device]), config_path=config)
    kept = (await first.add(TunnelSpec(device="spark-01", name="kept", remote_port=http_port,
                                       local_port=free_port()))).tunnel
    parked = (await first.add(TunnelSpec(device="spark-01", name="parked",
                                         remote_port=http_port,
                                         local_port=free_port()))).tunnel
    await wait_tunnel(parked, TunnelState.UP)
    assert await first.stop(parked, remember=True) == []
    await first.close()  # quitting stops the rest, but does not "remember" it
    assert config.read_text().startswith("# mine\n")

    second = TunnelManager(Fleet([device]), config_path=config)
    assert await second.load() == []
    by_name = {t.name: t for t in second.tunnels}
    await wait_tunnel(by_name["kept"], TunnelState.UP)
    assert by_name["parked"].status.state is TunnelState.STOPPED
    assert port_is_bindable(parked.spec.local_port)  # type: ignore[arg-type]
    # starting it again is remembered the other way
    assert await second.start(by_name["parked"], remember=True) == []
    await wait_tunnel(by_name["parked"], TunnelState.UP)
    assert all(spec.autostart for spec in load_tunnels(config)[0])
    assert kept.spec.autostart
    await second.close()
    await device.close()
