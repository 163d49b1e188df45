"""ContainerService against a real dockerd, reached through a real sshd and the socket forward.

The sshd runs on this machine, so the "device's" /var/run/docker.sock is the
local one: everything still goes through asyncssh's UNIX socket forward.
"""

from __future__ import annotations

import asyncio
import json
import os
import socketserver
import stat
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from sparktui.core.device import DeviceSpec
from sparktui.core.docker_problems import ProblemKind
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.container_logs import LogFollower, read_logs
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.devices import make_link
from tests.infra import require
from tests.infra.docker import (
    DockerDaemon,
    DockerEngine,
    dockerd_binary,
    make_samples,
    remove_samples,
)

pytestmark = pytest.mark.sshd

FAST = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=1.0)


async def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.01)


async def open_service(alias: str, audit: AuditLog | None = None, **options):
    link = make_link(DeviceSpec.parse(alias), FAST)
    service = ContainerService(link, audit=audit, retry_interval=0.3, stats_interval=0.3,
                               **options)
    link.start()
    service.start()
    return link, service


@pytest.fixture(scope="module")
def samples(docker_engine: DockerEngine):
    made = make_samples(docker_engine, f"sp-svc-{docker_engine.session}")
    yield made
    remove_samples(made)


@pytest.fixture
async def device(ssh_client, docker_engine: DockerEngine, tmp_path):
    """A ContainerService on spark-test, ready; its audit log in tmp_path."""
    link, service = await open_service("spark-test", AuditLog(tmp_path / "audit.jsonl"))
    try:
        await wait_for(lambda: service.state is ServiceState.READY, 15, "docker ready")
        yield service
    finally:
        await service.close()
        await link.close()


