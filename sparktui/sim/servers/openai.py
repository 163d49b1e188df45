"""The simulated Spark's model server: an OpenAI-compatible endpoint with vLLM's /metrics.

`GET /v1/models`, `/health`, `/metrics` and a streamed `POST /v1/chat/completions`:
plausible Markdown at a set token rate, honouring `max_tokens` and
`stream_options.include_usage`, with the simulated GPU loaded while it writes, so
telemetry and the chat's energy figures tell one story. /metrics is
prometheus-client's exposition in vLLM's names: the real requests plus a gentle
background workload, so the Serving tab moves with nobody chatting. The demo maps
the device's localhost:8000 to it: it is reached through the SSH connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sparktui.sim.device.gpu_model import SimDevice
from sparktui.sim.http import Exchange, HttpServer, Request

DEFAULT_MODEL = "nvidia/llama-3.1-8b-instruct-sim"
DEMO_PORT = 8000  # where the demo device serves it (vLLM's and NIM's port)
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
#: vLLM's bucket bounds (vllm/v1/metrics/loggers.py), trimmed to the useful range
BUCKETS = {"ttft": (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0),
           "itl": (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0),
           "e2e": (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)}
KV_TOKENS = 400_000  # the simulated KV-cache capacity, in tokens


def tokens_for(prompt: str, min_tokens: int = 0) -> list[str]:
    """The answer to `prompt`, cut into token-sized pieces (deterministic per prompt)."""
    digest = hashlib.sha256(prompt.encode("utf-8", "replace")).digest()
    pieces = _TOKEN.findall(_OPENINGS[digest[0] % len(_OPENINGS)] + "\n\n" + "".join(_SECTIONS))
    part = 1
    while len(pieces) < min_tokens:
        part += 1
        pieces += _TOKEN.findall(f"\n\n## Part {part}\n\n" + "".join(_SECTIONS))
    return pieces


class ServingMetrics:
    """vLLM's metrics for the model server: its real requests plus a background load."""

    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry()
        self._rng, self._last = random.Random(7), time.monotonic()
        self._started, self.active_tokens = self._last, 0

        def make(kind: Any, name: str, **extra: Any) -> Any:
            return kind(f"vllm:{name}", name, ["model_name", "engine"], registry=self.registry,
                        **extra).labels(model_name=model, engine="0")

        self.running, self.waiting = make(Gauge, "num_requests_running"), make(
            Gauge, "num_requests_waiting")
        self.kv, self.preemptions = make(Gauge, "kv_cache_usage_perc"), make(
            Counter, "num_preemptions")
        self.prompt_tokens, self.generation_tokens = make(Counter, "prompt_tokens"), make(
            Counter, "generation_tokens")
        self.prefix_queries, self.prefix_hits = make(Counter, "prefix_cache_queries"), make(
            Counter, "prefix_cache_hits")
        self.ttft = make(Histogram, "time_to_first_token_seconds", buckets=BUCKETS["ttft"])
        self.itl = make(Histogram, "inter_token_latency_seconds", buckets=BUCKETS["itl"])
        self.e2e = make(Histogram, "e2e_request_latency_seconds", buckets=BUCKETS["e2e"])

    def request(self, prompt: int, tokens: int, ttft: float, e2e: float, hits: int,
                itl: list[float]) -> None:
        """A finished request (a real one, or one of the background's)."""
        self.prompt_tokens.inc(prompt)
        self.prefix_queries.inc(prompt)
        self.prefix_hits.inc(hits)
        self.generation_tokens.inc(tokens)
        self.ttft.observe(ttft)
        self.e2e.observe(e2e)
        for gap in itl:
            self.itl.observe(gap)

    def render(self, active: int) -> bytes:
        now = time.monotonic()
        elapsed, self._last = max(0.0, now - self._last), now
        load = 0.5 + 0.5 * math.sin(2 * math.pi * (now - self._started) / 120.0)  # 0..1
        running, waiting = round(1 + 5 * load), max(0, round(4 * load - 2))
        rng = self._rng
        if rng.random() < elapsed * (0.5 + 2.5 * load):  # one background request finished
            tokens, prompt = rng.randint(60, 240), rng.randint(200, 2000)
            itl, ttft = 0.03 + 0.05 * load + rng.random() * 0.01, 0.05 + 0.4 * load * rng.random()
            self.request(prompt, tokens, ttft, ttft + itl * tokens,
                         int(prompt * rng.uniform(0.2, 0.7)),
                         [itl * rng.uniform(0.8, 1.2) for _ in range(32)])
            if load > 0.9 and rng.random() < 0.1:
                self.preemptions.inc()
        self.running.set(running + active)
        self.waiting.set(waiting)
        used = self.active_tokens + running * 6000 + waiting * 2000
        self.kv.set(min(1.0, used / KV_TOKENS))
        return generate_latest(self.registry)


