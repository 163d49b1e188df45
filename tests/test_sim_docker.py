"""The demo's simulated Docker Engine, through the real docker-py (and, end to end, real SSH).

The engine runs on the test's event loop; docker-py blocks, so every client
call runs in a thread (asyncio.to_thread), as sparktui's own services do.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from sparktui.core.aio import within
from sparktui.core.docker_info import WATCHED_EVENTS, ContainerInfo
from sparktui.core.docker_presets import (
    PRESETS,
    PullProgress,
    create_kwargs,
    preset,
    spec_from_preset,
)
from sparktui.sim.device.standin import DOCKER_VERSION
from sparktui.sim.docker.engine import SimDockerEngine
from sparktui.sim.docker.seed import OUT

SEEDED = {"ollama", "vllm-llama31-8b", "open-webui", "comfyui-old"}


@pytest.fixture
async def engine() -> AsyncIterator[SimDockerEngine]:
    directory = tempfile.mkdtemp(prefix="sim-docker-")  # short: UNIX socket paths are limited
    running = await SimDockerEngine(os.path.join(directory, "docker.sock")).start()
    running.state.pull_seconds = 0.4
    try:
        yield running
    finally:
        await running.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def client(engine: SimDockerEngine) -> AsyncIterator[Any]:
    made = await asyncio.to_thread(docker.DockerClient, base_url="unix://" + engine.path,
                                   version="auto", timeout=10)
    try:
        yield made
    finally:
        await asyncio.to_thread(made.close)


def call(function, *args, **kwargs):
    return asyncio.to_thread(function, *args, **kwargs)


async def test_version(client) -> None:
    version = await call(client.version)
    assert version["Version"] == DOCKER_VERSION  # what the device facts report too
    assert version["ApiVersion"] == client.api.api_version == "1.51"


async def test_list_and_inspect_the_seeded_containers(client) -> None:
    every = await call(client.containers.list, all=True)
    assert {c.name for c in every} == SEEDED
    running = await call(client.api.containers)
    assert {c["Names"][0] for c in running} == {"/ollama", "/vllm-llama31-8b", "/open-webui"}
    named = await call(client.api.containers, all=True, filters={"name": "^/ollama$"})
    assert [c["Names"] for c in named] == [["/ollama"]]
    images = await call(client.api.images)  # what the Images screen lists
    assert "ollama/ollama:latest" in {tag for image in images for tag in image["RepoTags"]}

    vllm = ContainerInfo.from_inspect(
        await call(client.api.inspect_container, "vllm-llama31-8b"))
    assert vllm.state_text() == "running · healthy" and vllm.gpu == "all"
    assert vllm.ports == ("0.0.0.0:8000->8000/tcp",)  # the IPv6 twin is folded away

    old = ContainerInfo.from_inspect(await call(client.api.inspect_container, "comfyui-old"))
    assert old.state_text() == "exited (137, OOM)" and old.ports == ("0.0.0.0:8188->8188/tcp",)
    assert old.uptime(time.time()) > 86_000  # it died about a day ago
    webui = ContainerInfo.from_inspect(await call(client.api.inspect_container, "open-webui"))
    assert ("io.sparktui.demo.note", "[bold]not markup[/bold], shown as typed") in webui.labels
    with pytest.raises(docker.errors.NotFound):
        await call(client.api.inspect_container, "no-such-thing")


async def test_logs_are_multiplexed_coloured_and_follow(engine, client) -> None:
    out = (await call(client.api.logs, "vllm-llama31-8b", stdout=True, stderr=False,
                      tail="all")).decode()
    err = (await call(client.api.logs, "vllm-llama31-8b", stdout=False, stderr=True,
                      tail="all")).decode()
    assert "\x1b[32mINFO\x1b[0m" in out and "vLLM API server version" in out
    assert "WARNING" in err and "WARNING" not in out  # the frames kept their streams apart
    assert "HTTP/1.1" in out  # the traffic since it started
    tail = (await call(client.api.logs, "ollama", tail=3, timestamps=True)).decode()
    lines = tail.splitlines()
    assert len(lines) == 3 and all(line[:4].isdigit() and "Z " in line for line in lines)

    got: queue.Queue[bytes | None] = queue.Queue()

    def follow() -> None:
        stream = client.api.logs("open-webui", stream=True, follow=True, tail=0)
        for chunk in stream:
            got.put(chunk)
        got.put(None)  # the stream ended: the container stopped

    threading.Thread(target=follow, daemon=True).start()
    await asyncio.sleep(0.3)
    container = engine.state.container("open-webui")
    engine.state.log(container, OUT, "a line written just now")
    assert b"a line written just now" in await call(got.get, timeout=5)
    await call(client.api.stop, "open-webui")
    rest = b""
    while (chunk := await call(got.get, timeout=5)) is not None:
        rest += chunk
    assert b"Shutting down" in rest  # uvicorn's goodbye, then the end of the stream


async def test_stop_and_start_change_state_and_emit_events(engine, client) -> None:
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    stream = await call(client.events, decode=True,
                        filters={"type": "container", "event": list(WATCHED_EVENTS)})

    def read() -> None:
        try:
            for event in stream:
                events.put(event)
        except Exception as exc:  # closed by the test at the end
            events.put({"Action": f"ended: {exc}"})

    threading.Thread(target=read, daemon=True).start()
    try:
        await call(client.api.stop, "vllm-llama31-8b")
        seen = [(await call(events.get, timeout=5)) for _ in range(2)]
        assert [e["Action"] for e in seen] == ["die", "stop"]  # kill is filtered out
        assert seen[0]["Actor"]["Attributes"]["name"] == "vllm-llama31-8b"
        assert seen[0]["Actor"]["Attributes"]["exitCode"] == "0"
        assert seen[0]["Actor"]["Attributes"]["image"] == "nvcr.io/nvidia/vllm:25.09-py3"
        assert seen[0]["timeNano"] // 1_000_000_000 == seen[0]["time"]
        state = (await call(client.api.inspect_container, "vllm-llama31-8b"))["State"]
        assert state["Status"] == "exited" and not state["Running"]

        await call(client.api.start, "vllm-llama31-8b")
        assert (await call(events.get, timeout=5))["Action"] == "start"
        state = (await call(client.api.inspect_container, "vllm-llama31-8b"))["State"]
        assert state["Running"] and state["Health"]["Status"] == "starting"
    finally:
        await call(stream.close)


async def test_pull_reports_layer_progress(client) -> None:
    progress = PullProgress()
    started = time.monotonic()
    for event in await call(lambda: list(client.api.pull("nvcr.io/nvidia/vllm", tag="25.11-py3",
                                                         stream=True, decode=True))):
        progress.update(event)
    assert time.monotonic() - started >= 0.35  # spread over the engine's pull_seconds
    assert progress.layers_total == progress.layers_done == 4 and not progress.error
    assert progress.bytes_done == progress.bytes_total > 1_000_000_000
    assert progress.status == "Status: Downloaded newer image for nvcr.io/nvidia/vllm:25.11-py3"
    image = await call(client.images.get, "nvcr.io/nvidia/vllm:25.11-py3")
    assert image.attrs["RepoDigests"]
    with pytest.raises(docker.errors.APIError, match="unauthorized"):
        await call(lambda: list(client.api.pull(
            "nvcr.io/nim/meta/llama-3.1-8b-instruct-dgx-spark", tag="latest", stream=True)))


async def test_create_start_and_remove_a_deployed_server(engine, client) -> None:
    preset = next(p for p in PRESETS if p.key == "sglang")
    await call(lambda: list(client.api.pull(preset.image.split(":")[0],
                                            tag=preset.image.split(":")[1])))
    spec = spec_from_preset(preset, name="sglang-test")
    kwargs = create_kwargs(spec, home="/home/demo", secret_values={"HF_TOKEN": "hf_secret"})
    made = await call(client.containers.create, **kwargs)
    assert made.name == "sglang-test" and made.status == "created"
    await call(client.api.start, made.id)
    info = ContainerInfo.from_inspect(await call(client.api.inspect_container, made.id))
    assert info.running and info.gpu == "all" and info.ports == ("127.0.0.1:30000->30000/tcp",)
    assert ("io.sparktui.deploy", "sglang") in info.labels
    await asyncio.sleep(0.8)  # its startup lines come over a few seconds
    assert b"loading model Qwen/Qwen2.5-0.5B-Instruct" in await call(client.api.logs, made.id)

    with pytest.raises(docker.errors.APIError, match="already in use"):
        await call(client.containers.create, **kwargs)
    clash = create_kwargs(spec_from_preset(next(p for p in PRESETS if p.key == "vllm"),
                                           name="vllm-two"), home="/home/demo",
                           image="nvcr.io/nvidia/vllm:25.09-py3")
    second = await call(client.containers.create, **clash)
    with pytest.raises(docker.errors.APIError, match="port is already allocated"):
        await call(client.api.start, second.id)  # the seeded vLLM holds port 8000

    with pytest.raises(docker.errors.APIError, match="stop the container"):
        await call(client.api.remove_container, made.id)
    await call(client.api.remove_container, made.id, force=True)
    assert made.id not in engine.state.containers


async def test_anything_else_is_a_clear_404(client) -> None:
    with pytest.raises(docker.errors.APIError) as caught:
        await call(client.api.pause, "ollama")  # the demo does not pause
    assert caught.value.status_code == 404
    assert "not supported by the simulated engine" in str(caught.value.explanation)


# -- the simulated device's shell agrees: Docker installed, socket there, user in the group ----
async def _device_shell(engine: SimDockerEngine | None):
    """A simulated Spark (its Docker engine attached when given) and an SSH login as ann."""
    import asyncssh

    from sparktui.sim.device.gpu_model import SimDevice
    from sparktui.sim.ssh.server import start_sim

    server = await start_sim(device=SimDevice(seed=5, auto=False))
    workdir = tempfile.mkdtemp(prefix="sim-shell-")
    key, known_hosts = server.write_client_files(workdir)
    if engine is not None:
        await engine.attach(server)
    conn = await asyncssh.connect(server.host, server.port, username="ann", client_keys=[key],
                                  known_hosts=known_hosts, agent_path=None, config=None)

    async def run(command: str) -> tuple[str, str, int]:
        result = await conn.run(command)
        return str(result.stdout), str(result.stderr), result.exit_status or 0

    async def close() -> None:
        conn.close()
        await server.close()
        shutil.rmtree(workdir, ignore_errors=True)

    return run, close


@pytest.mark.parametrize("attached", [False, True])
async def test_the_shell_answers_the_docker_probe(engine, attached: bool) -> None:
    from sparktui.core.docker_problems import ProblemKind, classify, diagnose_command, parse_probe

    run, close = await _device_shell(engine if attached else None)
    try:
        probe = parse_probe((await run(diagnose_command("/var/run/docker.sock")))[0])
        if not attached:  # installed, daemon not running
            assert probe is not None and (probe.socket, probe.docker_cli) == ("missing", True)
            kind = classify("d", "/var/run/docker.sock", probe, "x").kind
            assert kind is ProblemKind.DAEMON_DOWN
            return
        assert probe is not None and (probe.socket, probe.access, probe.user) == (
            "socket", "ok", "ann")
        assert "docker" in (await run("id -nG"))[0].split()
        assert (await run('printf "%s" "$HOME"'))[0].endswith("/home/spark")
    finally:
        await close()


async def test_the_shell_answers_docker_ps_as_the_cli_does(engine) -> None:
    """Chat's endpoint discovery runs `docker ps --format '{{json .}}'` over SSH."""
    from sparktui.services.endpoints import DOCKER_PS, parse_docker_ps

    run, close = await _device_shell(None)
    try:
        out, err, status = await run(DOCKER_PS)  # installed, daemon not running
        assert (out, status) == ("", 1) and "Is the docker daemon running?" in err
    finally:
        await close()
    run, close = await _device_shell(engine)
    try:
        out, err, status = await run(DOCKER_PS)
        assert (err, status) == ("", 0)
        running = {c.name for c in engine.state.containers.values() if c.running}
        assert {json.loads(line)["Names"] for line in out.splitlines()} == running
        published = parse_docker_ps(out)
        assert published[11434].startswith("ollama (") and 8000 in published
        everything, _, _ = await run("docker ps -a --format '{{json .}}'")
        assert len(everything.splitlines()) == len(engine.state.containers) > len(running)
        _, err, status = await run("docker rm -f ollama")
        assert status == 1 and "not simulated" in err
    finally:
        await close()


