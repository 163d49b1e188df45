"""Group 1: text from a device, a LAN peer or a daemon never reaches the terminal raw.

The boundaries, each tested here with the suite's hostile peers:
- SSH: SSHConnectError, ConnectFailure, TransportError and LinkStatus clean the
  reason where it is made (tests/reliability/hostile_ssh.py attacks before any
  host key is checked, with a crafted algorithm list and a disconnect reason);
- mDNS: discovery cleans names and TXT records as it reads them (a hostile
  announcer on loopback);
- Docker: ContainerInfo.from_inspect and stats_from_sample hand out clean
  strings and never raise for a malformed reply; daemon errors are cleaned in
  describe_error;
- toasts: SparkApp.notify cleans every message and title;
- log files: SanitisingFormatter.

The end-to-end test runs the real TUI in tmux with `set-clipboard on` and
checks the bytes the terminal received: no tmux paste buffer (OSC 52) and no
new pane title (OSC 0/2).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import re
import time
from pathlib import Path

import pytest

from sparktui.core.device import DeviceSpec, LinkState, LinkStatus
from sparktui.core.docker_info import ContainerInfo, stats_from_sample
from sparktui.core.nvsmi import parse_compute_apps
from sparktui.core.sanitize import CleanText, clean_reason, strip_control
from sparktui.services.containers import describe_error
from sparktui.services.logs import SanitisingFormatter
from sparktui.transport.base import ConnectionLost
from sparktui.transport.ssh import connect_ssh
from sparktui.transport.ssh_types import SSHConnectError, SSHOptions
from tests.reliability.hostile_ssh import PAYLOAD, HostileSSH
from tests.reliability.tmux_app import TmuxApp

ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_clean(text: str) -> None:
    assert not ESCAPES.search(text), f"control characters reached the UI: {text!r}"
    assert "PWNED" not in text


@pytest.mark.parametrize("mode", ["algs", "disconnect"])
async def test_a_hostile_ssh_server_cannot_put_escapes_in_the_failure(mode: str) -> None:
    server = await HostileSSH(mode).start()
    try:
        with pytest.raises(SSHConnectError) as caught:
            await connect_ssh(DeviceSpec.parse(f"127.0.0.1:{server.port}"),
                              SSHOptions(use_ssh_config=False, connect_timeout=5))
    finally:
        await server.close()
    assert_clean(caught.value.reason)
    assert_clean(str(caught.value))
    assert len(caught.value.reason) <= 400


def test_every_link_reason_and_transport_error_is_clean() -> None:
    status = LinkStatus(LinkState.FAILED, reason=f"lost {PAYLOAD}")
    assert_clean(status.reason or "")
    assert_clean(status.describe())
    assert_clean(str(ConnectionLost(f"spark: {PAYLOAD}")))


async def test_mdns_names_from_the_lan_are_clean() -> None:
    from sparktui.services.discovery import discover
    from tests.infra.zeroconf import MdnsPublisher

    async with MdnsPublisher() as publisher:
        # zeroconf refuses C0 controls in an instance name, not C1 ones (8-bit CSI
        # and OSC) nor bidi overrides; the host name and TXT records take anything
        await publisher.publish("spark-evil\x9d2;PWNED\x9c\u202e", "spark-evil\x1b]2;PWNED\x07",
                                ["127.0.0.1"], txt={"model": f"GB10 {PAYLOAD}"})
        result = await discover(2.5, interfaces=["127.0.0.1"])
    hosts = [h for h in result.hosts if h.instance.startswith("spark-evil")]
    assert hosts, result
    for host in hosts:
        assert_clean(host.instance)
        assert_clean(host.hostname)
        assert_clean(host.destination)
        assert "\u202e" not in host.instance  # a bidi override would reorder what is shown
        for key, value in host.txt.items():
            assert_clean(key)
            assert_clean(value)


HOSTILE_INSPECT = {
    "Id": "abc\x1b]52;c;cHduZWQ=\x07",
    "Name": f"/web{PAYLOAD}",
    "State": {"Status": f"running{PAYLOAD}", "Health": {"Status": f"ok{PAYLOAD}"},
              "ExitCode": "not a number", "Error": PAYLOAD, "StartedAt": 12},
    "Config": {"Image": PAYLOAD, "Labels": {PAYLOAD: PAYLOAD}, "Tty": True},
    "HostConfig": {"DeviceRequests": [{"Capabilities": [["gpu"]],
                                       "DeviceIDs": [f"GPU-{PAYLOAD}"]}]},
    "Path": PAYLOAD, "Args": [PAYLOAD],
    "NetworkSettings": {"Ports": "not a dict"},
}


def test_docker_inspect_fields_come_out_clean_and_never_raise() -> None:
    info = ContainerInfo.from_inspect(HOSTILE_INSPECT)
    for text in (info.id, info.name, info.image, info.state, info.health, info.gpu,
                 info.command, info.error, *info.ports, *(k + v for k, v in info.labels)):
        assert_clean(text)
    assert info.exit_code == 0
    assert_clean(info.state_text())


def test_clean_text_is_made_only_at_the_boundary() -> None:
    """The wrapper type says which strings crossed the boundary, and nothing else makes it."""
    with pytest.raises(TypeError):
        CleanText("\x1b]52;c;cHduZWQ=\x07")
    assert type(strip_control("\x1b]0;PWNED\x07a")) is CleanText
    assert type(clean_reason(ValueError("\x1b[2Jx"))) is CleanText
    # str's own operations could add raw text: they give a plain str back
    clean = strip_control("ok")
    assert type(clean + "\x1b") is str and type(clean[:1]) is str
    assert type(copy.copy(clean)) is str and pickle.loads(pickle.dumps(clean)) == "ok"
    # the parsers hand out CleanText only
    info = ContainerInfo.from_inspect(HOSTILE_INSPECT)
    for text in (info.id, info.name, info.image, info.state, info.health, info.gpu,
                 info.command, info.error):
        assert type(text) is CleanText, text
    apps = parse_compute_apps("GPU-1, 42, \x1b]0;PWNED\x07python3, 100 MiB")
    assert type(apps[0].process_name) is CleanText and apps[0].process_name == "python3"
    # and no module but the sanitiser calls the constructor
    package = Path(__file__).resolve().parents[2] / "sparktui"
    makers = [str(path.relative_to(package)) for path in package.rglob("*.py")
              if "CleanText(" in path.read_text(encoding="utf-8")]
    assert makers == ["core/sanitize.py"], makers


@pytest.mark.parametrize("sample", [
    {"cpu_stats": "nope"},
    {"cpu_stats": {"cpu_usage": {"total_usage": "x"}, "system_cpu_usage": float("nan")}},
    {"memory_stats": {"usage": "lots", "stats": {"cache": None}, "limit": "inf"}},
    {"cpu_stats": {"cpu_usage": {"total_usage": 1e308}, "system_cpu_usage": 1e308,
                   "online_cpus": "many"},
     "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 1}},
    [],
])
def test_malformed_docker_stats_never_raise(sample) -> None:
    stats = stats_from_sample(sample if isinstance(sample, dict) else {}, None)
    assert stats.cpu_percent is None or 0 <= stats.cpu_percent


def test_daemon_errors_and_log_lines_are_clean() -> None:
    class APIError(Exception):
        explanation = f"conflict {PAYLOAD}"

    assert_clean(describe_error(APIError()))
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "device said %s",
                               (PAYLOAD,), None)
    line = SanitisingFormatter("%(message)s").format(record)
    assert_clean(line)


def test_the_terminal_receives_no_escape_from_a_hostile_sshd(tmp_path) -> None:
    """Real TUI in tmux with set-clipboard on: no paste buffer, no new title."""
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-m", "tests.reliability.hostile_ssh",
                               "disconnect"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        app = TmuxApp(tmp_path, clipboard=True, device=f"127.0.0.1:{port}",
                      width=200)  # room for the whole reason in the State cell
        try:
            app.wait_for("go away", timeout=60)  # the failure is on screen, every retry
            app.keys("1")
            time.sleep(2.0)  # several retries' worth of reasons
            buffers = app.tmux("list-buffers", "-F", "#{buffer_sample}")
            title = app.tmux("display-message", "-p", "-t", app.target, "#{pane_title}")
            assert buffers.strip() == "", f"OSC 52 reached the clipboard: {buffers!r}"
            assert "PWNED" not in title, f"the pane was retitled: {title!r}"
            assert_clean(app.screen())
        finally:
            app.close()
    finally:
        server.kill()
        server.wait()
    assert asyncio  # the module's async tests share the imports
