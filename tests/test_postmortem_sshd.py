"""Reboot and wedge evidence over a real OpenSSH sshd in its own mount namespace.

The sshd runs under `unshare -m` with stand-ins bind-mounted over
/proc/sys/kernel/random/boot_id and /sys/fs/pstore, and a `journalctl` stand-in
first on its PATH that prints the previous boot's kernel log of a scenario. The
host stream (the real shell loop) reads the faked boot id; the post-mortem watch
sees it change, runs the real evidence command and classifies:
"rebooted after NV_ERR_NO_MEMORY", "rebooted after an OOM kill", "kernel panic
in pstore", and "network only" (the sessions are cut, the boot id stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time

import pytest

from sparktui.core.device import DeviceSpec
from sparktui.core.postmortem import Cause
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.postmortem import LastBoot, PostmortemWatch, save_last_boot
from sparktui.services.telemetry import TelemetryService
from tests.infra import SSHD_BINARY, ClientSetup, SshdServer, require

pytestmark = pytest.mark.sshd

FAST = Settings(refresh_interval=0.2, keepalive_interval=1.0, keepalive_count_max=2,
                reconnect_max_delay=1.0)
OLD = "0b0e0a0d-1111-4222-8333-444455556666"
NEW = "0b0e0a0d-7777-4888-9999-aaaabbbbcccc"
ALIAS = "spark-pm"
JOURNAL_STANDIN = """#!/bin/sh
cat "$SPARKTUI_SCENARIO/journal.txt"
exit "$(cat "$SPARKTUI_SCENARIO/journal.status")"
"""
SCENARIOS = {
    "nv_err_no_memory": (NEW, [
        "Dec 03 10:00:01 spark kernel: NVRM: nvAssertOkFailedNoLog: Assertion failed: Out of "
        "memory [NV_ERR_NO_MEMORY] (0x00000051) returned from _memdescAllocInternal",
        "Dec 03 10:00:05 spark kernel: INFO: task python3:4242 blocked for more than 122 "
        "seconds."], {}, Cause.GPU_WEDGE, "NV_ERR_NO_MEMORY"),
    "oom_kill": (NEW, [
        "Dec 03 10:00:01 spark kernel: python3 invoked oom-killer: gfp_mask=0x140dca, order=0",
        "Dec 03 10:00:01 spark kernel: Out of memory: Killed process 4242 (python3) "
        "total-vm:130000000kB"], {}, Cause.OOM, "oom-killer"),
    "panic_in_pstore": (NEW, ["Dec 03 10:00:01 spark kernel: nothing odd"], {
        "dmesg-ramoops-0": "Panic#1 Part1\n<0>[ 812.1] Kernel panic - not syncing: "
                           "Fatal exception in interrupt\n"}, Cause.PANIC, "Kernel panic"),
}


class MountNsSshd(SshdServer):
    """An sshd whose sessions see our boot_id file and pstore directory."""

    def __init__(self, scenario_dir: str, **options) -> None:
        self.scenario_dir = scenario_dir
        super().__init__(env={"SPARKTUI_SCENARIO": scenario_dir}, **options)

    @property
    def command(self) -> list[str]:
        boot = os.path.join(self.scenario_dir, "boot_id")
        pstore = os.path.join(self.scenario_dir, "pstore")
        script = (f"mount --bind '{boot}' /proc/sys/kernel/random/boot_id && "
                  f"mount --bind '{pstore}' /sys/fs/pstore && "
                  f"exec '{SSHD_BINARY}' -D -e -f '{self.config_path}'")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


def mount_namespaces_work() -> tuple[bool, str]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False, "root and unshare (util-linux) for a mount namespace"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount --bind /proc/uptime /proc/loadavg"],
                           capture_output=True, text=True)
    return probe.returncode == 0, f"mount namespaces: {probe.stderr.strip()}"


@pytest.fixture
def pm_sshd(ssh_home: ClientSetup, tmp_path, monkeypatch):
    ok, why = mount_namespaces_work()
    require(ok, why)
    scenario = tmp_path / "scenario"
    (scenario / "pstore").mkdir(parents=True)
    server = MountNsSshd(str(scenario))
    with open(os.path.join(server.bin_dir, "journalctl"), "w", encoding="utf-8") as fh:
        fh.write(JOURNAL_STANDIN)
    os.chmod(os.path.join(server.bin_dir, "journalctl"), 0o755)
    play(str(scenario), OLD, [], {})
    server.authorize(ssh_home.pubkey_line)
    server.start()
    ssh_home.add_server(ALIAS, server)
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    yield server, str(scenario)
    server.close()


def play(scenario: str, boot: str, journal: list[str], pstore: dict[str, str]) -> None:
    # written in place: the bind mount holds the file's inode
    with open(os.path.join(scenario, "boot_id"), "w", encoding="ascii") as fh:
        fh.write(boot + "\n")
    with open(os.path.join(scenario, "journal.txt"), "w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in journal))
    with open(os.path.join(scenario, "journal.status"), "w", encoding="ascii") as fh:
        fh.write("0\n")
    store = os.path.join(scenario, "pstore")
    for name in os.listdir(store):
        os.unlink(os.path.join(store, name))
    for name, text in pstore.items():
        with open(os.path.join(store, name), "w", encoding="utf-8") as fh:
            fh.write(text)


def seed_last_boot(flight_root) -> None:
    """sparktui last saw boot OLD, before this machine's uptime began (a real reboot)."""
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    save_last_boot(ALIAS, LastBoot(OLD, 86_400.0, time.time() - uptime - 60), flight_root)


@contextlib.asynccontextmanager
async def watched(tmp_path):
    link = make_link(DeviceSpec.parse(ALIAS), FAST)
    service = TelemetryService(link, FAST)
    reports = []
    watch = PostmortemWatch(service, minutes=5, flight_root=tmp_path / "flight",
                            store_root=tmp_path / "pm", on_report=reports.append)
    link.start()
    service.start()
    try:
        yield service, reports
    finally:
        await watch.close()
        await service.close()
        await link.close()


async def until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def test_each_reboot_is_classified_from_the_real_evidence(pm_sshd, tmp_path):
    _, scenario = pm_sshd
    for name, (boot, journal, pstore, cause, quoted) in SCENARIOS.items():
        play(scenario, boot, journal, pstore)
        seed_last_boot(tmp_path / "flight")
        async with watched(tmp_path) as (service, reports):
            await until(lambda: bool(reports), f"a post-mortem for {name}")
            report = reports[0]
            assert report.verdict.cause is cause, (name, report.verdict)
            assert report.previous_boot == OLD and report.boot_id == NEW
            assert report.last_uptime_s == 86_400.0 and "24.0 h" in report.verdict.summary
            assert any(quoted in line for line in report.verdict.evidence), report.verdict
            assert service.latest.host is not None and service.latest.host.boot_id == NEW


async def test_a_lost_connection_with_the_same_boot_id_is_network_only(pm_sshd, tmp_path):
    server, scenario = pm_sshd
    play(scenario, OLD, [], {})
    async with watched(tmp_path) as (service, reports):
        await until(lambda: service.latest.host is not None
                    and service.latest.host.boot_id == OLD, "the boot id")
        server.kill_sessions()  # the wire is cut; the box stays up
        await until(lambda: any("network only" in e.text for e in service.latest.events),
                    "the network-only verdict")
        assert reports == []
