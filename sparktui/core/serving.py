"""What an inference engine is doing, from what it exposes: one shape for every engine.

vLLM, SGLang and llama.cpp's `llama-server` publish Prometheus text on
/metrics (names from each project's documentation and source, listed in
ENGINE_METRICS); TRT-LLM's `trtllm-serve` answers /metrics with JSON iteration
stats; Ollama has no metrics page, but /api/ps lists what it has loaded.
Every engine's figures land in one ServingFigures. A figure the engine does not
expose stays None, and `missing()` names it, so the UI and `sparktui serving`
can say "not exposed" instead of showing 0.

Rates (tokens/s, preemptions) come from counters between two scrapes; latency
percentiles from the histogram buckets that grew within a window (PromQL's
`histogram_quantile` of an `increase`), or since the server started when the
window saw no request, with the scope said either way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from sparktui.core.prom import (
    Samples,
    Scrape,
    bucket_delta,
    buckets,
    histogram_quantile,
    increase,
    label_values,
    observations,
    rate,
    total,
)

RATE_WINDOW_S = 10.0  # tokens/s over about this long: steady enough to read, quick to move
LATENCY_WINDOW_S = 60.0  # latency percentiles over the requests of about the last minute


@dataclass(frozen=True)
class EngineMetrics:
    """The metric names one engine publishes for each figure (first present wins)."""

    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    kv_fraction: tuple[str, ...] = ()  # a 0..1 gauge
    preemptions: tuple[str, ...] = ()  # counter
    prefix_hits: tuple[str, ...] = ()  # counter (hits / queries)
    prefix_queries: tuple[str, ...] = ()
    prefix_hit_fraction: tuple[str, ...] = ()  # a 0..1 gauge, where the engine computes it
    prompt_tokens: tuple[str, ...] = ()  # counters
    generation_tokens: tuple[str, ...] = ()
    generation_tps: tuple[str, ...] = ()  # a gauge, where the engine has no counter
    ttft: tuple[str, ...] = ()  # histogram base names
    itl: tuple[str, ...] = ()
    e2e: tuple[str, ...] = ()
    spec_accepted: tuple[str, ...] = ()  # counters
    spec_drafted: tuple[str, ...] = ()
    generation_seconds: tuple[str, ...] = ()  # counter of time spent generating (a mean ITL)


ENGINE_METRICS: dict[str, EngineMetrics] = {
    # docs.vllm.ai "Production Metrics"; kv_cache_usage_perc replaced gpu_cache_usage_perc
    # in v0.12, the prefix-cache counters lost their gpu_ prefix with it
    "vllm": EngineMetrics(
        running=("vllm:num_requests_running",),
        waiting=("vllm:num_requests_waiting",),
        kv_fraction=("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
        preemptions=("vllm:num_preemptions_total",),
        prefix_hits=("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"),
        prefix_queries=("vllm:prefix_cache_queries_total",
                        "vllm:gpu_prefix_cache_queries_total"),
        prompt_tokens=("vllm:prompt_tokens_total",),
        generation_tokens=("vllm:generation_tokens_total",),
        ttft=("vllm:time_to_first_token_seconds",),
        itl=("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
        e2e=("vllm:e2e_request_latency_seconds",),
        spec_accepted=("vllm:spec_decode_num_accepted_tokens_total",),
        spec_drafted=("vllm:spec_decode_num_draft_tokens_total",),
    ),
    # docs.sglang.io "Production Metrics" (only with --enable-metrics)
    "sglang": EngineMetrics(
        running=("sglang:num_running_reqs",),
        waiting=("sglang:num_queue_reqs",),
        kv_fraction=("sglang:token_usage",),
        prefix_hit_fraction=("sglang:cache_hit_rate",),
        prompt_tokens=("sglang:prompt_tokens_total",),
        generation_tokens=("sglang:generation_tokens_total",),
        generation_tps=("sglang:gen_throughput",),
        ttft=("sglang:time_to_first_token_seconds",),
        itl=("sglang:inter_token_latency_seconds", "sglang:time_per_output_token_seconds"),
        e2e=("sglang:e2e_request_latency_seconds",),
        spec_accepted=("sglang:spec_accepted_tokens_total",),
        spec_drafted=("sglang:spec_draft_tokens_total",),
    ),
    # llama.cpp tools/server/server-task.cpp `to_metrics` (only with --metrics); no
    # histograms and no KV figure there: /slots gives the context in use
    "llamacpp": EngineMetrics(
        running=("llamacpp:requests_processing",),
        waiting=("llamacpp:requests_deferred",),
        prefix_hits=("llamacpp:prompt_tokens_cached_total",),
        prompt_tokens=("llamacpp:prompt_tokens_total",),
        generation_tokens=("llamacpp:tokens_predicted_total",),
        spec_accepted=("llamacpp:spec_decode_num_accepted_tokens_total",),
        spec_drafted=("llamacpp:spec_decode_num_draft_tokens_total",),
        generation_seconds=("llamacpp:tokens_predicted_seconds_total",),
    ),
}

PROMETHEUS_ENGINES = tuple(ENGINE_METRICS)


def engine_of(samples: Samples) -> str | None:
    """Which engine wrote a metrics page, by its metric prefix."""
    for engine in PROMETHEUS_ENGINES:
        prefix = engine + ":"
        if any(name.startswith(prefix) for name in samples):
            return engine
    return None


@dataclass(frozen=True)
class Latency:
    """Percentiles of one latency, in seconds, and what they cover."""

    p50: float | None = None
    p95: float | None = None
    mean: float | None = None
    requests: float | None = None  # observations behind the figures
    scope: str = ""  # "60 s" (the window), "since start", "mean from counters", "per iteration"


@dataclass(frozen=True)
class SlotUse:
    """llama.cpp's /slots: how many slots work, and the context they hold."""

    busy: int
    total: int
    tokens: int  # prompt + generated tokens held by the busy slots
    context: int  # the slots' context sizes together


