"""The Serving figures of a real llama.cpp `llama-server --metrics`, through the real sshd.

`sparktui bench` loads the server (two requests at a time) while the Serving
service scrapes it through the device connection: the queue, the slots' KV
use and the token rates must move, and at rest the counters the service read
must equal the server's own /metrics read directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.core.prom import parse_prometheus, total
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.endpoints import EndpointConnector
from sparktui.services.serving import ServingMonitor
from tests.infra import REPO_ROOT
from tests.infra.llama import MODEL_ALIAS, LlamaCppServer, require_llama_server

pytestmark = pytest.mark.sshd

COUNTERS = ("llamacpp:prompt_tokens_total", "llamacpp:tokens_predicted_total",
            "llamacpp:n_decode_total")


@pytest.fixture
def llama_cpp(tmp_path):
    server = LlamaCppServer(require_llama_server(), str(tmp_path)).start(timeout=60.0)
    yield server
    server.stop()


async def test_figures_move_under_bench_and_match_metrics(ssh_client, llama_cpp):
    link = make_link(DeviceSpec.parse("spark-test"), dataclasses.replace(Settings()))
    link.start()
    await within(link.wait_connected(), 15)
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    monitor = ServingMonitor(connector)
    bench = None
    try:
        found = await connector.discover_device(link, ports=(llama_cpp.port,), docker=False)
        assert [e.models for e in found.endpoints] == [(MODEL_ALIAS,)]
        monitor.set_endpoints(found.endpoints)
        idle = (await monitor.scrape_all())[0]
        assert idle.error is None and idle.figures.engine == "llamacpp"
        assert idle.figures.running == 0 and idle.figures.slots.busy == 0
        assert idle.figures.slots.total == 2
        assert "ttft" in idle.figures.missing()  # llama.cpp has no histograms: missing, not 0

        bench = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sparktui", "bench", "--device", "spark-test",
            "--endpoint", f"http://localhost:{llama_cpp.port}/v1", "--model", MODEL_ALIAS,
            "--requests", "12", "--concurrency", "2", "--max-tokens", "200", "--json",
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        busy = []
        while bench.returncode is None:
            result = (await monitor.scrape_all())[0]
            if result.figures is not None:
                busy.append(result.figures)
            try:
                await within(bench.wait(), 0.05)
            except TimeoutError:
                pass
        _out, err = await bench.communicate()
        assert bench.returncode == 0, err.decode()[-2000:]
        assert any(f.running and f.running > 0 for f in busy), "the queue never moved"
        assert any(f.slots and f.slots.busy > 0 and f.kv_cache_pct and f.kv_cache_pct > 0
                   for f in busy), "the slots' KV use never moved"
        assert any(f.generation_tps and f.generation_tps > 0 for f in busy)
        assert any(f.itl and f.itl.mean for f in busy)  # mean time per token, from counters

        # at rest: what the service read is what the server says
        rest = (await monitor.scrape_all())[0]
        scraped = monitor.last_samples(rest.id)
        direct = parse_prometheus(llama_cpp.metrics_text())
        for name in COUNTERS:
            assert total(scraped, (name,)) == total(direct, (name,)), name
        assert total(direct, ("llamacpp:tokens_predicted_total",)) > 0
        assert rest.figures.running == total(direct, ("llamacpp:requests_processing",)) == 0
    finally:
        if bench is not None and bench.returncode is None:
            bench.kill()
            await bench.wait()
        await monitor.close()
        await connector.close()
        await link.close()
