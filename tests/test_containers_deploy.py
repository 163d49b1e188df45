"""Deploying a preset for real: busybox `httpd` plays the inference server.

Through the real sshd: the socket forward for Docker, `open_connection` on
the device for the health checks, the device's $HOME for the model caches.
"""

from __future__ import annotations

import asyncio
import time

import docker
import pytest

from sparktui.core.device import DeviceSpec
from sparktui.core.docker_presets import DEPLOY_LABEL, DeploySpec, preset, spec_from_preset
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.deploy import DEPLOY_READY_HOOKS, Deployer, DeployReady
from sparktui.services.devices import make_link
from tests.infra.docker import DockerEngine, FakeRegistry
from tests.infra.sshd import free_port

pytestmark = pytest.mark.sshd

FAST = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=1.0)
SECRET = "hf_not-a-real-token-0123456789"


@pytest.fixture
async def device(ssh_client, docker_engine: DockerEngine, tmp_path):
    link = make_link(DeviceSpec.parse("spark-test"), FAST)
    service = ContainerService(link, audit=AuditLog(tmp_path / "audit.jsonl"))
    link.start()
    service.start()
    deadline = time.monotonic() + 15
    while service.state is not ServiceState.READY:
        assert time.monotonic() < deadline, service.problem
        await asyncio.sleep(0.02)
    yield service
    await service.close()
    await link.close()


def busybox_spec(engine: DockerEngine, name: str, command: str | None = None) -> DeploySpec:
    """The vLLM preset, pointed at the busybox image serving /www (with /v1/models)."""
    spec = spec_from_preset(preset("vllm"), name=f"{name}-{engine.session}")
    spec.image = engine.image
    spec.command = command or "httpd -f -p 8000 -h /www"
    spec.host_port = free_port()
    spec.gpus = False
    return spec


def exists(engine: DockerEngine, name: str) -> bool:
    return bool(engine.client.api.containers(all=True, filters={"name": f"^/{name}$"}))


async def test_deploy_until_ready_then_teardown(device: ContainerService, docker_engine,
                                                sshd):
    spec = busybox_spec(docker_engine, "sp-deploy")
    spec.pin_digest = True
    updates, hooked = [], []
    deployer = Deployer(device)
    deployer.on_ready.append(hooked.append)
    DEPLOY_READY_HOOKS.append(hooked.append)
    try:
        result = await deployer.deploy(spec, on_update=updates.append,
                                       secret_values={"HF_TOKEN": SECRET},
                                       ready_timeout=30, poll_interval=0.2)
    finally:
        DEPLOY_READY_HOOKS.remove(hooked.append)
    assert result.ok, (result.message, result.log_tail)
    ready = result.ready
    assert ready == DeployReady("spark-test", spec.host_port,
                                f"http://127.0.0.1:{spec.host_port}/v1", spec.name, "vllm")
    assert hooked == [ready, ready]  # the module-wide hook and the deployer's own
    phases = [u.phase for u in updates]
    assert phases[0] == "prepare" and phases[-1] == "ready" and "start" in phases

    attrs = docker_engine.client.api.inspect_container(result.container_id)
    assert attrs["Config"]["Labels"][DEPLOY_LABEL] == "vllm"
    assert f"HF_TOKEN={SECRET}" in attrs["Config"]["Env"]
    assert attrs["Image"] == docker_engine.client.images.get(docker_engine.image).id  # pinned
    assert attrs["HostConfig"]["IpcMode"] == "host"
    binding = attrs["HostConfig"]["PortBindings"]["8000/tcp"][0]
    assert binding == {"HostIp": "127.0.0.1", "HostPort": str(spec.host_port)}
    cache = f"{sshd.remote_home}/.cache/huggingface"  # ~ on the device, made by the user
    assert any(m["Source"] == cache for m in attrs["Mounts"])

    audit = device.audit.path.read_text()
    assert SECRET not in audit
    entry = device.audit.entries()[-1]
    assert (entry["action"], entry["result"], entry["secrets"]) == ("deploy", "ok", ["HF_TOKEN"])

    await device.remove(result.container_id)
    assert not exists(docker_engine, spec.name)


