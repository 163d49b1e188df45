"""Group 4 (and the chat half of 6): every read from a model server is bounded.

Each test points the real client at tests/reliability/hostile_http.py and
checks that it stops with a clear message after a few MB at most, within a
bound of time, and that no answer that lost data is reported as a success.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import pytest

from sparktui.core.aio import within
from sparktui.services.chat import ChatRequest, ChatService
from sparktui.services.endpoints import EndpointConnector, manual_spec
from tests.reliability.hostile_http import HostileServer

#: what one hostile answer may cost the client, at most
BUDGET_BYTES = 12 * 1024 * 1024


@pytest.fixture
async def hostile():
    servers: list[HostileServer] = []

    async def make(mode: str) -> HostileServer:
        server = await HostileServer(mode).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


@pytest.mark.parametrize("mode", ["endless-models", "endless-error", "endless-json"])
async def test_probe_of_an_endless_body_stops_with_a_message(hostile, mode: str) -> None:
    server = await hostile(mode)
    connector = EndpointConnector(lambda name: None)
    started = time.monotonic()
    try:
        endpoint = await connector.probe(manual_spec(server.url), timeout=3.0)
    finally:
        await connector.close()
    assert time.monotonic() - started < 10
    assert endpoint.error is not None and endpoint.models == ()
    assert server.sent < BUDGET_BYTES, f"the client took {server.sent} bytes"
    if mode != "endless-error":
        assert "not read further" in endpoint.error or "no complete answer" in endpoint.error


async def _answer(url: str, *, read_timeout: float = 30.0, total: float | None = None):
    connector = EndpointConnector(lambda name: None)
    chat = ChatService(connector, read_timeout=read_timeout, total_timeout=total)
    stream = await chat.answer(manual_spec(url), ChatRequest("m", [
        {"role": "user", "content": "hi"}]))
    async for _piece in stream:
        pass
    await connector.close()
    return stream


async def test_sse_data_lines_without_a_blank_line_stop(hostile) -> None:
    server = await hostile("sse-no-blank")
    stream = await _answer(server.url, total=20)
    assert stream.outcome.status == "error"
    assert "MiB; dropped unread" in (stream.outcome.error or "") or \
        "no text from the server" in (stream.outcome.error or "") or \
        "no complete answer" in (stream.outcome.error or "")


async def test_an_error_body_that_never_ends(hostile) -> None:
    server = await hostile("endless-error")
    started = time.monotonic()
    stream = await _answer(server.url, total=20)
    assert time.monotonic() - started < 15
    assert stream.outcome.status == "error" and "500" in (stream.outcome.error or "")
    assert server.sent < BUDGET_BYTES


async def test_keepalives_alone_do_not_hold_the_user_forever(hostile) -> None:
    server = await hostile("sse-keepalive")
    started = time.monotonic()
    stream = await _answer(server.url, read_timeout=2.0)
    assert time.monotonic() - started < 8
    assert stream.outcome.status == "error"
    assert "no text from the server for 2 s" in (stream.outcome.error or "")


async def test_the_whole_answer_has_a_deadline(hostile) -> None:
    server = await hostile("slow-answer")
    started = time.monotonic()
    stream = await _answer(server.url, total=1.5)
    assert time.monotonic() - started < 5
    assert stream.outcome.error == "no complete answer within 2 s; the partial answer is kept"
    assert stream.text.startswith("tok ")


async def test_a_huge_chunk_is_an_error_not_an_empty_success(hostile) -> None:
    server = await hostile("sse-huge-chunk")
    stream = await _answer(server.url)
    assert stream.outcome.status == "error", "was 'done' with an empty answer"
    assert "over 1 MiB; dropped unread" in (stream.outcome.error or "")


async def test_endless_text_stops_at_the_answer_limit(hostile) -> None:
    server = await hostile("sse-endless-text")
    stream = await _answer(server.url, total=60)
    assert stream.outcome.status == "error"
    assert "stopped there" in (stream.outcome.error or "")
    assert len(stream.text) <= 4 * 1024 * 1024


def test_cli_chat_against_keepalives_and_a_huge_chunk_exits_1(tmp_path) -> None:
    """`sparktui chat`: exit 1 and a sentence, for the tarpit and the dropped chunk."""
    code = (
        "import asyncio, sys\n"
        "from tests.reliability.hostile_http import HostileServer\n"
        "async def main():\n"
        "    s = await HostileServer(sys.argv[1]).start()\n"
        "    print(s.port, flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n")
    for mode, timeout, expected in (("sse-keepalive", "2", "no complete answer within 2 s"),
                                    ("sse-huge-chunk", "30", "dropped unread")):
        server = subprocess.Popen([sys.executable, "-c", code, mode], stdout=subprocess.PIPE,
                                  text=True)
        try:
            port = int(server.stdout.readline())
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "sparktui", "chat", "--endpoint",
                 f"http://127.0.0.1:{port}/v1", "--model", "m", "--timeout", timeout, "hi"],
                capture_output=True, text=True, timeout=60)
            assert done.returncode == 1, (mode, done.stderr)
            assert expected in done.stderr, done.stderr
            assert time.monotonic() - started < 30
        finally:
            server.kill()
            server.wait()


def test_rss_stays_small_against_every_hostile_mode() -> None:
    """One process, every mode: the peak RSS grows by a few MB, not by gigabytes."""
    code = (
        "import asyncio, resource\n"
        "from tests.reliability.test_reliability_reads import _answer\n"
        "from tests.reliability.hostile_http import HostileServer\n"
        "from sparktui.services.endpoints import EndpointConnector, manual_spec\n"
        "async def main():\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    for mode in ('endless-models', 'endless-json', 'endless-error'):\n"
        "        s = await HostileServer(mode).start()\n"
        "        c = EndpointConnector(lambda n: None)\n"
        "        await c.probe(manual_spec(s.url), timeout=3)\n"
        "        await c.close(); await s.close()\n"
        "    for mode in ('sse-no-blank', 'sse-huge-chunk', 'endless-error'):\n"
        "        s = await HostileServer(mode).start()\n"
        "        await _answer(s.url, total=10)\n"
        "        await s.close()\n"
        "    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    print((after - before) // 1024)\n"
        "asyncio.run(main())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    grown_mib = int(done.stdout.split()[-1])
    assert grown_mib < 200, f"peak RSS grew by {grown_mib} MiB"
    assert resource  # the child measured itself


@pytest.mark.sshd
async def test_an_ssh_drop_mid_answer_is_named_as_such(ssh_client, sshd, hostile) -> None:
    """Was: "nothing answered at localhost:PORT (connection refused ...)"."""
    from sparktui.core.device import DeviceSpec
    from sparktui.services.config import Settings
    from sparktui.services.devices import make_link
    from sparktui.services.endpoints import device_spec

    server = await hostile("slow-answer")
    settings = Settings(keepalive_interval=1.0, keepalive_count_max=2, reconnect_max_delay=30)
    link = make_link(DeviceSpec.parse("spark-test"), settings)
    link.start()
    connector = EndpointConnector(lambda name: link if name == link.name else None)
    try:
        await within(link.wait_connected(), 15)
        chat = ChatService(connector, read_timeout=10)
        spec = device_spec(link.name, server.port, host="127.0.0.1")
        stream = await chat.answer(spec, ChatRequest("m", [{"role": "user", "content": "hi"}]))
        pieces = aiter(stream)
        await within(anext(pieces), 10)  # the answer has begun
        sshd.kill_sessions()  # the device's sshd drops the connection
        outcome = await within(stream.wait(), 15)
        assert outcome.status == "error"
        assert outcome.error is not None
        assert outcome.error.startswith(f"the SSH connection to {link.name} dropped"), \
            outcome.error
        assert "refused" not in outcome.error
    finally:
        await connector.close()
        await link.close()