def docker_cli(*args: str) -> str:
    """The docker CLI, run outside sparktui (as a user at another terminal would)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_forward_is_private_and_the_list_is_complete(device: ContainerService, samples):
    endpoint = device.endpoint
    assert endpoint is not None and endpoint.base_url.startswith("unix://")
    assert stat.S_IMODE(os.stat(os.path.dirname(endpoint.local_path)).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(endpoint.local_path).st_mode)
    assert device.engine_version and device.api_version
    rows = device.containers
    assert rows[samples.colours.id].state == "running"
    assert rows[samples.exits.id].state_text() == "exited (3)"
    markup = rows[samples.markup.id]
    assert ("note", "[bold red]x[/]") in markup.labels
    assert "[bold red]x[/]" in markup.command
    await wait_for(lambda: device.containers[samples.health.id].health == "healthy", 10,
                   "health_status event")


async def test_events_from_outside_arrive_without_polling(device: ContainerService,
                                                          docker_engine: DockerEngine):
    name = f"sp-ext-{docker_engine.session}"
    arrivals: list[tuple[str, float]] = []
    device.subscribe(lambda change: arrivals.append((change.kind, time.monotonic())))
    container_id = docker_cli("run", "-d", "--init", "--network", "none", "--name", name,
                              "--label", f"io.sparktui.test={docker_engine.session}",
                              docker_engine.image, "sleep", "600")
    await wait_for(lambda: container_id in device.containers, 3, "docker run seen")
    before = time.monotonic()
    docker_cli("stop", "-t", "5", name)
    stopped = time.monotonic()
    await wait_for(lambda: device.containers[container_id].state == "exited", 3,
                   "docker stop seen")
    seen = time.monotonic()
    print(f"\ndocker stop -> service: {seen - before:.3f} s from the command, "
          f"{seen - stopped:.3f} s after it returned")
    docker_cli("rename", name, name + "-renamed")
    await wait_for(lambda: device.containers[container_id].name == name + "-renamed", 3,
                   "rename seen")
    docker_cli("rm", container_id)
    await wait_for(lambda: container_id not in device.containers, 3, "destroy seen")


async def test_actions_are_audited_and_refused_read_only(device: ContainerService,
                                                         docker_engine: DockerEngine):
    box = docker_engine.run(["sleep", "600"], init=True, network_mode="none",
                            name=f"sp-act-{docker_engine.session}")
    await wait_for(lambda: box.id in device.containers, 3, "listed")

    def state() -> str:
        return device.containers[box.id].state if box.id in device.containers else "gone"

    for action, expected in (("pause", "paused"), ("unpause", "running"), ("stop", "exited"),
                             ("start", "running"), ("restart", "running")):
        await device.run_action(action, box.id)
        await wait_for(lambda expected=expected: state() == expected, 10, f"{action} done")
    device.read_only = True
    with pytest.raises(ReadOnlyError, match="read-only"):
        await device.run_action("stop", box.id)
    with pytest.raises(ReadOnlyError):
        await device.remove(box.id)
    assert state() == "running"
    device.read_only = False
    await device.remove(box.id, volumes=True)
    await wait_for(lambda: state() == "gone", 5, "removed")
    entries = device.audit.entries()
    assert [(e["action"], e["result"]) for e in entries] == [
        ("container.pause", "ok"), ("container.unpause", "ok"), ("container.stop", "ok"),
        ("container.start", "ok"), ("container.restart", "ok"), ("container.remove", "ok")]
    assert all(e["device"] == "spark-test" and e["target"] == box.name for e in entries)


async def test_stats_only_for_watched_containers(device: ContainerService, samples):
    device.set_watched({samples.colours.id})
    await wait_for(lambda: samples.colours.id in device.stats, 5, "stats of the watched one")
    await wait_for(lambda: device.stats[samples.colours.id].cpu_percent is not None, 5,
                   "a CPU figure (two samples)")
    assert device.stats[samples.colours.id].mem_used
    assert samples.markup.id not in device.stats
    device.set_watched(set())


async def test_logs_tail_then_follow(device: ContainerService, docker_engine: DockerEngine,
                                     samples):
    lines = await read_logs(device, samples.colours.id)
    texts = [line.text for line in lines]
    assert texts[0] == "\x1b[31mred\x1b[0m plain"
    assert "[bold red]markup[/] stays" in texts
    assert all(line.timestamp for line in lines)
    assert [line.text for line in await read_logs(device, samples.exits.id, tail=1)] == ["bye"]

    box = docker_engine.run(["sh", "-c", "for i in $(seq 1 50); do echo line-$i; sleep 0.05;"
                             " done; exec sleep 600"], init=True, network_mode="none",
                            name=f"sp-follow-{docker_engine.session}")
    got: list[str] = []
    ended: list[str | None] = []
    follower = LogFollower(device, box.id, on_lines=lambda ls: got.extend(x.text for x in ls),
                           on_end=ended.append, tail=0, follow=True)
    follower.start()
    try:
        await wait_for(lambda: "line-50" in got, 10, "followed lines")
    finally:
        follower.close()
    await wait_for(lambda: not follower.running, 5, "follower thread ended")
    assert ended == []  # closed by its owner: nobody to tell any more
    box.remove(force=True)


async def test_reconnect_rebuilds_the_forward_and_resyncs(ssh_client, sshd, docker_engine,
                                                          samples):
    link, service = await open_service("spark-test")
    try:
        await wait_for(lambda: service.state is ServiceState.READY, 15, "ready")
        old_dir = os.path.dirname(service.endpoint.local_path)
        sshd.stop(kill_sessions=True)
        await wait_for(lambda: service.state is ServiceState.OFFLINE, 10, "offline")
        assert not os.path.exists(old_dir)
        # changes while the device is unreachable: only a resync can show them
        box = docker_engine.run(["sleep", "600"], init=True, network_mode="none",
                                name=f"sp-gap-{docker_engine.session}")
        sshd.restart()  # same port, same host key
        await wait_for(lambda: service.state is ServiceState.READY, 20, "ready again")
        assert box.id in service.containers
        assert os.path.dirname(service.endpoint.local_path) != old_dir
        box.remove(force=True)
        await wait_for(lambda: box.id not in service.containers, 5, "events after reconnect")
    finally:
        await service.close()
        await link.close()


# -- the problems, each with its own message ------------------------------------------------

async def problem_of(alias: str, **options):
    link, service = await open_service(alias, **options)
    try:
        await wait_for(lambda: service.state is ServiceState.PROBLEM, 15, "a problem")
        return service.problem
    finally:
        await service.close()
        await link.close()


async def test_not_installed(ssh_home, sshd_factory, monkeypatch, docker_engine):
    # no docker on PATH and no socket: what a box without Docker looks like
    server = sshd_factory(env={"PATH": "/nonexistent-bin"})
    ssh_home.add_server("spark-nodocker", server)
    monkeypatch.setenv("HOME", ssh_home.home)
    problem = await problem_of("spark-nodocker", socket_path="/nonexistent/docker.sock")
    assert problem.kind is ProblemKind.NOT_INSTALLED
    assert "Docker is not installed on spark-nodocker" in problem.message


TEST_USER = "sparktui-nodock"


@pytest.fixture
def user_outside_docker_group():
    """A real user, not in the docker group, who may log in with the test key."""
    exists = subprocess.run(["id", TEST_USER], capture_output=True).returncode == 0
    if not exists:
        # '*' is "no password", not "locked": sshd without PAM refuses locked accounts
        result = subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh",
                                 "-p", "*", TEST_USER], capture_output=True, text=True)
        require(result.returncode == 0, f"useradd (root): {result.stderr.strip()}")
    yield TEST_USER
    if not exists:
        subprocess.run(["userdel", TEST_USER], capture_output=True, check=False)


async def test_permission_denied_names_the_group_and_the_fix(
        ssh_home, sshd_factory, monkeypatch, docker_engine, user_outside_docker_group):
    socket_stat = os.stat("/var/run/docker.sock")
    assert not socket_stat.st_mode & stat.S_IWOTH, "the socket must not be world-writable"
    server = sshd_factory()
    os.chmod(server.authorized_keys_path, 0o644)  # sshd reads it as the user
    ssh_home.add_server("spark-user", server, User=user_outside_docker_group)
    monkeypatch.setenv("HOME", ssh_home.home)
    problem = await problem_of("spark-user")
    assert problem.kind is ProblemKind.PERMISSION
    assert f"the user {user_outside_docker_group} is not in the 'docker' group" \
        in problem.message
    assert f"sudo usermod -aG docker {user_outside_docker_group}" in problem.message
    assert "log in again" in problem.message


async def test_daemon_down_then_back(ssh_client, docker_engine):
    require(dockerd_binary(), "dockerd (apt-get install docker.io)")
    root = tempfile.mkdtemp(prefix="spd-")  # short: containerd's socket paths live in it
    path = os.path.join(root, "docker.sock")
    daemon = DockerDaemon(path, root=root)
    link, service = await open_service("spark-test", socket_path=path)
    try:
        await wait_for(lambda: service.state is ServiceState.PROBLEM, 10, "no daemon yet")
        assert service.problem.kind is ProblemKind.DAEMON_DOWN
        assert "The Docker daemon is not running on spark-test" in service.problem.message
        assert "sudo systemctl start docker" in service.problem.message
        await asyncio.to_thread(daemon.start)
        await wait_for(lambda: service.state is ServiceState.READY, 15, "recovered")
        await asyncio.to_thread(daemon.stop)
        await wait_for(lambda: service.state is ServiceState.PROBLEM, 10, "down again")
        assert service.problem.kind is ProblemKind.DAEMON_DOWN
        await asyncio.to_thread(daemon.start)
        await wait_for(lambda: service.state is ServiceState.READY, 15, "recovered again")
    finally:
        await service.close()
        await link.close()
        await asyncio.to_thread(daemon.close)


class _OldDockerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"Version": "17.06.0-ce", "ApiVersion": "1.30",
                           "MinAPIVersion": "1.12"}).encode()
        if self.path.endswith("/_ping"):
            body = b"OK"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # quiet: a UNIX client has no address to log
        pass


async def test_api_too_old(ssh_client, tmp_path, docker_engine):
    path = str(tmp_path / "old-docker.sock")
    server = socketserver.ThreadingUnixStreamServer(path, _OldDockerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        problem = await problem_of("spark-test", socket_path=path)
    finally:
        server.shutdown()
        server.server_close()
    assert problem.kind is ProblemKind.API_TOO_OLD
    assert "Engine 17.06.0-ce speaks API 1.30" in problem.message
    assert "needs API 1.40" in problem.message
