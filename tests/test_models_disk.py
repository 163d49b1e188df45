"""Models on disk through a real sshd: a real HF cache, a download in progress, deletes.

The cache is made by `huggingface_hub.hf_hub_download` itself, from a local
stand-in for the Hub (tests/infra/hfhub.py), into the test device's $HOME, so
its layout is exactly the library's. One model is mounted by a running
busybox container on the shared dockerd: deleting it must be refused; an
unused one is deleted, audited; read-only mode refuses every delete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import threading

import pytest

from sparktui.core.device import DeviceSpec
from sparktui.core.fit import FitInput, weigh
from sparktui.services.audit import AuditLog, ReadOnlyError
from sparktui.services.config import Settings
from sparktui.services.containers import ContainerService, ServiceState
from sparktui.services.devices import make_link
from sparktui.services.fit_check import FitCheck
from sparktui.services.models_disk import ModelDeleteError, ModelStore
from tests.infra import REPO_ROOT
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
        out, err = await asyncio.wait_for(fit.communicate(), 60)
        report = json.loads(out)
        assert report["kv_per_token_bytes"] == 256, err.decode()
        assert report["mem_free_bytes"] and report["mem_available_bytes"]
        assert fit.returncode == {"yes": 0, "tight": 3, "no": 4}[report["verdict"]]
        assert any(line.startswith("MemFree now") for line in report["arithmetic"])

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
