"""The memory truth, the reclaim actions and the load guard on this very machine.

- Page cache: writing a file of a few GiB makes MemFree fall while MemAvailable
  holds; "free for CUDA" follows MemFree; the guard (as root here) drops caches
  and MemFree comes back.
- A real container on the shared dockerd whose process grows its memory: the
  guard stops it when MemAvailable stays under the hard floor. The floor is set
  1.5 GiB under this machine's MemAvailable at the start, and the container has a
  docker memory limit as a safety net, because other jobs share this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.audit import AuditLog
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.loadguard import LoadGuard
from sparktui.services.memory_actions import MemoryActions
from sparktui.services.telemetry import DeviceTelemetry, TelemetryService
from tests.infra.common import require

GIB = 1024**3
FILE_GIB = 2


def meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            out[key] = int(rest.split()[0]) * 1024
    return out


@contextlib.asynccontextmanager
async def local_telemetry(settings: Settings) -> AsyncIterator[TelemetryService]:
    link = make_link(DeviceSpec.parse("local"), settings)
    service = TelemetryService(link, settings)
    link.start()
    service.start()
    try:
        yield service
    finally:
        await service.close()
        await link.close()


async def wait_for(service: TelemetryService, predicate: Callable[[DeviceTelemetry], object],
                   what: str, timeout: float = 30.0) -> DeviceTelemetry:
    deadline = time.monotonic() + timeout
    while not predicate(service.latest):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s; events "
                                 f"{[e.text for e in service.latest.events]}")
        await asyncio.sleep(0.05)
    return service.latest


def truth_of(t: DeviceTelemetry):
    truth = t.memory_truth
    assert truth is not None and truth.free_for_cuda is not None
    return truth


def write_file(path: str, gib: int) -> None:
    block = b"\x5a" * (1 << 20)
    with open(path, "wb") as fh:
        for _ in range(gib * 1024):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())  # written back: clean cache, which a drop can free


@pytest.fixture
def big_file(tmp_path):
    require(os.geteuid() == 0, "root (drop_caches needs it; CI runs as root)")
    free_disk = shutil.disk_usage(tmp_path).free
    # under CI=true a machine too small for the test fails the run (require), never skips
    require(free_disk >= (FILE_GIB + 4) * GIB and meminfo()["MemAvailable"] >= (FILE_GIB + 3) * GIB,
            f"{FILE_GIB + 4} GiB of free disk and {FILE_GIB + 3} GiB of available memory")
    path = str(tmp_path / "pagecache.bin")
    yield path
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def test_free_for_cuda_follows_memfree_and_the_guard_gives_it_back(big_file, tmp_path):
    settings = Settings(refresh_interval=0.25, guard_hard_floor_gib=0.0)
    audit = AuditLog(tmp_path / "audit.jsonl")
    async with local_telemetry(settings) as service:
        await wait_for(service, lambda t: t.memory_truth is not None, "figures")
        actions = MemoryActions(service.link, read_only=False, audit=audit)
        assert (await actions.run("drop-caches")).ok  # a clean start: little cache
        dropped_at = service.latest.t
        before = truth_of(await wait_for(service, lambda t: t.t > dropped_at + 0.5, "a block"))
        await asyncio.to_thread(write_file, big_file, FILE_GIB)
        seen_at = service.latest.t
        after_write = truth_of(await wait_for(service, lambda t: t.t > seen_at + 0.5,
                                              "a block after the write"))
        # the file's pages sit in the page cache: CUDA's free falls, reclaim would give it back
        assert before.free_for_cuda - after_write.free_for_cuda > (FILE_GIB - 0.8) * GIB
        assert abs(after_write.available_after_reclaim - before.available_after_reclaim) \
            < 1.5 * GIB
        host = service.latest.host
        assert host is not None and host.mem is not None
        assert service.latest.memory_truth.free_for_cuda == host.mem.free  # MemFree, exactly
        assert abs(host.mem.free - meminfo()["MemFree"]) < 1 * GIB

        # the guard, floor just above today's MemFree: it drops caches and MemFree comes back
        low = after_write.free_for_cuda
        guard_settings = Settings(guard_free_floor_gib=(low + GIB) / GIB,
                                  guard_hard_floor_gib=0.0)
        guard = LoadGuard(service, actions, guard_settings, audit=audit)
        guard.set_mode("on")
        await wait_for(service, lambda t: any("dropping caches on local: done" in e.text
                                              for e in t.events), "the guard's drop")
        done_at = service.latest.t
        back = truth_of(await wait_for(service, lambda t: t.t > done_at + 0.5, "a block after"))
        assert back.free_for_cuda - low > (FILE_GIB - 0.8) * GIB
        await guard.close()
        by_guard = [e["action"] for e in audit.entries() if e.get("by") == "guard"]
        assert by_guard[:2] == ["drop-caches", "compact"]


async def test_the_guard_stops_a_real_container_that_eats_memory(docker_engine, tmp_path):
    available = meminfo()["MemAvailable"]
    require(available >= 5 * GIB, "5 GiB of available memory for the memory-eating container")
    settings = Settings(refresh_interval=0.25, guard_free_floor_gib=0.0,
                        guard_hard_floor_gib=(available - 1.5 * GIB) / GIB,
                        guard_hard_floor_s=0.5)
    audit = AuditLog(tmp_path / "audit.jsonl")
    # busybox tail buffers a line that never ends: it grows until stopped (or the limit)
    container = docker_engine.run(["/bin/busybox", "tail", "/dev/zero"], mem_limit="3g",
                                  memswap_limit="3g", nano_cpus=1_000_000_000)
    try:
        async with local_telemetry(settings) as service:
            await wait_for(service, lambda t: t.memory_truth is not None, "figures")
            actions = MemoryActions(service.link, read_only=False, audit=audit)
            guard = LoadGuard(service, actions, settings, audit=audit)
            stopped = asyncio.Event()

            async def stop() -> None:
                await asyncio.to_thread(container.kill)
                stopped.set()

            guard.watch_load(container.id, "tail-zero", stop)
            await within(stopped.wait(), 120)  # a busy shared box is slow
            texts = [e.text for e in service.latest.events]
            assert any("tail-zero stopped by the load guard" in t and "hard floor" in t
                       for t in texts), texts
            await guard.close()
        container.reload()
        state = container.attrs["State"]
        assert not state["Running"] and not state["OOMKilled"]  # the guard, not the limit
        assert ("guard.stop-container", "tail-zero") in [(e["action"], e["target"])
                                                          for e in audit.entries()]
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