@dataclass(frozen=True)
class LoadedModel:
    """One model an Ollama server holds in memory (/api/ps)."""

    name: str
    size_bytes: int | None
    vram_bytes: int | None
    context_length: int | None
    expires_at: str | None

    @property
    def vram_pct(self) -> float | None:
        if not self.size_bytes or self.vram_bytes is None:
            return None
        return 100.0 * self.vram_bytes / self.size_bytes


#: figures the view shows for every engine; `missing()` names the None ones
FIGURES = ("running", "waiting", "kv_cache_pct", "preemptions", "prefix_hit_pct",
           "prompt_tps", "generation_tps", "ttft", "itl", "e2e", "spec_accept_pct")


@dataclass(frozen=True)
class ServingFigures:
    engine: str  # vllm, sglang, llamacpp, trtllm, ollama; "openai" with no metrics at all
    t: float
    models: tuple[str, ...] = ()
    running: float | None = None
    waiting: float | None = None
    kv_cache_pct: float | None = None
    kv_scope: str = ""  # how KV use was found ("engine", "slots: tokens in context", ...)
    preemptions: float | None = None  # since the server started
    prefix_hit_pct: float | None = None
    prompt_tps: float | None = None
    generation_tps: float | None = None
    ttft: Latency | None = None
    itl: Latency | None = None
    e2e: Latency | None = None
    spec_accept_pct: float | None = None
    slots: SlotUse | None = None
    loaded: tuple[LoadedModel, ...] = ()
    notes: tuple[str, ...] = ()

    def missing(self) -> tuple[str, ...]:
        out = []
        for name in FIGURES:
            value = getattr(self, name)
            if value is None or (isinstance(value, Latency) and value.p50 is None
                                 and value.mean is None):
                out.append(name)
        return tuple(out)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["missing"] = list(self.missing())
        return data


