"""Serving figures from each engine's documented output, checked against hand-worked numbers.

vLLM, SGLang, TRT-LLM and Ollama cannot run on these machines (no GPU), so the
fixtures in tests/fixtures/serving are written from each project's
documentation: metric names, HELP/TYPE lines, label sets and histogram bucket
bounds as the docs show them (docs.vllm.ai "Production Metrics", before and
after v0.12's renames; docs.sglang.io "Production Metrics"; trtllm-serve's
/metrics iteration stats; Ollama's /api/ps). Each pair is an idle page and
the page after some load, with numbers chosen so the expected rates and
percentiles can be worked out by hand (the workings are in the comments).
llama.cpp's real server is tested in test_serving_llama.py.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparktui.core.prom import MetricsError, Scrape, buckets, histogram_quantile, parse_prometheus
from sparktui.core.serving import (
    ScrapeHistory,
    engine_of,
    from_ollama_ps,
    from_prometheus,
    from_trtllm_stats,
    parse_slots,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "serving"


def page(name: str) -> str:
    return (FIXTURES / name).read_text()


def scrape(name: str, t: float) -> Scrape:
    return Scrape(t, parse_prometheus(page(name)))


def approx(value: float | None) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def test_vllm_under_load_hand_worked():
    idle, busy = scrape("vllm-idle.prom", 0.0), scrape("vllm-busy.prom", 10.0)
    assert engine_of(busy.samples) == "vllm"
    f = from_prometheus("vllm", busy, rate_from=idle, latency_from=idle)
    assert f.models == ("Qwen/Qwen3-8B",)
    assert (f.running, f.waiting, f.kv_cache_pct, f.preemptions) == (4, 2, 37.5, 1)
    assert f.prompt_tps == approx(400.0)  # (5000 - 1000) tokens / 10 s
    assert f.generation_tps == approx(200.0)  # (7000 - 5000) / 10
    assert f.prefix_hit_pct == approx(60.0)  # (800 - 200) hits / (2000 - 1000) queries
    assert f.spec_accept_pct == approx(70.0)  # 70 accepted / 100 drafted
    # TTFT of the 10 new requests: 5 in (0.1, 0.25], 4 in (0.25, 0.5], 1 in (0.5, 0.75]
    # p50: rank 5 ends the first bucket: 0.1 + 0.15 * 5/5 = 0.25
    # p95: rank 9.5 is half-way into (0.5, 0.75]: 0.5 + 0.25 * 0.5/1 = 0.625
    assert (f.ttft.p50, f.ttft.p95) == (approx(0.25), approx(0.625))
    assert f.ttft.mean == approx(0.25) and f.ttft.requests == 10  # (4.0 - 1.5) / 10
    assert f.ttft.scope == "60 s"
    # 1000 inter-token gaps: 500 in (0.02, 0.04], 400 in (0.04, 0.06], 100 in (0.06, 0.08]
    # p50: rank 500 -> 0.04; p95: rank 950 -> 0.06 + 0.02 * 50/100 = 0.07
    assert (f.itl.p50, f.itl.p95) == (approx(0.04), approx(0.07))
    # e2e: 6 in (2.5, 5], 4 in (5, 7.5]: p50 2.5 + 2.5 * 5/6; p95 5 + 2.5 * 3.5/4
    assert (f.e2e.p50, f.e2e.p95) == (approx(2.5 + 2.5 * 5 / 6), approx(7.1875))
    assert f.missing() == ()


def test_vllm_first_scrape_has_no_rates_and_says_since_start():
    f = from_prometheus("vllm", scrape("vllm-busy.prom", 0.0))
    assert f.prompt_tps is None and f.generation_tps is None  # one reading: no rate
    assert f.ttft.scope == "since start" and f.ttft.requests == 20
    assert f.prefix_hit_pct == approx(40.0)  # 800 / 2000 since start
    assert "prompt_tps" in f.missing() and "generation_tps" in f.missing()


def test_vllm_before_v0_12_names():
    old = scrape("vllm-v0.11.prom", 5.0)
    f = from_prometheus("vllm", old)
    assert f.kv_cache_pct == 50.0  # gpu_cache_usage_perc
    assert f.prefix_hit_pct == approx(10.0)  # gpu_prefix_cache_hits / queries
    assert f.itl is not None and f.itl.p50 is not None  # time_per_output_token_seconds
    assert f.spec_accept_pct is None and "spec_accept_pct" in f.missing()


def test_counter_reset_gives_no_rate():
    busy, idle = scrape("vllm-busy.prom", 0.0), scrape("vllm-idle.prom", 10.0)
    f = from_prometheus("vllm", idle, rate_from=busy, latency_from=busy)
    assert f.generation_tps is None  # the counter fell: the server restarted
    assert f.ttft.scope == "since start"


def test_sglang_hand_worked():
    idle, busy = scrape("sglang-idle.prom", 0.0), scrape("sglang-busy.prom", 10.0)
    assert engine_of(busy.samples) == "sglang"
    f = from_prometheus("sglang", busy, rate_from=idle, latency_from=idle)
    assert (f.running, f.waiting) == (6, 3)
    assert f.kv_cache_pct == approx(28.0) and f.prefix_hit_pct == approx(25.0)
    assert f.prompt_tps == approx(200.0) and f.generation_tps == approx(100.0)
    # TTFT: 4 in (0.2, 0.4], 4 in (0.4, 0.6]: p50 0.4; p95 0.4 + 0.2 * 3.6/4
    assert (f.ttft.p50, f.ttft.p95) == (approx(0.4), approx(0.58))
    # e2e: 8 in (4, 6]: p50 4 + 2 * 4/8; p95 4 + 2 * 7.6/8
    assert (f.e2e.p50, f.e2e.p95) == (approx(5.0), approx(5.9))
    assert set(f.missing()) == {"preemptions", "itl", "spec_accept_pct"}
    # one reading: the engine's own throughput gauge stands in for the counter rate
    assert from_prometheus("sglang", busy).generation_tps == 251.5


def test_trtllm_iteration_stats_hand_worked():
    f = from_trtllm_stats(json.loads(page("trtllm-busy.json")), 1.0)
    assert (f.engine, f.running, f.waiting) == ("trtllm", 3, 1)
    assert f.kv_cache_pct == 25.0 and f.prefix_hit_pct == 50.0  # 1024 / 4096 blocks
    # iteration latencies 8..16 and 40 ms: nearest-rank p50 = 5th = 12, p95 = 10th = 40
    assert (f.itl.p50, f.itl.p95) == (approx(0.012), approx(0.040))
    assert f.itl.mean == approx(0.0148) and f.itl.scope == "per iteration"
    idle = from_trtllm_stats([], 2.0)
    assert idle is not None and idle.running is None and idle.itl is None
    assert from_trtllm_stats({"not": "stats"}, 0) is None


def test_ollama_ps():
    f = from_ollama_ps(json.loads(page("ollama-ps.json")), 0.0)
    assert f.models == ("gpt-oss:20b", "qwen3:8b")
    assert [m.vram_pct for m in f.loaded] == [100.0, 75.0]
    assert f.loaded[1].context_length == 4096
    assert f.running is None and "running" in f.missing()
    assert from_ollama_ps({"error": "x"}, 0) is None


def test_llama_slots():
    slots = [{"id": 0, "n_ctx": 256, "is_processing": True, "n_prompt_tokens": 20,
              "next_token": [{"n_decoded": 12}]},
             {"id": 1, "n_ctx": 256, "is_processing": False}]
    use = parse_slots(slots)
    assert (use.busy, use.total, use.tokens, use.context) == (1, 2, 32, 512)
    assert parse_slots({"error": 1}) is None and parse_slots([1]) is None


def test_scrape_history_picks_the_window_start():
    history = ScrapeHistory(keep_s=30)
    for t in range(0, 40, 2):
        history.add(Scrape(float(t), {}))
    now = Scrape(40.0, {})
    assert history.since(now, 10).t == 30.0
    assert history.since(Scrape(100.0, {}), 10).t == 38.0  # nothing inside: the last one
    assert min(s.t for s in history.scrapes) >= 8.0  # old ones are let go


def test_bad_pages_raise_metrics_error():
    with pytest.raises(MetricsError):
        parse_prometheus("vllm:x{le=\"1\" 3\n")
    assert engine_of(parse_prometheus("other_metric 1\n")) is None


@given(st.text(max_size=300))
def test_fuzz_prometheus_text(text):
    try:
        samples = parse_prometheus(text)
    except MetricsError:
        return
    engine = engine_of(samples)
    if engine is not None:
        from_prometheus(engine, Scrape(1.0, samples), rate_from=Scrape(0.0, samples))


@given(st.lists(st.tuples(st.floats(0, 100), st.integers(0, 50)), max_size=8),
       st.floats(0, 1))
def test_fuzz_quantile_stays_in_bounds(rows, q):
    bounds = sorted({round(b, 3) for b, _ in rows})
    counts = sorted(c for _, c in rows)[:len(bounds)]
    last = counts[-1] if counts else 0
    histogram = (*zip(bounds, counts, strict=False), (math.inf, last))
    value = histogram_quantile(q, histogram)
    if value is not None:
        assert 0 <= value <= (bounds[-1] if bounds else 0)


def test_buckets_sum_over_labels():
    text = ('h_bucket{le="1",a="x"} 1\nh_bucket{le="+Inf",a="x"} 2\n'
            'h_bucket{le="1",a="y"} 3\nh_bucket{le="+Inf",a="y"} 3\n')
    assert buckets(parse_prometheus(text), "h") == ((1.0, 4.0), (math.inf, 5.0))
