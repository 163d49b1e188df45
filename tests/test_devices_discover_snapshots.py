"""The Find devices dialog (f), pictured at 80x24, 50x40 and 200x50
on the real SparkApp, with a fixed network answer and a fixed ~/.ssh/config.

What mDNS answers depends on who else announces on this network (another test run
publishing on loopback, a real box nearby), so the picture's network answer is fixed:
`discover` is replaced by one that merges fixed records with the real merge rule.
The ssh_config side is real: a private HOME with its own config and NVIDIA Sync's.
tests/test_devices_discovery.py tests the real multicast path. Regenerate with
--snapshot-update and look at every picture you change (rsvg-convert makes a PNG).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from sparktui.services.discovery import DiscoveryResult, ServiceRecord, merge_records
from sparktui.ui.devices.discover import DiscoverScreen
from tests.infra.fed import fed_app
from tests.infra.pilot import wait_until

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((50, 40), id="50x40"),
         pytest.param((200, 50), id="200x50")]

RECORDS = [
    ServiceRecord("spark-7f3a", "spark-7f3a.local", 22, ("192.168.1.41", "169.254.3.9"),
                  {"model": "DGX Spark"}),
    ServiceRecord("spark-7f3a-2", "spark-7f3a-2.local", 22, ("192.168.1.41",)),
    ServiceRecord("spark-b210", "spark-b210.local", 22, ("192.168.1.57",),
                  {"model": "DGX Spark"}),
    ServiceRecord("nas", "nas.local", 2222, ("192.168.1.10",)),
    ServiceRecord("cx7-direct", "cx7-direct.local", 22, ("169.254.1.2",)),
]

SSH_CONFIG = """\
Host lab-spark
    HostName 10.20.0.15
    User ada
Host gpu-bastion
    HostName bastion.example.org
    Port 2200
"""

SYNC_CONFIG = """\
Host spark-office
    HostName spark-office.local
    User ada
"""


async def fixed_network(timeout: float, interfaces: list[str] | None = None) -> DiscoveryResult:
    hosts, ignored = merge_records(RECORDS)
    return DiscoveryResult(hosts=hosts, ignored_link_local=ignored, elapsed=timeout,
                           timeout=timeout)


@pytest.fixture
def fixed_world(monkeypatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(SSH_CONFIG)
    sync = tmp_path / "sync_ssh_config"
    sync.write_text(SYNC_CONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NV_SYNC_SSH_CONFIG", str(sync))
    monkeypatch.setattr("sparktui.ui.devices.discover.discover", fixed_network)


def opened_with(key: str, rows: int) -> Callable[[Pilot], Awaitable[None]]:
    async def opener(pilot: Pilot) -> None:
        await pilot.press("1", key)
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DiscoverScreen),
                         what="the dialog")
        table = pilot.app.screen.query_one("#discover-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == rows, what=f"{rows} rows")
        await wait_until(pilot, lambda: bool(pilot.app.screen.query("Footer FooterKey")),
                         what="the dialog's footer")
        await pilot.pause()
    return opener


@pytest.mark.parametrize("size", SIZES)
def test_find_devices(snap_compare, fixed_world, size: tuple[int, int]) -> None:
    # mDNS: spark-7f3a (its alias merged, its link-local address dropped), spark-b210 and
    # nas; the cx7-only record is ignored; then the three Host entries (the import alone
    # is pictured in tests/test_keys_probe_snapshots.py)
    assert snap_compare(fed_app(), terminal_size=size, run_before=opened_with("f", 6))
