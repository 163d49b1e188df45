"""The Serving service through a real sshd, against stand-ins for vLLM, SGLang, TRT-LLM, Ollama.

Those engines cannot run here (no GPU; far too big for CI), so each is a
plain HTTP server on loopback, the test device's side of the sshd, serving
the pages the projects document (tests/infra/engines.py; fixtures in
tests/fixtures/serving written from their docs, metric names and histogram
buckets). Discovery, the forwards and the scrapes are the real ones.
llama.cpp's own server is tested for real in test_serving_llama.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.endpoints import EndpointConnector
from sparktui.services.serving import ServingMonitor
from tests.infra import REPO_ROOT
from tests.infra.engines import EngineStandIn, fixture, json_page

pytestmark = pytest.mark.sshd


def models(*names: str):
    return [json_page({"object": "list", "data": [{"id": n, "object": "model"} for n in names]})]


@pytest.fixture
def stand_ins():
    servers = {
        "vllm": EngineStandIn({"/v1/models": models("Qwen/Qwen3-8B"),
                               "/metrics": [fixture("vllm-idle.prom"),
                                            fixture("vllm-busy.prom")]}),
        "sglang": EngineStandIn({"/v1/models": models("meta-llama/Llama-3.1-8B-Instruct"),
                                 "/metrics": [fixture("sglang-idle.prom"),
                                              fixture("sglang-busy.prom")]}),
        "trtllm": EngineStandIn({"/v1/models": models("Qwen/Qwen2.5-0.5B-Instruct"),
                                 "/metrics": [fixture("trtllm-idle.json"),
                                              fixture("trtllm-busy.json")]}),
        "ollama": EngineStandIn({"/api/tags": [json_page({"models": [{"name": "gpt-oss:20b"}]})],
                                 "/api/ps": [fixture("ollama-ps.json")]}),
        "plain": EngineStandIn({"/v1/models": models("no-metrics")}),
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


async def test_every_engine_read_through_the_device_connection(ssh_client, stand_ins):
    link = make_link(DeviceSpec.parse("spark-test"), dataclasses.replace(Settings()))
    link.start()
    await within(link.wait_connected(), 15)
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    try:
        ports = {s.port: name for name, s in stand_ins.items()}
        found = await connector.discover_device(link, ports=tuple(ports), docker=False)
        by_engine = {ports[e.spec.base.host_port[1]]: e for e in found.endpoints}
        assert set(by_engine) == set(stand_ins)
        monitor = ServingMonitor(connector)
        monitor.set_endpoints(found.endpoints)
        first = {ports[r.endpoint.spec.base.host_port[1]]: r for r in await monitor.scrape_all()}
        second = {ports[r.endpoint.spec.base.host_port[1]]: r
                  for r in await monitor.scrape_all()}
    finally:
        await connector.close()
        await link.close()

    assert all(r.error is None for r in second.values()), second
    vllm = second["vllm"].figures
    dt = vllm.t - first["vllm"].figures.t
    assert vllm.engine == "vllm" and (vllm.running, vllm.waiting) == (4, 2)
    assert vllm.kv_cache_pct == 37.5 and vllm.preemptions == 1
    assert vllm.prompt_tps * dt == pytest.approx(4000)  # the counter grew by 4000
    assert (vllm.ttft.p50, vllm.ttft.p95) == (pytest.approx(0.25), pytest.approx(0.625))
    assert vllm.spec_accept_pct == pytest.approx(70.0)

    sglang = second["sglang"].figures
    assert (sglang.engine, sglang.running, sglang.waiting) == ("sglang", 6, 3)
    assert sglang.kv_cache_pct == pytest.approx(28.0)
    assert (sglang.e2e.p50, sglang.e2e.p95) == (pytest.approx(5.0), pytest.approx(5.9))
    assert "preemptions" in sglang.missing()

    idle_trt, trt = first["trtllm"].figures, second["trtllm"].figures
    assert idle_trt.engine == "trtllm" and idle_trt.running is None  # no iteration yet
    assert (trt.running, trt.waiting, trt.kv_cache_pct) == (3, 1, 25.0)
    assert trt.itl.p95 == pytest.approx(0.040)

    ollama = second["ollama"].figures
    assert ollama.engine == "ollama" and ollama.models == ("gpt-oss:20b", "qwen3:8b")
    assert ollama.running is None and "running" in ollama.missing()

    plain = second["plain"].figures
    assert plain.engine == "openai" and "404" in plain.notes[0]
    assert len(plain.missing()) == 11  # nothing exposed: every figure is missing, none 0

    # charts: the history has both readings of the vLLM queue
    series = monitor.history.series((second["vllm"].id, "running"))
    assert series is not None and series.values() == [0.0, 4.0]


def test_serving_cli_json_and_text(ssh_client, stand_ins):
    """`sparktui serving` prints the same figures; missing ones as null / '—'."""
    port = stand_ins["sglang"].port
    base = [sys.executable, "-m", "sparktui", "serving", "spark-test", "--port", str(port),
            "--interval", "0.2"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    out = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60,
                         env=env, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    item = next(e for e in report["endpoints"] if e["endpoint"].endswith(f":{port}/v1"))
    assert item["figures"]["engine"] == "sglang" and item["figures"]["preemptions"] is None
    assert "preemptions" in item["figures"]["missing"]
    text = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO_ROOT)
    assert text.returncode == 0, text.stderr
    assert "SGLang" in text.stdout and "preempted —" in text.stdout
    assert "KV cache     28.0 %" in text.stdout
