"""The simulated model server's /metrics, in vLLM's names, written by prometheus-client.

A demo Spark with nobody chatting would show a flat Serving tab, so a gentle
background workload (a few requests a second, rising and falling over a
couple of minutes) is added to whatever the demo's chat really sends. The
exposition text comes from prometheus-client's own registry and writer, so
it is exactly what a Python server such as vLLM publishes.
"""

from __future__ import annotations

import math
import random
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: vLLM's bucket bounds (vllm/v1/metrics/loggers.py), trimmed to the useful range
TTFT_BUCKETS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)
KV_TOKENS = 400_000  # the simulated KV-cache capacity, in tokens
BACKGROUND_PERIOD_S = 120.0


class SimServingMetrics:
    """vLLM-style metrics for the sim server: its real requests plus a background load."""

    def __init__(self, model: str, *, background: bool = True, seed: int = 7) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        self._labels = {"model_name": model, "engine": "0"}

        def make(kind, name: str, doc: str, **extra):
            return kind(name, doc, labels, registry=self.registry, **extra).labels(
                **self._labels)

        self.running = make(Gauge, "vllm:num_requests_running", "Requests in execution.")
        self.waiting = make(Gauge, "vllm:num_requests_waiting", "Requests waiting.")
        self.kv = make(Gauge, "vllm:kv_cache_usage_perc", "KV-cache usage (1 = 100%).")
        self.preemptions = make(Counter, "vllm:num_preemptions", "Preemptions.")
        self.prompt_tokens = make(Counter, "vllm:prompt_tokens", "Prefill tokens.")
        self.generation_tokens = make(Counter, "vllm:generation_tokens", "Generation tokens.")
        self.prefix_queries = make(Counter, "vllm:prefix_cache_queries", "Prefix queries.")
        self.prefix_hits = make(Counter, "vllm:prefix_cache_hits", "Prefix hits.")
        self.ttft = make(Histogram, "vllm:time_to_first_token_seconds", "TTFT.",
                         buckets=TTFT_BUCKETS)
        self.itl = make(Histogram, "vllm:inter_token_latency_seconds", "ITL.",
                        buckets=ITL_BUCKETS)
        self.e2e = make(Histogram, "vllm:e2e_request_latency_seconds", "E2E latency.",
                        buckets=E2E_BUCKETS)
        self.active = 0  # real requests in flight
        self.active_tokens = 0
        self.background = background
        self._rng = random.Random(seed)
        self._last = time.monotonic()
        self._started = self._last

    # -- the real requests ------------------------------------------------------------
    def request_started(self, prompt_tokens: int) -> None:
        self.active += 1
        self.active_tokens += prompt_tokens
        self.prompt_tokens.inc(prompt_tokens)
        self.prefix_queries.inc(prompt_tokens)
        self.prefix_hits.inc(prompt_tokens // 2)  # the chat resends its history

    def request_finished(self, prompt_tokens: int, tokens: int, ttft_s: float,
                         e2e_s: float) -> None:
        self.active = max(0, self.active - 1)
        self.active_tokens = max(0, self.active_tokens - prompt_tokens)
        self.generation_tokens.inc(tokens)
        self.ttft.observe(ttft_s)
        self.e2e.observe(e2e_s)
        if tokens > 1:
            gap = max(0.0, e2e_s - ttft_s) / (tokens - 1)
            for _ in range(min(tokens - 1, 256)):
                self.itl.observe(gap)

    # -- the background load ----------------------------------------------------------
    def _advance(self, now: float) -> tuple[float, float]:
        """Account the background requests finished since the last read."""
        elapsed, self._last = max(0.0, now - self._last), now
        if not self.background:
            return 0.0, 0.0
        phase = math.sin(2 * math.pi * (now - self._started) / BACKGROUND_PERIOD_S)
        load = 0.5 + 0.5 * phase  # 0..1
        rng = self._rng
        finished = rng.random() < elapsed * (0.5 + 2.5 * load)
        if finished:
            tokens = rng.randint(60, 240)
            prompt = rng.randint(200, 2000)
            itl = 0.03 + 0.05 * load + rng.random() * 0.01
            ttft = 0.05 + 0.4 * load * rng.random()
            self.prompt_tokens.inc(prompt)
            self.prefix_queries.inc(prompt)
            self.prefix_hits.inc(int(prompt * rng.uniform(0.2, 0.7)))
            self.generation_tokens.inc(tokens)
            self.ttft.observe(ttft)
            self.e2e.observe(ttft + itl * tokens)
            for _ in range(32):
                self.itl.observe(itl * rng.uniform(0.8, 1.2))
            if load > 0.9 and rng.random() < 0.1:
                self.preemptions.inc()
        running = round(1 + 5 * load)
        waiting = max(0, round(4 * load - 2))
        return running, waiting

    def render(self) -> bytes:
        running, waiting = self._advance(time.monotonic())
        self.running.set(running + self.active)
        self.waiting.set(waiting)
        used = self.active_tokens + running * 6000 + waiting * 2000
        self.kv.set(min(1.0, used / KV_TOKENS))
        return generate_latest(self.registry)
