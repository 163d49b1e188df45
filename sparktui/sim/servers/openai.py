"""The simulated Spark's model server: an OpenAI-compatible endpoint on loopback.

On the simulator's HTTP layer (sparktui.sim.http): `GET /v1/models`,
`GET /health`, `GET /metrics` (vLLM's names: sparktui.sim.servers.serving_metrics),
`POST /v1/chat/completions` streamed as server-sent events or
answered whole. It writes plausible Markdown (prose, a list, a code block) at
a set token rate, honours `max_tokens` and `stream_options.include_usage`,
answers a wrong model with 404 as vLLM does, and lifts the simulated GPU's
utilisation (and so its power) while it generates, so the demo's telemetry
and the chat's energy figures tell one story.

The demo maps the sim's localhost:8000 to this server's random port
(`SimServer.map_port`): it is reached through the device connection only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.http import Exchange, HttpServer, Request
from sparktui.sim.servers.serving_metrics import SimServingMetrics

DEFAULT_MODEL = "nvidia/llama-3.1-8b-instruct-sim"
DEMO_PORT = 8000  # where the demo device serves it (vLLM's and NIM's port)
DEFAULT_TOKEN_RATE = 60.0
GENERATING_LOAD = 0.92

_OPENINGS = (
    "Here is a short answer, written by the **simulated Spark**.",
    "Good question. The *simulated* GB10 has thought about it for a moment.",
    "Sure. This reply streams from the demo device's model server.",
)
_SECTIONS = (
    "## What happens\n\n"
    "The request travels over the SSH connection to `localhost:8000` on the device; "
    "nothing is opened on the Spark itself. Tokens come back as server-sent events, "
    "and the chat renders them as Markdown while they arrive.\n\n",
    "Some things worth knowing:\n\n"
    "- **Time to first token** measures prompt processing.\n"
    "- **Tokens per second** measures decoding, once the first token is out.\n"
    "- **Tokens per joule** divides the tokens by the GPU energy of the answer.\n\n",
    "A tiny client, for the record:\n\n"
    "```python\n"
    "import httpx\n\n"
    "def ask(prompt: str) -> str:\n"
    "    body = {\"model\": \"llama\", \"messages\": [{\"role\": \"user\", \"content\": prompt}]}\n"
    "    response = httpx.post(\"http://localhost:8000/v1/chat/completions\", json=body)\n"
    "    return response.json()[\"choices\"][0][\"message\"][\"content\"]\n"
    "```\n\n",
    "| figure | meaning |\n|---|---|\n| TTFT | wait for the first token |\n"
    "| tok/s | decode speed |\n\n",
    "That is all there is to it: the GPU utilisation rose while this was written, "
    "and fell again when it ended.\n",
)
_TOKEN = re.compile(r"\s*\S{1,6}|\s+")


def tokens_for(prompt: str, min_tokens: int = 0) -> list[str]:
    """The answer to `prompt`, cut into token-sized pieces (deterministic per prompt)."""
    digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    text = _OPENINGS[digest[0] % len(_OPENINGS)] + "\n\n" + "".join(_SECTIONS)
    pieces = _TOKEN.findall(text)
    round_ = 0
    while len(pieces) < min_tokens:
        round_ += 1
        extra = f"\n\n## Part {round_ + 1}\n\n" + "".join(_SECTIONS)
        pieces += _TOKEN.findall(extra)
    return pieces


@dataclass
class RequestLog:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass
class OpenAISimServer:
    """Start with `await server.start()`; `port` is then set. Settings may change any time."""

    device: SimDevice | None = None
    host: str = "127.0.0.1"
    port: int = 0
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    token_rate: float = DEFAULT_TOKEN_RATE
    ttft_s: float = 0.12
    min_tokens: int = 0  # make answers at least this long (rendering benchmarks)
    requests: list[RequestLog] = field(default_factory=list)
    _http: HttpServer | None = None
    _active: int = 0
    metrics: SimServingMetrics | None = None
    background_load: bool = True  # the demo's Serving tab moves with nobody chatting

    async def start(self) -> OpenAISimServer:
        self.metrics = SimServingMetrics(self.models[0], background=self.background_load)
        self._http = await HttpServer(self.answer).listen(self.host, self.port)
        self.port = self._http.port
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def generating(self) -> int:
        return self._active

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.device is not None and self._active:
            self.device.set_load(0)
        self._active = 0

    async def answer(self, request: Request, exchange: Exchange) -> None:
        """One request to the model server (a deployed container's port hands its own on)."""
        method, path = request.method, request.path
        log = RequestLog(method, path, request.headers)
        self.requests.append(log)
        if method == "GET" and path in ("/v1/models", "/models"):
            await exchange.reply(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "sparktui-sim", "created": 0}
                for m in self.models]})
        elif method == "GET" and path == "/health":
            await exchange.reply(200, {"status": "ok"})
        elif method == "GET" and path == "/metrics" and self.metrics is not None:
            await exchange.reply(200, self.metrics.render(),
                                 content_type="text/plain; version=0.0.4")
        elif method == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                await exchange.reply(400, {"error": {"message": "body is not JSON"}})
                return
            log.body = body
            await self._chat(body, exchange)
        else:
            await exchange.reply(404, {"error": {"message": f"no route {method} {path}"}})

    async def _chat(self, body: Any, exchange: Exchange) -> None:
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.models:
            await exchange.reply(404, {"error": {
                "message": f"The model `{model}` does not exist.", "type": "NotFoundError",
                "code": 404}})
            return
        messages = body.get("messages") or []
        prompt = json.dumps(messages)
        pieces = tokens_for(prompt, self.min_tokens)
        max_tokens = body.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and 0 < max_tokens < len(pieces):
            pieces, finish = pieces[:max_tokens], "length"
        prompt_tokens = max(1, len(_TOKEN.findall(prompt)) // 2)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces)}
        self._busy(+1)
        started = time.monotonic()
        if self.metrics is not None:
            self.metrics.request_started(prompt_tokens)
        try:
            if not body.get("stream"):
                await asyncio.sleep(self.ttft_s + len(pieces) / max(self.token_rate, 1e-3))
                await exchange.reply(200, {
                    "id": "chatcmpl-sim", "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": "".join(pieces)}}],
                    "usage": usage})
                return
            options = body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            await self._stream(exchange, model, pieces, finish,
                               usage if include_usage else None)
        finally:
            self._busy(-1)
            if self.metrics is not None:
                self.metrics.request_finished(prompt_tokens, len(pieces), self.ttft_s,
                                              time.monotonic() - started)

    def _busy(self, delta: int) -> None:
        self._active += delta
        if self.device is not None:
            self.device.set_load(GENERATING_LOAD if self._active > 0 else 0)

    async def _stream(self, exchange: Exchange, model: str, pieces: list[str],
                      finish: str, usage: dict[str, int] | None) -> None:
        await exchange.start("text/event-stream", [("Cache-Control", "no-cache")])
        created = int(time.time())

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            chunk = {"id": "chatcmpl-sim", "object": "chat.completion.chunk",
                     "created": created, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        await exchange.send(event({"role": "assistant", "content": ""}))
        await asyncio.sleep(self.ttft_s)
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while sent < len(pieces):
            # every token that is due goes out now: a fast rate is kept without a sleep
            # per token, each still its own event (clients count events)
            due = min(len(pieces), max(sent + 1, 1 + int((loop.time() - start) * self.token_rate)))
            await exchange.send(b"".join(event({"content": p}) for p in pieces[sent:due]))
            sent = due
            if sent < len(pieces):
                delay = start + sent / max(self.token_rate, 1e-3) - loop.time()
                await asyncio.sleep(max(0.0, delay))
        tail = event({}, finish)
        if usage is not None:
            tail += b"data: " + json.dumps({"id": "chatcmpl-sim", "object":
                                            "chat.completion.chunk", "created": created,
                                            "model": model, "choices": [],
                                            "usage": usage}).encode() + b"\n\n"
        await exchange.send(tail + b"data: [DONE]\n\n")
        await exchange.end()


async def start_openai_sim(device: SimDevice | None = None, *, host: str = "127.0.0.1",
                           port: int = 0, token_rate: float = DEFAULT_TOKEN_RATE,
                           **options: Any) -> OpenAISimServer:
    return await OpenAISimServer(device=device, host=host, port=port, token_rate=token_rate,
                                 **options).start()
