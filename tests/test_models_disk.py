"""Models on disk through a real sshd: a real HF cache, a download in progress, deletes.

The cache is made by `huggingface_hub.hf_hub_download` itself, from a local
stand-in for the Hub (tests/infra/hfhub.py), into the test device's $HOME, so
its layout is exactly the library's. One model is mounted by a running
busybox container on the shared dockerd: deleting it must be refused; an
unused one is deleted, audited; read-only mode refuses every delete. Ollama's
models are listed and deleted through its API (a stand-in of its documented
/api/tags, /api/ps and DELETE /api/delete, tests/infra/engines.py: there is no
real `ollama` here), reached through the device connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import threading

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.core.fit import FitInput, weigh
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.devices import make_link
from sparktui.services.endpoints import EndpointConnector
from sparktui.services.fit_check import FitCheck
from sparktui.services.models_disk import ModelDeleteError, ModelStore
from tests.infra import REPO_ROOT
from tests.infra.engines import OllamaStandIn
from tests.infra.hfhub import HubStandIn

pytestmark = pytest.mark.sshd

CONFIG = {"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "hidden_size": 64}
WEIGHTS = b"w" * 200_000
BIG = b"b" * 3_000_000  # served slowly: the download stays in progress while we watch


async def until(predicate, timeout: float, what: str, interval: float = 0.05):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)


@pytest.fixture
def hub():
    stand_in = HubStandIn({
        "acme/used-model": {"config.json": json.dumps(CONFIG).encode(),
                            "model.safetensors": WEIGHTS},
        "acme/old-model": {"config.json": b"{}", "model.safetensors": WEIGHTS[:1000]},
        "acme/big-model": {"model.safetensors": BIG},
    }, slow={"model.safetensors"}, piece=16384, pause_s=0.05)
    yield stand_in
    stand_in.close()


async def test_list_watch_download_fit_and_delete(ssh_client, sshd, docker_engine, hub,
                                                  tmp_path):
    hf_home = os.path.join(sshd.remote_home, ".cache", "huggingface")
    hub.release.set()  # the two small models download at full speed
    for repo in ("acme/used-model", "acme/old-model"):
        for name in hub.files[repo]:
            await asyncio.to_thread(hub.download, hf_home, repo, name)
    hub.release.clear()
    background = threading.Thread(target=hub.download,
                                  args=(hf_home, "acme/big-model", "model.safetensors"),
                                  daemon=True)
    background.start()
    used_path = os.path.join(hf_home, "hub", "models--acme--used-model")
    container = docker_engine.run(["sleep", "600"], name=f"sp-models-{docker_engine.session}",
                                  volumes={used_path: {"bind": "/model", "mode": "ro"}})

    link = make_link(DeviceSpec.parse("spark-test"), dataclasses.replace(Settings()))
    service = ContainerService(link, retry_interval=0.3)
    link.start()
    service.start()
    audit = AuditLog(tmp_path / "audit.jsonl")
    store = ModelStore(link, containers=service, audit=audit)
    try:
        await until(lambda: _ready(service), 20, "docker ready")
        listing = await store.refresh()
        by_name = {m.name: m for m in listing.models}
        # the double-hyphen folder names read back as ORG/NAME
        assert {"acme/used-model", "acme/old-model", "acme/big-model"} <= set(by_name)
        used, old = by_name["acme/used-model"], by_name["acme/old-model"]
        assert used.size_bytes == len(WEIGHTS) + len(json.dumps(CONFIG))
        assert used.revision and used.last_used is not None
        assert used.in_use_by == (container.name,) and old.in_use_by == ()

        # the download in progress: its .incomplete blob grows between two reads
        first = by_name["acme/big-model"].downloading_bytes

        async def grown():
            again = await store.refresh()
            big = next(m for m in again.models if m.name == "acme/big-model")
            return big if big.downloading_bytes > first else None

        big = await until(grown, 20, "the .incomplete blob to grow", interval=0.2)
        assert big.size_bytes == 0 and big.downloading
        assert store.download_rate(big) is not None and store.download_rate(big) > 0
        hub.release.set()

        # the fit reads the snapshot's config.json through the same connection
        config = await store.read_config(used)
        assert config == CONFIG
        verdict = weigh(FitInput(used.name, used.size_bytes, config, 1024,
                                 mem_free=64 * 2**30, mem_available=100 * 2**30))
        # 2 layers x 2 x 2 KV heads x 16 head_dim x 2 B = 256 B per token
        assert verdict.kv_per_token_bytes == 256 and verdict.verdict == "yes"

        # the same through `sparktui fit`, against the device's MemFree/MemAvailable now
        fit = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sparktui", "fit", "spark-test", "acme/used-model",
            "--context", "1024", "--json", cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": REPO_ROOT},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await within(fit.communicate(), 60)
        report = json.loads(out)
        assert report["kv_per_token_bytes"] == 256, err.decode()
        assert report["mem_free_bytes"] and report["mem_available_bytes"]
        assert fit.returncode == {"yes": 0, "tight": 3, "no": 4}[report["verdict"]]
        assert any(line.startswith("MemFree now") for line in report["arithmetic"])

        # a server's command line, weighed as the deploy form weighs it: vLLM by its share
        served = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sparktui", "fit", "spark-test", "--json", "--serve",
            "vllm serve acme/used-model --max-model-len 1024 --gpu-memory-utilization 0.5",
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await within(served.communicate(), 60)
        by_command = json.loads(out)
        assert by_command["model"] == "acme/used-model", err.decode()
        assert by_command["need_bytes"] == report["need_bytes"]  # the model's own need
        assert by_command["reserve_bytes"] == int(0.5 * by_command["mem_total_bytes"])
        assert "context 1024 tokens, from --max-model-len" in by_command["arithmetic"]

        # the deploy form's check weighs a server's command the same way: the model found
        # in the command, its config read once, the context from --max-model-len
        check = FitCheck(store)
        await check.load()
        command = "vllm serve acme/used-model --max-model-len 1024 --host 0.0.0.0"
        first_look = check.for_command(command)
        assert first_look.cached is not None and first_look.cached.name == "acme/used-model"
        assert first_look.verdict.kv_bytes is None  # config.json not read yet: said missing
        await check.config(first_look.cached)
        weighed = check.for_command(command)
        assert weighed.verdict.need_bytes == report["need_bytes"]  # as `sparktui fit` said
        assert weighed.verdict.verdict == "unknown"  # no telemetry handed in: no memory
        assert "context 1024 tokens, from --max-model-len" in weighed.arithmetic
        absent = check.for_command("vllm serve acme/not-here")
        assert absent.model == "acme/not-here" and absent.verdict.weights_bytes is None

        with pytest.raises(ModelDeleteError, match="in use by"):
            await store.delete(used)
        assert os.path.isdir(used_path)
        readonly = ModelStore(link, containers=service, audit=audit, read_only=True)
        readonly.listing = store.listing
        with pytest.raises(ReadOnlyError):
            await readonly.delete(old)
        await store.delete(old)
        assert not os.path.exists(old.path)
        assert "acme/old-model" not in {m.name for m in (await store.refresh()).models}
        records = [(e["action"], e["target"], e["result"]) for e in audit.entries()]
        assert ("model.delete", "acme/used-model",
                f"refused: in use by {container.name}") in records
        assert ("model.delete", "acme/old-model", "ok") in records
    finally:
        hub.release.set()
        container.remove(force=True)
        await service.close()
        await link.close()
        background.join(30)


async def _ready(service: ContainerService) -> bool:
    return service.state is ServiceState.READY


@pytest.fixture
def ollama():
    # no real `ollama` here (it needs its models and, for anything useful, a GPU): a
    # stand-in serving its documented model API, behind the test sshd like a device's
    stand_in = OllamaStandIn({"gpt-oss:20b": 13_780_173_724, "qwen3:8b": 5_225_388_164,
                              "llama3.2:1b": 1_321_098_329}, loaded=("gpt-oss:20b",)).start()
    yield stand_in
    stand_in.stop()


async def test_ollama_models_listed_and_deleted_through_its_api(ssh_client, ollama, tmp_path):
    link = make_link(DeviceSpec.parse("spark-test"), dataclasses.replace(Settings()))
    link.start()
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    audit = AuditLog(tmp_path / "audit.jsonl")
    store = ModelStore(link, connector=connector, audit=audit)
    try:
        await within(link.wait_connected(), 15)
        found = await connector.discover_device(link, ports=(ollama.port,), docker=False)
        assert [e.kind for e in found.endpoints] == ["ollama"]
        listing = await store.refresh(found.endpoints)
        by_name = {m.name: m for m in listing.models if m.source == "ollama"}
        assert set(by_name) == {"gpt-oss:20b", "qwen3:8b", "llama3.2:1b"}
        assert by_name["qwen3:8b"].size_bytes == 5_225_388_164
        assert by_name["gpt-oss:20b"].in_use_by == ("loaded in Ollama",)

        # loaded: refused before any request; read-only: refused too
        with pytest.raises(ModelDeleteError, match="in use"):
            await store.delete(by_name["gpt-oss:20b"])
        readonly = ModelStore(link, connector=connector, audit=audit, read_only=True)
        readonly.listing, readonly.ollama_endpoints = store.listing, store.ollama_endpoints
        with pytest.raises(ReadOnlyError):
            await readonly.delete(by_name["qwen3:8b"])
        assert ollama.deletes == []

        # an unused one goes through Ollama's DELETE /api/delete, through the device
        await store.delete(by_name["qwen3:8b"])
        assert ollama.deletes == [{"model": "qwen3:8b"}]
        again = await store.refresh(found.endpoints)
        assert "qwen3:8b" not in {m.name for m in again.models}

        # gone meanwhile (someone ran `ollama rm`): Ollama's 404 is said, not hidden
        stale = next(m for m in again.models if m.name == "llama3.2:1b")
        del ollama.models["llama3.2:1b"]
        with pytest.raises(ModelDeleteError, match="HTTP 404"):
            await store.delete(stale)
        records = [(e["action"], e["target"], e["result"]) for e in audit.entries()]
        assert ("model.delete", "gpt-oss:20b", "refused: in use by loaded in Ollama") in records
        assert ("model.delete", "qwen3:8b", "ok") in records
        assert ("model.delete", "llama3.2:1b", "failed: HTTP 404") in records
    finally:
        await connector.close()
        await link.close()