async def test_missing_nvidia_runtime_says_so_and_leaves_nothing(device, docker_engine):
    spec = busybox_spec(docker_engine, "sp-gpu")
    spec.gpus = True  # --gpus all: this daemon has no NVIDIA runtime
    result = await Deployer(device).deploy(spec, ready_timeout=10, poll_interval=0.2)
    assert not result.ok
    assert "The NVIDIA container runtime is missing on spark-test" in result.message
    assert "sudo nvidia-ctk runtime configure --runtime=docker" in result.message
    assert "sudo systemctl restart docker" in result.message
    assert not exists(docker_engine, spec.name)
    assert device.audit.entries()[-1]["result"].startswith("failed: The NVIDIA container")


async def test_a_server_that_dies_is_reported_with_its_last_lines(device, docker_engine):
    command = "sh -c 'echo loading model; echo CUDA out of memory >&2; exit 3'"
    spec = busybox_spec(docker_engine, "sp-dies", command)
    result = await Deployer(device).deploy(spec, ready_timeout=10, poll_interval=0.2)
    assert not result.ok and not result.kept
    assert f"{spec.name} exited (status 3)" in result.message
    # stdout and stderr are copied separately: their relative order is not kept
    assert sorted(result.log_tail) == ["CUDA out of memory", "loading model"]
    assert not exists(docker_engine, spec.name)

    spec = busybox_spec(docker_engine, "sp-kept", command)
    spec.keep_on_failure = True
    result = await Deployer(device).deploy(spec, ready_timeout=10, poll_interval=0.2)
    assert not result.ok and result.kept
    assert exists(docker_engine, spec.name)
    docker_engine.client.api.remove_container(result.container_id, force=True)


async def test_no_answer_in_time_is_a_failure(device, docker_engine):
    spec = busybox_spec(docker_engine, "sp-silent", "sleep 600")
    result = await Deployer(device).deploy(spec, ready_timeout=1.0, poll_interval=0.2)
    assert not result.ok
    assert f"did not answer on http://127.0.0.1:{spec.host_port}/v1/models within 1 s" \
        in result.message
    assert not exists(docker_engine, spec.name)


async def test_name_clash_and_read_only(device, docker_engine):
    taken = docker_engine.run(["sleep", "600"], init=True, network_mode="none",
                              name=f"sp-taken-{docker_engine.session}")
    spec = busybox_spec(docker_engine, "sp-taken")
    result = await Deployer(device).deploy(spec, ready_timeout=5)
    assert not result.ok and "already exists" in result.message
    taken.reload()
    assert taken.status == "running"  # the existing one is untouched
    taken.remove(force=True)

    device.read_only = True
    spec = busybox_spec(docker_engine, "sp-ro")
    with pytest.raises(ReadOnlyError):
        await Deployer(device).deploy(spec)
    with pytest.raises(docker.errors.NotFound):
        docker_engine.client.containers.get(spec.name)


async def test_a_pull_shows_bytes_and_layers(device, docker_engine):
    registry = FakeRegistry()
    image = registry.image("sparktui-test/pulled", docker_engine.session)
    spec = busybox_spec(docker_engine, "sp-pull")
    spec.image = image
    spec.pin_digest = True
    updates = []
    try:
        result = await Deployer(device).deploy(spec, on_update=updates.append,
                                               ready_timeout=20, poll_interval=0.2)
        assert result.ok, (result.message, result.log_tail)
        pulls = [u for u in updates if u.phase == "pull" and u.progress is not None]
        last = pulls[-1].progress
        assert (last.layers_done, last.layers_total) == (1, 1)
        assert last.bytes_total == registry.layer_size == last.bytes_done
        assert "1/1 layers" in pulls[-1].message
        attrs = docker_engine.client.api.inspect_container(result.container_id)
        assert attrs["Config"]["Image"] == \
            f"127.0.0.1:{registry.port}/sparktui-test/pulled@{registry.manifest_digest}"
        await device.remove(result.container_id)
    finally:
        registry.close()
        for ref in (image, f"127.0.0.1:{registry.port}/sparktui-test/pulled"):
            try:
                docker_engine.client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
