"""Serving figures in words: one formatter for `sparktui serving` and the Serving tab.

A figure the engine does not expose reads "—" (never 0); latency percentiles
say what they cover ("last 60 s", "since start", "per iteration").
"""

from __future__ import annotations

from sparktui.core.serving import Latency, ServingFigures

MISSING = "—"
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "llamacpp": "llama.cpp",
                "trtllm": "TRT-LLM", "ollama": "Ollama", "openai": "OpenAI-compatible"}


def engine_name(engine: str) -> str:
    return ENGINE_NAMES.get(engine, engine)


def number(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return MISSING
    text = f"{value:.{digits}f}"
    return f"{text} {unit}" if unit else text


def count(value: float | None) -> str:
    return MISSING if value is None else f"{value:g}"


def seconds(value: float | None) -> str:
    """0.0123 -> '12.3 ms', 2.5 -> '2.50 s'."""
    if value is None:
        return MISSING
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.2f} s"


def latency(value: Latency | None) -> str:
    if value is None or (value.p50 is None and value.mean is None):
        return MISSING
    if value.p50 is None:
        return f"mean {seconds(value.mean)} ({value.scope})"
    about = value.scope
    if value.requests is not None and value.scope != "per iteration":
        about += f", n={value.requests:g}"
    return f"p50 {seconds(value.p50)} p95 {seconds(value.p95)} ({about})"


def figure_lines(f: ServingFigures) -> list[tuple[str, str]]:
    """(label, value) rows in reading order; the Serving tab and the CLI print these."""
    kv = number(f.kv_cache_pct, 1, "%")
    if f.kv_cache_pct is not None and f.kv_scope not in ("", "engine"):
        kv += f" ({f.kv_scope})"
    rows = [
        ("requests", f"run {count(f.running)}  wait {count(f.waiting)}  "
                     f"preempted {count(f.preemptions)}"),
        ("KV cache", kv),
        ("prefix hits", number(f.prefix_hit_pct, 1, "%")),
        ("tokens/s", f"prompt {number(f.prompt_tps, 0)}  gen {number(f.generation_tps, 1)}"),
        ("TTFT", latency(f.ttft)),
        ("inter-token", latency(f.itl)),
        ("end-to-end", latency(f.e2e)),
        ("spec decode", number(f.spec_accept_pct, 1, "% accepted")),
    ]
    if f.slots is not None:
        rows.append(("slots", f"{f.slots.busy}/{f.slots.total} busy, "
                              f"{f.slots.tokens}/{f.slots.context} tokens"))
    for model in f.loaded:
        vram = number(model.vram_pct, 0, "% in GPU memory")
        size = number(model.size_bytes / 1024**3 if model.size_bytes else None, 1, "GiB")
        rows.append(("loaded", f"{model.name}  {size}  {vram}  ctx "
                               f"{count(model.context_length)}  until "
                               f"{model.expires_at or MISSING}"))
    return rows


def missing_line(f: ServingFigures) -> str | None:
    names = {"running": "running", "waiting": "waiting", "kv_cache_pct": "KV cache",
             "preemptions": "preemptions", "prefix_hit_pct": "prefix hits",
             "prompt_tps": "prompt tokens/s", "generation_tps": "generation tokens/s",
             "ttft": "TTFT", "itl": "inter-token", "e2e": "end-to-end",
             "spec_accept_pct": "spec decode"}
    gone = [names[m] for m in f.missing()]
    return ("not exposed: " + ", ".join(gone)) if gone else None
