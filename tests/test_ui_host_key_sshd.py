"""The host-key question end to end: a real sshd whose key is not yet trusted.

The link's connect coroutine (sparktui.transport.ssh) calls SparkApp.ask_host_key;
the answer typed into the modal decides whether the key is recorded and the
device connects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sparktui.core.device import DeviceSpec, FailureKind, LinkState
from sparktui.services.config import Config
from sparktui.ui.app import SparkApp
from sparktui.ui.screens import HostKeyScreen
from tests.infra.pilot import wait_until
from tests.test_ui_shell import REPO_THEMES


@pytest.fixture
def untrusted_alias(sshd, ssh_home, monkeypatch) -> str:
    """`spark-new` in ~/.ssh/config, pointing at a live sshd whose key is NOT known."""
    ssh_home.write_ssh_config({"spark-new": {"HostName": sshd.address, "Port": sshd.port,
                                             "User": sshd.user}})
    ssh_home.clear_known_hosts()
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return "spark-new"


@pytest.mark.sshd
@pytest.mark.parametrize(("key", "accepted"), [("y", True), ("escape", False)])
async def test_unknown_host_key_is_asked_in_a_modal(untrusted_alias: str, sshd, ssh_home,
                                                    key: str, accepted: bool) -> None:
    config = Config(path=Path("/nonexistent/sparktui.toml"))
    app = SparkApp(config, [DeviceSpec.parse(untrusted_alias)], theme_dirs=[REPO_THEMES])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, HostKeyScreen), timeout=15)
        offer = app.screen.offer
        assert offer.port == sshd.port
        assert offer.fingerprint.startswith("SHA256:")
        assert offer.known_hosts_path == ssh_home.known_hosts_path
        await pilot.press(key)
        link = app.fleet.links[0]
        if accepted:
            await wait_until(pilot, lambda: link.status.state is LinkState.CONNECTED, timeout=15)
            assert str(sshd.port) in Path(ssh_home.known_hosts_path).read_text()
        else:
            await wait_until(pilot, lambda: link.status.state is LinkState.FAILED, timeout=15)
            assert link.status.failure is FailureKind.HOST_KEY_UNKNOWN
            assert Path(ssh_home.known_hosts_path).read_text().strip() == ""
    assert app.fleet.links[0].status.state is LinkState.CLOSED
