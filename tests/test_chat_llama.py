"""A real model server (llama.cpp) reached through a real sshd's forward, as on a Spark.

The sshd runs on this machine, so "localhost:PORT on the device" is the
llama server's loopback port: discovery, streaming, stopping and the
figures all go through the SSH connection. The sessions' nvidia-smi is the
stand-in (tests/infra/fake_nvidia_smi.py), so energy figures are real
arithmetic on simulated power. Kept short: tiny max_tokens everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from sparktui.core.aio import within
from sparktui.core.device import DeviceSpec
from sparktui.services.chat import ChatRequest, ChatService
from sparktui.services.config import Settings
from sparktui.services.devices import make_link
from sparktui.services.endpoints import EndpointConnector
from sparktui.services.link import DeviceLink
from sparktui.services.telemetry import TelemetryService
from tests.infra import REPO_ROOT
from tests.infra.llama import MODEL_ALIAS, LlamaServer

pytestmark = pytest.mark.sshd

SETTINGS = dataclasses.replace(Settings(), refresh_interval=0.2)
HELLO = [{"role": "user", "content": "hello"}]


async def connect() -> DeviceLink:
    link = make_link(DeviceSpec.parse("spark-test"), SETTINGS)
    link.start()
    await within(link.wait_connected(), 15)
    return link


async def first_power(telemetry: TelemetryService) -> None:
    for _ in range(200):
        if any(g.power_w is not None for g in telemetry.latest.gpus):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no GPU power reading: {telemetry.latest.gpu_problem}")


async def test_discover_stream_and_figures_through_the_forward(ssh_client,
                                                               llama_server: LlamaServer):
    link = await connect()
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    telemetry = TelemetryService(link, SETTINGS)
    telemetry.start()
    try:
        found = await connector.discover_device(link, ports=(llama_server.port, 8888))
        assert [e.spec.url for e in found.endpoints] == \
            [f"http://localhost:{llama_server.port}/v1"]
        endpoint = found.endpoints[0]
        assert endpoint.models == (MODEL_ALIAS,) and endpoint.spec.device == "spark-test"
        await first_power(telemetry)
        chat = ChatService(connector)
        stream = await chat.answer(endpoint.spec, ChatRequest(MODEL_ALIAS, HELLO, 0.0, 24),
                                   telemetry=telemetry)
        text = "".join([piece async for piece in stream])
        route = connector._routes[endpoint.id]
        # a private UNIX socket, not a loopback TCP port any local user could use
        assert route.forward is not None and isinstance(route.forward.listen, str)
        assert os.stat(route.forward.listen).st_mode & 0o077 == 0
        outcome, figures = stream.outcome, stream.figures
        assert outcome.status == "done", outcome.error
        assert outcome.finish_reason == "length"
        assert text and "\x1b" not in text
        assert figures.ttft_s is not None and 0 < figures.ttft_s < 30
        assert figures.tokens > 0 and figures.tokens_per_s() is not None
        if figures.estimated:  # this llama-cpp-python sends no usage chunk: say so
            assert any("estimated" in note for note in outcome.notes)
        assert figures.energy_j is not None and figures.energy_j > 0
        assert figures.tokens_per_joule is not None
    finally:
        await telemetry.close()
        await connector.close()
        await link.close()


async def test_stop_midway_and_server_killed_midway(ssh_client, llama_server: LlamaServer,
                                                    llama_factory):
    link = await connect()
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    chat = ChatService(connector)
    try:
        found = await connector.discover_device(link, ports=(llama_server.port,), docker=False)
        spec = found.endpoints[0].spec
        stream = await chat.answer(spec, ChatRequest(MODEL_ALIAS, HELLO, 0.0, 400))
        async for _piece in stream:
            if stream.figures.chunks >= 3:
                break
        await stream.stop()
        assert stream.outcome.status == "stopped" and stream.text
        kept = stream.text
        assert stream.figures.chunks < 400

        doomed = llama_factory()
        found = await connector.discover_device(link, ports=(doomed.port,), docker=False)
        stream = await chat.answer(found.endpoints[0].spec,
                                   ChatRequest(MODEL_ALIAS, HELLO, 0.0, 400))
        async for _piece in stream:
            if stream.figures.chunks >= 3 and doomed.proc and doomed.proc.poll() is None:
                doomed.kill()
        assert stream.outcome.status == "error"  # killed long before 400 tokens
        assert stream.text and "partial answer is kept" in stream.outcome.error
        assert kept  # the stopped answer's text was not touched by the later one
    finally:
        await connector.close()
        await link.close()


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "sparktui", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_cli_chat_direct_and_through_a_device(ssh_client, llama_server: LlamaServer) -> None:
    direct = run_cli("chat", "--endpoint", llama_server.url, "--model", MODEL_ALIAS,
                     "--max-tokens", "8", "--json", "hello")
    assert direct.returncode == 0, direct.stderr
    result = json.loads(direct.stdout)
    assert result["status"] == "done" and result["tokens"] > 0 and result["ttft_s"] > 0
    assert result["device"] is None and result["energy_j"] is None

    via = run_cli("chat", "--device", "spark-test", "--port", str(llama_server.port),
                  "--max-tokens", "8", "hello there")
    assert via.returncode == 0, via.stderr
    assert via.stdout.strip()
    assert f"localhost:{llama_server.port}" in via.stderr and MODEL_ALIAS in via.stderr
    assert "tok/s" in via.stderr and "tok/J" in via.stderr


def test_cli_bench_on_a_device(ssh_client, llama_server: LlamaServer) -> None:
    done = run_cli("bench", "--device", "spark-test", "--port", str(llama_server.port),
                   "--model", MODEL_ALIAS, "--requests", "4", "--concurrency", "2",
                   "--max-tokens", "8", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] == 4 and report["errors"] == 0, report["error_messages"]
    assert report["ttft_p50_s"] > 0 and report["ttft_p95_s"] >= report["ttft_p50_s"]
    assert report["total_tokens_per_s"] > 0
    assert report["tokens_per_j"] is not None and report["energy_j"] > 0


def test_cli_chat_says_why_when_nothing_answers(ssh_client) -> None:
    failed = run_cli("chat", "--endpoint", "http://127.0.0.1:9", "--model", "m", "hi")
    assert failed.returncode == 1
    assert "connection refused" in failed.stderr
    usage = run_cli("chat", "--demo")
    assert usage.returncode == 2 and "no prompt" in usage.stderr