def _pct(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else 100.0 * value


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return 100.0 * part / whole


def latency(now: Scrape, window_start: Scrape | None, names: tuple[str, ...],
            window_s: float) -> Latency | None:
    """Percentiles of the first histogram present: over the window, else since start."""
    for base in names:
        current = buckets(now.samples, base)
        if current is None:
            continue
        earlier = buckets(window_start.samples, base) if window_start is not None else None
        recent = bucket_delta(current, earlier) if window_start is not None else None
        if recent is not None and observations(recent) > 0:
            chosen, scope = recent, f"{window_s:.0f} s"
        else:
            chosen, scope = current, "since start"
        count = observations(chosen)
        mean = None
        sums = total(now.samples, (base + "_sum",))
        if scope == "since start" and sums is not None and count > 0:
            mean = sums / count
        elif window_start is not None and count > 0:
            grew = increase(now, window_start, (base + "_sum",))
            mean = grew / count if grew is not None else None
        return Latency(histogram_quantile(0.5, chosen), histogram_quantile(0.95, chosen),
                       mean, count, scope)
    return None


def from_prometheus(engine: str, now: Scrape, *, rate_from: Scrape | None = None,
                    latency_from: Scrape | None = None, slots: SlotUse | None = None,
                    latency_window_s: float = LATENCY_WINDOW_S) -> ServingFigures:
    """An engine's figures from its latest scrape and two earlier ones (rates, latency)."""
    names = ENGINE_METRICS[engine]
    s = now.samples
    notes: list[str] = []
    kv = _pct(total(s, names.kv_fraction))
    kv_scope = "engine" if kv is not None else ""
    if kv is None and slots is not None and slots.context > 0:
        kv, kv_scope = 100.0 * slots.tokens / slots.context, "slots: tokens held / context"
    prefix = _pct(total(s, names.prefix_hit_fraction))
    if prefix is None and names.prefix_hits:
        hits = increase(now, rate_from, names.prefix_hits)
        if engine == "llamacpp":  # cached tokens against all prompt tokens seen
            fresh = increase(now, rate_from, names.prompt_tokens)
            queries = None if hits is None or fresh is None else hits + fresh
        else:
            queries = increase(now, rate_from, names.prefix_queries)
        prefix = _ratio(hits, queries)
    generation = rate(now, rate_from, names.generation_tokens)
    if generation is None:
        generation = total(s, names.generation_tps)
    accepted = increase(now, rate_from, names.spec_accepted)
    drafted = increase(now, rate_from, names.spec_drafted)
    itl = latency(now, latency_from, names.itl, latency_window_s)
    if itl is None and names.generation_seconds:
        spent = increase(now, rate_from, names.generation_seconds)
        made = increase(now, rate_from, names.generation_tokens)
        if spent is not None and made:
            itl = Latency(mean=spent / made, requests=None, scope="mean from counters")
    if engine == "llamacpp":
        notes.append("llama.cpp exposes no latency histograms: TTFT, end-to-end and "
                     "percentiles are not available")
    return ServingFigures(
        engine=engine, t=now.t, models=label_values(s, "model_name"),
        running=total(s, names.running), waiting=total(s, names.waiting),
        kv_cache_pct=kv, kv_scope=kv_scope, preemptions=total(s, names.preemptions),
        prefix_hit_pct=prefix, prompt_tps=rate(now, rate_from, names.prompt_tokens),
        generation_tps=generation,
        ttft=latency(now, latency_from, names.ttft, latency_window_s), itl=itl,
        e2e=latency(now, latency_from, names.e2e, latency_window_s),
        spec_accept_pct=_ratio(accepted, drafted) if drafted else None,
        slots=slots, notes=tuple(notes))


# -- llama.cpp /slots ---------------------------------------------------------------------
def parse_slots(data: object) -> SlotUse | None:
    """llama-server's GET /slots (a list of slots) -> SlotUse; None when not that shape."""
    if not isinstance(data, list) or not data:
        return None
    busy = tokens = context = 0
    for slot in data:
        if not isinstance(slot, dict):
            return None
        n_ctx = _int(slot.get("n_ctx"))
        context += n_ctx or 0
        if slot.get("is_processing") is True:
            busy += 1
            decoded = 0
            nexts = slot.get("next_token")
            if isinstance(nexts, list) and nexts and isinstance(nexts[0], dict):
                decoded = _int(nexts[0].get("n_decoded")) or 0
            tokens += (_int(slot.get("n_prompt_tokens")) or 0) + decoded
    return SlotUse(busy, len(data), tokens, context)


# -- Ollama /api/ps -----------------------------------------------------------------------
def from_ollama_ps(data: object, t: float) -> ServingFigures | None:
    """Ollama's loaded models; None when `data` is not an /api/ps answer."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    loaded = []
    for item in data["models"]:
        if not isinstance(item, dict):
            continue
        name = item.get("name") or item.get("model")
        if not isinstance(name, str):
            continue
        expires = item.get("expires_at")
        loaded.append(LoadedModel(name, _int(item.get("size")), _int(item.get("size_vram")),
                                  _int(item.get("context_length")),
                                  expires if isinstance(expires, str) else None))
    return ServingFigures(
        engine="ollama", t=t, models=tuple(m.name for m in loaded), loaded=tuple(loaded),
        notes=("Ollama has no metrics page: queue, KV cache, throughput and latency are not "
               "exposed; /api/ps lists the loaded models",))


# -- TRT-LLM iteration stats ----------------------------------------------------------------
def from_trtllm_stats(data: object, t: float) -> ServingFigures | None:
    """trtllm-serve's GET /metrics: JSON iteration stats since the last read (newest last)."""
    if not isinstance(data, list):
        return None
    stats = [item for item in data if isinstance(item, dict) and "iter" in item]
    if not stats and data:
        return None
    latest = stats[-1] if stats else {}
    kv = latest.get("kvCacheStats") if isinstance(latest.get("kvCacheStats"), dict) else {}
    used, most = _num(kv.get("usedNumBlocks")), _num(kv.get("maxNumBlocks"))
    hit = _num(kv.get("cacheHitRate"))
    iteration_ms = sorted(v for item in stats
                          if (v := _num(item.get("iterLatencyMS"))) is not None)
    itl = None
    if iteration_ms:
        itl = Latency(_nearest_rank(iteration_ms, 0.5) / 1000,
                      _nearest_rank(iteration_ms, 0.95) / 1000,
                      sum(iteration_ms) / len(iteration_ms) / 1000, len(iteration_ms),
                      "per iteration")
    return ServingFigures(
        engine="trtllm", t=t, running=_num(latest.get("numActiveRequests")),
        waiting=_num(latest.get("numQueuedRequests")),
        kv_cache_pct=_ratio(used, most), kv_scope="engine" if used is not None else "",
        prefix_hit_pct=_pct(hit), itl=itl,
        notes=("TRT-LLM iteration stats carry no token counters or request latencies",))


def _nearest_rank(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass
class ScrapeHistory:
    """The recent scrapes of one endpoint, to take rates and windowed percentiles from."""

    keep_s: float = LATENCY_WINDOW_S + 5
    scrapes: list[Scrape] = field(default_factory=list)

    def add(self, scrape: Scrape) -> None:
        self.scrapes.append(scrape)
        horizon = scrape.t - self.keep_s
        while len(self.scrapes) > 2 and self.scrapes[1].t <= horizon:
            self.scrapes.pop(0)

    def reset(self) -> None:
        self.scrapes.clear()

    def since(self, now: Scrape, window_s: float) -> Scrape | None:
        """The oldest earlier scrape inside the window, else the one just before `now`."""
        earlier = [s for s in self.scrapes if s.t < now.t]
        if not earlier:
            return None
        inside = [s for s in earlier if s.t >= now.t - window_s]
        return inside[0] if inside else earlier[-1]
