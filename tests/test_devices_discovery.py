"""mDNS discovery: a real `_ssh._tcp` service published on loopback, merged, filtered, bounded."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from sparktui.commands import discover as discover_cmd
from sparktui.services.discovery import (
    ServiceRecord,
    discover,
    is_link_local,
    looks_like_spark,
    merge_records,
)
from tests.infra.zeroconf import MdnsPublisher

LOOPBACK = ["127.0.0.1"]


def _tag() -> str:
    # a fresh name per run: another test run's announcement may still be cached nearby
    return uuid.uuid4().hex[:6]


async def test_published_spark_is_found_merged_and_link_local_dropped() -> None:
    tag = _tag()
    async with MdnsPublisher() as pub:
        # the box itself, with a ConnectX-7 link-local address beside its LAN one
        await pub.publish(f"spark-{tag}", f"spark-{tag}.local", ["127.0.0.1", "169.254.7.8"],
                          txt={"model": "DGX Spark"})
        # the same box again after an mDNS name conflict, same address
        await pub.publish(f"spark-{tag}-30", f"spark-{tag}-30.local", ["127.0.0.1"])
        # a direct-cable announcement: nothing but link-local
        await pub.publish(f"cx7-{tag}", f"cx7-{tag}.local", ["169.254.1.2"])
        await pub.publish(f"laptop-{tag}", f"laptop-{tag}.local", ["127.0.0.2"], port=2222)
        result = await discover(2.0, interfaces=LOOPBACK)
    assert result.problem is None
    ours = {h.hostname: h for h in result.hosts if tag in h.hostname}
    assert set(ours) == {f"spark-{tag}.local", f"laptop-{tag}.local"}
    spark = ours[f"spark-{tag}.local"]
    assert spark.addresses == ["127.0.0.1"]  # 169.254.7.8 ignored
    assert spark.is_spark and f"spark-{tag}-30.local" in spark.aliases
    laptop = ours[f"laptop-{tag}.local"]
    assert not laptop.is_spark and laptop.port == 2222
    assert laptop.destination == f"laptop-{tag}.local:2222"
    assert result.ignored_link_local >= 1
    assert "Sparks" in result.summary()


async def test_blocked_multicast_says_so_at_once(monkeypatch) -> None:
    import zeroconf._utils.net as zc_net

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    # what a sandbox or a firewall that forbids multicast sockets looks like to zeroconf
    monkeypatch.setattr(zc_net, "new_socket", refuse)
    started = time.monotonic()
    result = await discover(5.0)
    assert time.monotonic() - started < 1.0  # no hang, not even the 5 s browse
    assert result.problem == "multicast unavailable: Operation not permitted"
    assert result.hosts == []
    assert result.summary() == result.problem


async def test_an_interface_that_is_not_there_is_reported() -> None:
    started = time.monotonic()
    result = await discover(5.0, interfaces=["203.0.113.77"])  # TEST-NET-3: not ours
    assert time.monotonic() - started < 1.0
    assert result.problem is not None
    assert result.problem.startswith("multicast unavailable: ")


async def test_no_network_at_all_is_reported(monkeypatch) -> None:
    import ifaddr

    monkeypatch.setattr(ifaddr, "get_adapters", lambda *a, **k: [])  # a netns with lo down
    started = time.monotonic()
    result = await discover(5.0)
    assert time.monotonic() - started < 1.0
    assert result.problem is not None
    assert result.problem.startswith("multicast unavailable: No interfaces to listen on")


async def test_silence_ends_after_the_timeout() -> None:
    started = time.monotonic()
    result = await discover(0.5, interfaces=LOOPBACK, service_type="_nothing-here._tcp.local.")
    assert 0.4 < time.monotonic() - started < 2.0
    assert result.problem is None and result.hosts == []
    assert "no " in result.summary() and "answered in 0.5 s" in result.summary()


def test_merge_prefers_the_base_name_and_keeps_all_addresses() -> None:
    records = [
        ServiceRecord("spark-1-30", "spark-1-30.local", 22, ("10.0.0.5", "169.254.3.3")),
        ServiceRecord("spark-1", "spark-1.local", 22, ("10.0.0.5", "fe80::1", "fd00::5")),
        ServiceRecord("nas", "nas.local", 22, ("10.0.0.9",), {"model": "x"}),
        ServiceRecord("ghost", "ghost.local", 22, ("169.254.9.9", "fe80::9")),
    ]
    hosts, ignored = merge_records(records)
    assert [h.hostname for h in hosts] == ["nas.local", "spark-1.local"]
    spark = hosts[1]
    assert spark.addresses == ["10.0.0.5", "fd00::5"]
    assert spark.aliases == ["spark-1-30.local"]
    assert ignored == 1


@pytest.mark.parametrize(("address", "link_local"), [
    ("169.254.1.1", True), ("fe80::1%eth0", True), ("10.1.2.3", False), ("fd00::1", False),
    ("not-an-address", False)])
def test_link_local(address: str, link_local: bool) -> None:
    assert is_link_local(address) is link_local


def test_spark_by_name_or_txt() -> None:
    assert looks_like_spark("spark-1a2b", "spark-1a2b.local", {})
    assert looks_like_spark("box", "box.local", {"product": "NVIDIA DGX Spark"})
    assert not looks_like_spark("sparkles", "sparkles.local", {})


def test_cli_json_reports_blocked_multicast(monkeypatch, capsys) -> None:
    import zeroconf._utils.net as zc_net

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(zc_net, "new_socket", refuse)
    assert discover_cmd.main(["--json", "--timeout", "2"]) == discover_cmd.EXIT_PROBLEM
    out = json.loads(capsys.readouterr().out)
    assert out["problem"] == "multicast unavailable: No such device"
    assert out["hosts"] == []


def test_cli_lists_a_published_host(capsys) -> None:
    import asyncio

    tag = _tag()

    async def run() -> int:
        async with MdnsPublisher() as pub:
            await pub.publish(f"spark-{tag}", f"spark-{tag}.local", ["127.0.0.1"])
            # the CLI makes its own event loop: run it in a thread beside this one
            return await asyncio.to_thread(
                discover_cmd.main, ["--timeout", "1.5", "--interface", "127.0.0.1"])

    assert asyncio.run(run()) == 0
    captured = capsys.readouterr()
    line = next(line for line in captured.out.splitlines() if tag in line)
    assert line.startswith("spark") and "127.0.0.1" in line
