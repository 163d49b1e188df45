"""Answers that go wrong, against a small scriptable HTTP server: every failure is an outcome.

The server is a few lines of asyncio: each test hands it a script (what to
send back), and it records every request's headers, so a test can also
prove that an API key never reached the wrong endpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from sparktui.core.aio import within
from sparktui.services.chat import ChatRequest, ChatService
from sparktui.services.endpoints import EndpointConnector, manual_spec

Script = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class ScriptServer:
    script: Script
    port: int = 0
    seen: list[dict[str, str]] = field(default_factory=list)  # headers of each request
    bodies: list[dict] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None

    async def start(self) -> ScriptServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", 0))
            body = await reader.readexactly(length) if length else b""
            self.seen.append(headers)
            if body:
                self.bodies.append(json.loads(body))
            await self.script(writer)
            # wait for the client to go: a stop must close the connection
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.disconnected.set()
            writer.close()


def respond(status: int, payload: object, headers: str = "") -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        data = json.dumps(payload).encode()
        # one request per connection: the client opens a new one for the next
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}"
                     f"connection: close\r\ncontent-length: {len(data)}\r\n\r\n".encode()
                     + data)
        await writer.drain()
        writer.close()
    return script


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    return b"data: " + json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]}) \
        .encode() + b"\n\n"


def sse(*parts: bytes, abort_after: bool = False, delay: float = 0.0) -> Script:
    async def script(writer: asyncio.StreamWriter) -> None:
        # no content-length: the body ends when the connection does (HTTP/1.0 style)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"connection: close\r\n\r\n")
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(delay)
        if abort_after:
            writer.transport.abort()  # the server process died: no clean end
        else:
            writer.close()
    return script


class Keys:
    """A stand-in SecretStore: get() answers from a dict."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    async def get(self, name: str) -> str | None:
        return self.keys.get(name)


async def ask(url: str, *, model: str = "m", read_timeout: float = 10.0,
              connector: EndpointConnector | None = None):
    connector = connector or EndpointConnector(lambda name: None)
    chat = ChatService(connector, read_timeout=read_timeout)
    stream = await chat.answer(manual_spec(url), ChatRequest(model, [
        {"role": "user", "content": "hi"}], max_tokens=8))
    pieces = [piece async for piece in stream]
    await connector.close()
    assert "".join(pieces) == stream.text
    return stream


@pytest.fixture
async def serve():
    servers: list[ScriptServer] = []

    async def make(script: Script) -> ScriptServer:
        server = await ScriptServer(script).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()


async def test_connection_refused() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    stream = await ask(f"http://127.0.0.1:{port}")
    assert stream.outcome.status == "error"
    assert "connection refused" in stream.outcome.error