# -- end to end: the demo device, its SSH socket forward, and the containers service ------------
async def test_demo_containers_through_the_ssh_socket_forward() -> None:
    from sparktui.services.config import Settings
    from sparktui.services.containers import ContainerService, ServiceState
    from sparktui.services.deploy import Deployer, DeployUpdate, http_probe
    from sparktui.services.devices import make_link
    from sparktui.sim.demo import start_demo

    demo = await start_demo()
    link = make_link(demo.spec, Settings(), ssh_options=demo.ssh_options)
    service = ContainerService(link, retry_interval=0.3, stats_interval=0.3)
    link.start()
    service.start()
    try:
        deadline = time.monotonic() + 15
        while service.state is not ServiceState.READY:
            assert time.monotonic() < deadline, f"not ready: {service.problem}"
            await asyncio.sleep(0.05)
        assert service.engine_version == DOCKER_VERSION
        assert {c.name for c in service.containers.values()} == SEEDED
        ollama = next(c for c in service.containers.values() if c.name == "ollama")
        service.set_watched({ollama.id})
        while ollama.id not in service.stats or service.stats[ollama.id].cpu_percent is None:
            assert time.monotonic() < deadline, "no CPU figure for ollama"
            await asyncio.sleep(0.05)

        await service.run_action("stop", ollama.id)
        while service.containers[ollama.id].running:  # the events stream says so
            assert time.monotonic() < deadline, "the stop never showed"
            await asyncio.sleep(0.05)

        assert service.transport is not None  # the shell's probe agrees with the engine
        problem = await service.diagnose(service.transport, "(test)")
        assert "nothing answers" in problem.message
        groups = await link.run("id -nG")
        assert "docker" in groups.stdout.split()

        # a one-key deploy: pull with progress, create, start, health through the device
        demo.docker.state.pull_seconds = 0.5  # type: ignore[attr-defined]
        updates: list[DeployUpdate] = []
        spec = spec_from_preset(preset("llamacpp"), name="llama-demo")
        result = await within(Deployer(service).deploy(
            spec, on_update=updates.append, poll_interval=0.2), 15)
        assert result.ok, (result.message, result.log_tail)
        assert result.ready is not None and result.ready.base_url == "http://127.0.0.1:30000/v1"
        pulls = [u.progress for u in updates if u.phase == "pull" and u.progress]
        assert pulls and pulls[-1].layers_done == 4
        assert any(u.phase == "health" for u in updates)  # it answered 503 while starting
        status, body = await http_probe(service, 30000, "/v1/models")
        assert status == 200 and "data" in body  # relayed to the demo's model server
        # its CUDA process is the container's own pid, placed in the container's cgroup
        pid = (await service.call(lambda client: client.api.inspect_container(
            result.container_id)))["State"]["Pid"]
        process = next(p for p in demo.server.device.compute_apps()  # type: ignore[attr-defined]
                       if p.pid == pid)
        assert process.container_id == result.container_id and process.used_memory_mib
        cgroup = await link.run(f'cat "$SPARKTUI_ROOT/proc/{pid}/cgroup"')  # what the loop reads
        assert cgroup.stdout == f"0::/system.slice/docker-{result.container_id}.scope\n"
    finally:
        await service.close()
        await link.close()
        await demo.close()
