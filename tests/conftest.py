"""Shared fixtures: real OpenSSH servers on loopback (and in network namespaces).

Quick reference (see tests/infra for the classes):

- ``ssh_home``      ClientSetup: a private HOME with ~/.ssh/{id_ed25519,known_hosts,config}.
- ``sshd_factory``  ``make(**SshdServer options, authorize=True, start=True) -> SshdServer``;
                    `ssh_home`'s key is authorized unless authorize=False.
- ``sshd``          one started SshdServer (``sshd_factory()``).
- ``ssh_client``    `ssh_home` with alias ``spark-test`` -> `sshd` (host key trusted),
                    HOME monkeypatched to it, SSH_AUTH_SOCK removed: then
                    ``asyncssh.connect("spark-test")`` just works.
- ``ssh_conn``      an open ``asyncssh.SSHClientConnection`` to ``spark-test``.
- ``netns_sshd``    ``make(**options) -> SshdServer`` running in its own network
                    namespace; ``server.netns.link_down()`` / ``link_up()``.
- ``ssh_agent``     a started SshAgent (does not touch the environment).
- ``fake_gpu``      ``fake_gpu("scenario")`` writes the file every server's sessions
                    see as $SPARKTUI_FAKE_GPU_FILE; ``fake_gpu_file`` is its path.

Under CI=true a missing sshd or netns support fails tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

# Parsers are fuzzed with hypothesis. In CI the examples come from a fixed seed
# (derandomize), so a red run is the same run again on the next push.
from hypothesis import settings as _hypothesis_settings

from sparktui.cli import start_simulated_demo
from sparktui.services import demo as _demo
from tests.infra import (
    SSHD_BINARY,
    ClientSetup,
    NetnsPeer,
    SshAgent,
    SshdServer,
    in_ci,
    require,
    sshd_available,
)
from tests.infra.docker import docker_engine  # noqa: F401 - a fixture
from tests.infra.hangdump import HangDump
from tests.infra.llama import llama_factory, llama_server  # noqa: F401 - fixtures
from tests.infra.netns import netns_support

# as sparktui's command line does: the demo's device is the simulated Spark
_demo.provide(start_simulated_demo)

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if in_ci():
    _hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _dump_stacks_before_a_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that hangs says what it was waiting on (tests/infra/hangdump.py)."""
    marker = request.node.get_closest_marker("timeout")
    timeout = float(marker.args[0]) if marker and marker.args else \
        float(request.config.getini("timeout") or 0)
    if timeout <= 0:
        yield
        return
    with HangDump(request.node.nodeid, timeout):
        yield


@pytest.fixture(scope="session", autouse=True)
def _ci_requires_sshd() -> None:
    """Under CI the OpenSSH server must be installed: fail loudly, never skip."""
    if in_ci() and not sshd_available():
        pytest.fail(
            f"CI=true but {SSHD_BINARY} (openssh-server) or ssh-keygen is missing; "
            "run .ci/run or apt-get install openssh-server openssh-client",
            pytrace=False,
        )


@pytest.fixture
def ssh_home() -> Iterator[ClientSetup]:
    setup = ClientSetup()
    yield setup
    setup.close()


@pytest.fixture
def fake_gpu_file(tmp_path) -> str:
    return str(tmp_path / "fake_gpu_scenario")


@pytest.fixture
def fake_gpu(fake_gpu_file: str) -> Callable[[str], str]:
    """``fake_gpu("scenario")``: pick the fake nvidia-smi scenario for all test servers."""

    def set_scenario(scenario: str) -> str:
        with open(fake_gpu_file, "w", encoding="utf-8") as fh:
            fh.write(scenario + "\n")
        return fake_gpu_file

    return set_scenario


@pytest.fixture
def sshd_factory(ssh_home: ClientSetup, fake_gpu_file: str) -> Iterator[Callable[..., SshdServer]]:
    require(sshd_available(), f"{SSHD_BINARY} and ssh-keygen (apt-get install openssh-server)")
    servers: list[SshdServer] = []

    def make(*, authorize: bool = True, start: bool = True, **options) -> SshdServer:
        options.setdefault("fake_gpu_file", fake_gpu_file)
        server = SshdServer(**options)
        servers.append(server)
        if authorize:
            server.authorize(ssh_home.pubkey_line)
        if start:
            server.start()
        return server

    yield make
    errors = []
    for server in reversed(servers):
        try:
            server.close()
        except Exception as exc:  # keep closing the others
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def sshd(sshd_factory: Callable[..., SshdServer]) -> SshdServer:
    return sshd_factory()


@pytest.fixture
def ssh_client(ssh_home: ClientSetup, sshd: SshdServer, monkeypatch) -> ClientSetup:
    ssh_home.add_server("spark-test", sshd)
    monkeypatch.setenv("HOME", ssh_home.home)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return ssh_home


@pytest.fixture
async def ssh_conn(ssh_client: ClientSetup) -> AsyncIterator[object]:
    import asyncssh

    conn = await asyncssh.connect("spark-test")
    try:
        yield conn
    finally:
        conn.abort()


@pytest.fixture
def netns_sshd(sshd_factory: Callable[..., SshdServer]) -> Iterator[Callable[..., SshdServer]]:
    ok, why = netns_support()
    require(ok, why)
    made: list[tuple[SshdServer, NetnsPeer]] = []

    def make(**options) -> SshdServer:
        peer = NetnsPeer().create()
        try:
            server = sshd_factory(netns=peer, **options)
        except BaseException:
            peer.close()
            raise
        made.append((server, peer))
        return server

    yield make
    for server, peer in reversed(made):
        try:
            server.close()
        finally:
            peer.close()


@pytest.fixture
def ssh_agent() -> Iterator[SshAgent]:
    agent = SshAgent().start()
    yield agent
    agent.stop()


def pytest_report_header(config) -> str:
    have = "yes" if os.access(SSHD_BINARY, os.X_OK) else "NO"
    return f"sparktui test infra: sshd available: {have}; CI={in_ci()}"


#: Fixtures that start a real component (sshd, dockerd, llama.cpp, an agent, a
#: namespace). A test that uses one, or lives in a module named after one or after the
#: app's screens (Pilot runs are slow), is marked `infra`; `.ci/run` runs the rest
#: (`-m "not infra and not fuzz"`: parsers, services, CLI, simulator) on every
#: supported Python.
INFRA_FIXTURES = frozenset({
    "sshd_factory", "sshd", "ssh_client", "ssh_conn", "netns_sshd", "ssh_agent",
    "docker_engine", "llama_server", "llama_factory",
})
INFRA_MODULE_WORDS = ("sshd", "tmux", "llama", "docker", "netns", "keyring", "install",
                      "doctor", "completion", "_ui", "screen", "snapshot")


def pytest_collection_modifyitems(config, items) -> None:
    from hypothesis import is_hypothesis_test

    for item in items:
        # fuzzing is about inputs, not the interpreter: once, in the whole suite, is enough
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.fuzz)
        module = item.nodeid.split("::", 1)[0]
        if INFRA_FIXTURES.intersection(item.fixturenames) or any(
                word in module for word in INFRA_MODULE_WORDS):
            item.add_marker(pytest.mark.infra)