@dataclass
class OpenAISimServer:
    """Start with `await server.start()`; `port` is then set. Settings may change any time."""

    device: SimDevice | None = None
    port: int = 0
    model: str = DEFAULT_MODEL
    token_rate: float = 60.0
    ttft_s: float = 0.12
    min_tokens: int = 0  # make answers at least this long (rendering benchmarks)
    generating: int = 0
    _http: HttpServer | None = None

    async def start(self) -> OpenAISimServer:
        self.metrics = ServingMetrics(self.model)
        self._http = await HttpServer(self.answer).listen("127.0.0.1", self.port)
        self.port = self._http.port
        return self

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.device is not None and self.generating:
            self.device.set_load(0)
        self.generating = 0

    async def answer(self, request: Request, exchange: Exchange) -> None:
        """One request to the model server (a deployed container's port hands its own on)."""
        route = (request.method, request.path.removeprefix("/v1"))
        if route == ("GET", "/models"):
            await exchange.reply(200, {"object": "list", "data": [
                {"id": self.model, "object": "model", "owned_by": "sparktui-sim", "created": 0}]})
        elif route == ("GET", "/health"):
            await exchange.reply(200, {"status": "ok"})
        elif route == ("GET", "/metrics"):
            await exchange.reply(200, self.metrics.render(self.generating),
                                 content_type="text/plain; version=0.0.4")
        elif route == ("POST", "/chat/completions"):  # sparktui asks for the listed model
            await self._chat(json.loads(request.body or b"{}"), exchange)
        else:
            await exchange.reply(404, {"error": {"message": f"no route {request.method} "
                                                            f"{request.path}"}})

    def _busy(self, delta: int) -> None:
        self.generating += delta
        if self.device is not None:
            self.device.set_load(GENERATING_LOAD if self.generating > 0 else 0)

    async def _chat(self, body: dict[str, Any], exchange: Exchange) -> None:
        prompt = json.dumps(body.get("messages") or [])
        pieces, finish = tokens_for(prompt, self.min_tokens), "stop"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and 0 < max_tokens < len(pieces):
            pieces, finish = pieces[:max_tokens], "length"
        prompt_tokens = max(1, len(_TOKEN.findall(prompt)) // 2)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                 "total_tokens": prompt_tokens + len(pieces)}
        self._busy(+1)
        self.metrics.active_tokens += prompt_tokens
        started = time.monotonic()
        try:  # streamed, as sparktui always asks
            wants_usage = (body.get("stream_options") or {}).get("include_usage")
            await self._stream(exchange, body["model"], pieces, finish,
                               usage if wants_usage else None)
        finally:
            self._busy(-1)
            self.metrics.active_tokens -= prompt_tokens
            e2e = time.monotonic() - started
            gap = max(0.0, e2e - self.ttft_s) / max(1, len(pieces) - 1)
            self.metrics.request(prompt_tokens, len(pieces), self.ttft_s, e2e,
                                 prompt_tokens // 2,  # the chat resends its history
                                 [gap] * min(len(pieces) - 1, 256))

    async def _stream(self, exchange: Exchange, model: str, pieces: list[str],
                      finish: str, usage: dict[str, int] | None) -> None:
        await exchange.start("text/event-stream")
        created = int(time.time())

        def event(choices: list[Any], **extra: Any) -> bytes:
            chunk = {"id": "chatcmpl-sim", "object": "chat.completion.chunk",
                     "created": created, "model": model, "choices": choices, **extra}
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        def delta(content: dict[str, str], finish_reason: str | None = None) -> bytes:
            return event([{"index": 0, "delta": content, "finish_reason": finish_reason}])

        await exchange.send(delta({"role": "assistant", "content": ""}))
        await asyncio.sleep(self.ttft_s)
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while sent < len(pieces):
            # every token that is due goes out now: a fast rate is kept without a sleep
            # per token, each still its own event (clients count events)
            due = min(len(pieces), max(sent + 1, 1 + int((loop.time() - start) * self.token_rate)))
            await exchange.send(b"".join(delta({"content": p}) for p in pieces[sent:due]))
            sent = due
            if sent < len(pieces):
                await asyncio.sleep(max(0.0, start + sent / max(self.token_rate, 1e-3)
                                        - loop.time()))
        tail = delta({}, finish) + (event([], usage=usage) if usage is not None else b"")
        await exchange.send(tail + b"data: [DONE]\n\n")
        await exchange.end()