async def test_timeout_before_the_first_token(serve) -> None:
    async def hang(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await serve(hang)
    stream = await ask(server.url, read_timeout=0.5)
    assert stream.outcome.status == "error"
    assert "no data from the server" in stream.outcome.error
    assert "before the first token" in stream.outcome.error


@pytest.mark.parametrize(("status", "payload", "headers", "expected"), [
    (401, {"error": {"message": "Invalid API key"}}, "", "set or check its API key"),
    (404, {"error": {"message": "The model `m` does not exist."}}, "",
     "model 'm' not found at this endpoint (404): The model `m` does not exist."),
    (429, {"error": {"message": "too many"}}, "retry-after: 3\r\n", "rate limited (429); retry "
                                                                      "after 3 s: too many"),
    (500, {"detail": "CUDA out of memory"}, "", "the server failed (500): CUDA out of memory"),
])
async def test_http_errors_become_messages(serve, status, payload, headers, expected) -> None:
    server = await serve(respond(status, payload, headers))
    stream = await ask(server.url)
    assert stream.outcome.status == "error"
    assert expected in stream.outcome.error
    assert stream.text == ""


async def test_malformed_lines_are_skipped_and_counted(serve) -> None:
    server = await serve(sse(chunk("Hello"), b"data: {not json\n\n", b"garbage line\n",
                             chunk(", world"), b'data: {"choices": 7}\n\n',
                             chunk(None, "stop"), b"data: [DONE]\n\n"))
    stream = await ask(server.url)
    assert stream.outcome.status == "done"
    assert stream.text == "Hello, world"
    assert "3 malformed lines skipped" in stream.outcome.notes
    assert stream.figures.estimated and stream.figures.tokens == 2


async def test_server_dying_mid_answer_keeps_the_partial(serve) -> None:
    server = await serve(sse(chunk("The answer"), chunk(" is"), abort_after=True))
    stream = await ask(server.url)
    assert stream.outcome.status == "error"
    assert stream.text == "The answer is"
    assert "partial answer is kept" in stream.outcome.error


async def test_error_inside_the_stream(serve) -> None:
    server = await serve(sse(chunk("so far"), b'data: {"error": {"message": "KV cache full"}}\n\n'))
    stream = await ask(server.url)
    assert stream.outcome.status == "error" and "KV cache full" in stream.outcome.error
    assert stream.text == "so far"


async def test_escape_sequences_from_the_model_are_stripped(serve) -> None:
    server = await serve(sse(chunk("safe \x1b]52;c;cHduZWQ="), chunk("\x07text \x1b[2J"),
                             chunk("end"), chunk(None, "stop"), b"data: [DONE]\n\n"))
    stream = await ask(server.url)
    assert stream.text == "safe text end"


async def test_a_server_that_does_not_stream(serve) -> None:
    server = await serve(respond(200, {"choices": [{"message": {"content": "whole"}}],
                                       "usage": {"completion_tokens": 1, "prompt_tokens": 2}}))
    stream = await ask(server.url)
    assert stream.outcome.status == "done" and stream.text == "whole"
    assert not stream.figures.estimated


async def test_stop_closes_the_http_stream_at_once(serve) -> None:
    server = await serve(sse(*[chunk(f"w{i} ") for i in range(400)], delay=0.02))
    chat = ChatService(EndpointConnector(lambda name: None))
    stream = await chat.answer(manual_spec(server.url), ChatRequest("m", []))
    async for _piece in stream:
        if stream.figures.chunks >= 3:
            break
    await stream.stop()
    assert stream.outcome.status == "stopped"
    assert stream.text.startswith("w0 w1 w2")
    await within(server.disconnected.wait(), 2)  # the server saw the client go
    await chat.connector.close()


async def test_a_key_goes_only_to_its_own_endpoint(serve) -> None:
    done = sse(chunk("ok"), chunk(None, "stop"), b"data: [DONE]\n\n")
    other = await serve(done)
    redirect = respond(307, {}, f"location: {other.url}/chat/completions\r\n")
    keyed = await serve(redirect)
    keys = Keys({manual_spec(keyed.url).secret_name: "sk-secret"})
    connector = EndpointConnector(lambda name: None, keys)  # type: ignore[arg-type]
    first = await ask(keyed.url, connector=connector)
    assert keyed.seen[0]["authorization"] == "Bearer sk-secret"
    assert first.outcome.status == "error"  # the redirect was not followed
    second = await ask(other.url, connector=EndpointConnector(lambda name: None, keys))
    assert second.text == "ok"
    assert other.seen and all("authorization" not in h for h in other.seen)


async def test_probe_lists_models_and_reports_failures(serve) -> None:
    server = await serve(respond(200, {"data": [{"id": "m1"}, {"id": "m2"}]}))
    connector = EndpointConnector(lambda name: None)
    endpoint = await connector.probe(manual_spec(server.url.removesuffix("/v1")))
    assert endpoint.models == ("m1", "m2") and endpoint.error is None
    broken = await serve(respond(500, {"detail": "no"}))
    endpoint = await connector.probe(manual_spec(broken.url))
    assert endpoint.error and "500" in endpoint.error
    await connector.close()


async def test_a_server_refusing_stream_options_is_asked_again(serve) -> None:
    answers = iter([respond(422, {"detail": [{"msg": "extra fields not permitted",
                                              "loc": ["body", "stream_options"]}]}),
                    sse(chunk("fine"), chunk(None, "stop"), b"data: [DONE]\n\n")])

    async def script(writer: asyncio.StreamWriter) -> None:
        await next(answers)(writer)

    server = await serve(script)
    stream = await ask(server.url)
    assert stream.outcome.status == "done" and stream.text == "fine"
    assert "stream_options" in server.bodies[0] and "stream_options" not in server.bodies[1]
    assert "the server refused stream_options" in stream.outcome.notes
    assert stream.figures.estimated
