"""The load guard and the memory actions against the simulated Spark, over real SSH.

A model load on the simulated GB10 fills page cache (MemFree falls, MemAvailable
holds) and then unified memory; the guard drops caches and compacts under the
free floor, and stops the load when MemAvailable stays under the hard floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.loadguard import GuardHub
from sparktui.services.memory_actions import (
    DROP_CACHES,
    MemoryActions,
    explain_failure,
    sudoers_line,
)
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from sparktui.sim.ssh.server import start_sim
from sparktui.transport.ssh_types import SSHOptions

GIB = 1024**3
FAST = Settings(refresh_interval=0.2, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=1.0, guard_hard_floor_s=0.5)


@contextlib.asynccontextmanager
async def sim_telemetry(tmp_path, settings: Settings = FAST
                        ) -> AsyncIterator[tuple[object, TelemetryService]]:
    server = await start_sim(seed=3)
    identity, known_hosts = server.write_client_files(str(tmp_path))
    spec = DeviceSpec(name="spark-sim", host="127.0.0.1", port=server.port, user="spark",
                      identity_file=str(identity))
    link = make_link(spec, settings, ssh_options=SSHOptions(known_hosts=str(known_hosts),
                                                            use_ssh_config=False))
    service = TelemetryService(link, settings)
    link.start()
    service.start()
    try:
        yield server, service
    finally:
        await service.close()
        await link.close()
        await server.close()


async def wait_for(service: TelemetryService, predicate: Callable[[DeviceTelemetry], object],
                   what: str, timeout: float = 20.0) -> DeviceTelemetry:
    deadline = time.monotonic() + timeout
    while not predicate(service.latest):
        if time.monotonic() > deadline:
            events = [e.text for e in service.latest.events]
            raise AssertionError(f"no {what} within {timeout} s; events {events}")
        await asyncio.sleep(0.05)
    return service.latest


def free(t: DeviceTelemetry) -> int:
    assert t.host is not None and t.host.mem is not None and t.host.mem.free is not None
    return t.host.mem.free


async def test_guard_drops_caches_then_stops_an_oversized_load(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    async with sim_telemetry(tmp_path) as (server, service):
        memory = server.device.memory
        memory.rate_gib_s = 25.0
        hub = GuardHub(FAST, audit, lambda name: service if name == "spark-sim" else None)
        guard = hub.guard("spark-sim")
        assert guard is not None
        before = await wait_for(service, lambda t: t.memory_truth is not None, "memory")
        assert before.memory_truth.free_for_cuda == free(before)
        stopped = asyncio.Event()

        async def stop() -> None:
            memory.end_load("llama-70b")
            stopped.set()

        guard.watch_load("c0ffee", "llama-70b", stop)
        memory.start_load("llama-70b", 140.0)  # more than the box has
        await within(stopped.wait(), 30)
        texts = [e.text for e in service.latest.events]
        assert any("dropping caches and compacting" in t for t in texts), texts
        assert any("llama-70b stopped by the load guard" in t and "hard floor" in t
                   for t in texts), texts
        assert not memory.down, "the guard was too late: the simulated box wedged"
        actions = [(e["action"], e.get("by")) for e in audit.entries()]
        assert ("drop-caches", "guard") in actions and ("compact", "guard") in actions
        assert ("guard.stop-container", None) in actions
        assert guard.stopped and "before the box wedges" in guard.stopped[0][1]
        await hub.close()


async def test_drop_caches_gives_free_memory_back_and_read_only_refuses(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    async with sim_telemetry(tmp_path) as (server, service):
        memory = server.device.memory
        memory.rate_gib_s = 50.0
        memory.start_load("reader", 60.0)
        memory.end_load("reader")  # read 60 GiB of weights and quit: all of it is cache now
        memory.extra_cache_kb = 60 * 1024 * 1024
        low = await wait_for(service, lambda t: t.memory_truth is not None
                             and t.memory_truth.free_for_cuda < 60 * GIB, "a full cache")
        truth = low.memory_truth
        assert truth.available_after_reclaim - truth.free_for_cuda > 40 * GIB
        actions = MemoryActions(service.link, read_only=False, audit=audit)
        result = await actions.run(DROP_CACHES)
        assert result.ok, result.message
        await wait_for(service, lambda t: free(t) > truth.free_for_cuda + 40 * GIB,
                       "MemFree back after the drop")
        with pytest.raises(ReadOnlyError):
            await MemoryActions(service.link, read_only=True, audit=audit).run(DROP_CACHES)
        assert [e["action"] for e in audit.entries()] == ["drop-caches"]


def test_a_password_prompt_becomes_the_sudoers_line():
    result = explain_failure(DROP_CACHES, "spark-1", "sudo: a password is required\n"
                             "sparktui-user alice\n", 1, "YOUR_USER")
    assert not result.ok and result.sudoers == sudoers_line("alice")
    assert "alice ALL=(root) NOPASSWD: /usr/bin/tee /proc/sys/vm/drop_caches" in result.message
    assert "spark-1" in result.message and "never asks" in result.message
    other = explain_failure(DROP_CACHES, "spark-1", "tee: /proc/sys/vm/drop_caches: "
                            "Read-only file system\n", 1, "bob")
    assert other.sudoers is None and "Read-only file system" in other.message


async def test_a_wedge_and_reboot_gets_a_postmortem_with_the_minutes_before(tmp_path):
    from sparktui.core.postmortem import Cause
    from sparktui.services.flight import FlightRecorder
    from sparktui.services.postmortem import PostmortemWatch, latest_postmortem

    async with sim_telemetry(tmp_path) as (server, service):
        memory = server.device.memory
        memory.down_s = 1.5
        settings = Settings(flight_recorder_minutes=5)
        flight = FlightRecorder(settings, root=tmp_path / "flight")
        flight.attach(service, service.link)
        reports = []
        watch = PostmortemWatch(service, minutes=5, flight_root=tmp_path / "flight",
                                store_root=tmp_path / "pm", on_report=reports.append,
                                flush=flight.flush)
        first = await wait_for(service, lambda t: t.host is not None and t.host.boot_id,
                               "a boot id")
        old_boot = first.host.boot_id
        await asyncio.sleep(1.5)  # some recorded seconds before the drop
        from sparktui.core.docker_info import ContainerInfo
        from sparktui.services.containers import CONTAINER_EVENT_HOOKS, _tell_hooks

        CONTAINER_EVENT_HOOKS.append(flight.record_container)
        try:  # a container event, as the containers service tells it
            _tell_hooks("spark-sim", "c0ffee", ContainerInfo(
                id="c0ffee", name="vllm-70b", image="vllm", state="exited", oom_killed=True))
        finally:
            CONTAINER_EVENT_HOOKS.remove(flight.record_container)
        memory.wedge()
        await wait_for(service, lambda t: any("rebooted:" in e.text for e in t.events),
                       "a post-mortem event", timeout=30)
        report = reports[0]
        assert report.verdict.cause is Cause.GPU_WEDGE
        assert report.previous_boot == old_boot and report.boot_id == memory.boot_id != old_boot
        assert any("NV_ERR_NO_MEMORY" in line for line in report.verdict.evidence)
        assert len(report.series["t"]) >= 3  # the recorded seconds before the drop
        assert all(v is not None for v in report.series["free_for_cuda_gib"])
        assert any("container vllm-70b: exited (OOM-killed)" in e for e in report.events)
        saved = latest_postmortem("spark-sim", tmp_path / "pm")
        assert saved is not None and saved.verdict == report.verdict
        await watch.close()
        await flight.close()


async def test_a_container_started_from_sparktui_is_guarded_until_it_answers(tmp_path):
    from sparktui.services.containers import ContainerService, ServiceState
    from sparktui.sim.demo import start_demo

    demo = await start_demo()
    link = make_link(demo.spec, FAST, ssh_options=demo.ssh_options)
    service = TelemetryService(link, FAST)
    containers = ContainerService(link, retry_interval=0.3, stats_interval=0.3,
                                  audit=AuditLog(tmp_path / "audit.jsonl"))
    hub = GuardHub(FAST, AuditLog(tmp_path / "audit.jsonl"),
                   lambda name: service if name == link.name else None)
    link.start()
    service.start()
    containers.start()
    try:
        memory = demo.server.device.memory  # type: ignore[attr-defined]
        memory.rate_gib_s = 25.0
        deadline = time.monotonic() + 20
        while containers.state is not ServiceState.READY:
            assert time.monotonic() < deadline, containers.problem
            await asyncio.sleep(0.05)
        await wait_for(service, lambda t: t.memory_truth is not None, "memory")
        made = await containers.call(lambda client: client.api.create_container(
            "nvcr.io/nvidia/vllm:25.09-py3", ["vllm", "serve", "meta-llama/Llama-3.1-70B"],
            name="big-load", host_config=client.api.create_host_config(
                port_bindings={8000: ("127.0.0.1", 8031)})))
        await containers.run_action("start", made["Id"])
        await wait_for(service, lambda t: any("big-load stopped by the load guard" in e.text
                                              for e in t.events), "the guard's stop", 40)
        assert not memory.down
    finally:
        await hub.close()
        await containers.close()
        await service.close()
        await link.close()
        await demo.close()
