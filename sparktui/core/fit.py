"""Will it fit, now: a model's weights plus its KV cache against the device's free memory.

The KV cache per token comes from the model's config.json:
- standard attention (MHA/GQA): every layer keeps K and V for each KV head,
  2 x num_key_value_heads x head_dim elements;
- MLA (DeepSeek-V2/V3, Kimi-K2: `kv_lora_rank` in the config): every layer
  keeps one compressed latent plus the decoupled RoPE key,
  kv_lora_rank + qk_rope_head_dim elements, shared by all heads. Counting it
  as GQA overstates DeepSeek's cache several times (sparkrun #248).
Multimodal configs keep the language model's figures under `text_config`.

The budget is the device's memory now, not a nameplate 128 GB: on a GB10,
CUDA's free memory follows MemFree (page cache counts as used), while
MemAvailable is what the kernel could hand over after dropping caches. So:
- yes:   weights + KV + overhead fit in MemFree, with the headroom left;
- tight: they fit only in MemAvailable (drop caches first), or eat the headroom;
- no:    they do not fit even in MemAvailable.
An engine that takes a fixed share of the whole memory at start (vLLM's
--gpu-memory-utilization, 0.9 unless told) is weighed by that share instead, and
is "no" when the model needs more than the share holds.
Every step of the arithmetic is kept, so the verdict can be shown with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
DEFAULT_OVERHEAD_BYTES = 2 * GIB  # CUDA context, activations, the server's own Python
DEFAULT_HEADROOM_BYTES = 4 * GIB  # left for the OS and the user's desktop
KV_DTYPE_BYTES = {"fp16": 2, "bf16": 2, "auto": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1,
                  "int8": 1, "fp32": 4, "q8_0": 1, "q4_0": 0.5}


#: the verdict in words, as the deploy form and `sparktui fit` say it
VERDICT_WORDS = {"yes": "fits", "tight": "tight", "no": "won't fit", "unknown": "can't tell"}


class FitError(ValueError):
    """The config lacks what the KV arithmetic needs (the message names the key)."""


@dataclass(frozen=True)
class KvShape:
    layers: int
    elements_per_layer: float  # cached elements per token per layer
    kind: str  # "MLA" or "GQA" / "MHA"
    detail: str  # how elements_per_layer was found, in words


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    inner = config.get("text_config")
    if isinstance(inner, dict):
        return {**config, **inner}
    return config


def _int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def kv_shape(config: dict[str, Any]) -> KvShape:
    """Per-token KV-cache elements of one layer, MLA-aware (raises FitError)."""
    c = _text_config(config)
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    if layers is None:
        raise FitError("config.json has no num_hidden_layers")
    rank = _int(c, "kv_lora_rank")
    if rank is not None:
        rope = _int(c, "qk_rope_head_dim") or 0
        return KvShape(layers, rank + rope, "MLA",
                       f"MLA latent: kv_lora_rank {rank} + qk_rope_head_dim {rope}")
    heads = _int(c, "num_attention_heads", "n_head")
    if heads is None:
        raise FitError("config.json has no num_attention_heads")
    kv_heads = _int(c, "num_key_value_heads", "n_head_kv") or heads
    head_dim = _int(c, "head_dim")
    if head_dim is None:
        hidden = _int(c, "hidden_size", "n_embd")
        if hidden is None:
            raise FitError("config.json has neither head_dim nor hidden_size")
        head_dim = hidden // heads
    kind = "MHA" if kv_heads == heads else "GQA"
    return KvShape(layers, 2 * kv_heads * head_dim, kind,
                   f"{kind}: 2 (K, V) x {kv_heads} KV heads x head_dim {head_dim}")


@dataclass(frozen=True)
class FitInput:
    model: str
    weights_bytes: int | None  # None: not on the device's disk (said in the verdict)
    config: dict[str, Any] | None  # None: KV cannot be weighed (said in the verdict)
    context_tokens: int
    concurrency: int = 1
    kv_dtype: str = "bf16"
    mem_free: int | None = None
    mem_available: int | None = None
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    headroom_bytes: int = DEFAULT_HEADROOM_BYTES
    #: what the engine takes at start whatever the model needs (vLLM: a share of
    #: MemTotal), and how that was worked out; None: it takes what the model needs
    reserve_bytes: int | None = None
    reserve_detail: str = ""


@dataclass(frozen=True)
class FitVerdict:
    verdict: str  # "yes", "tight", "no", or "unknown" (no memory or weights figures)
    need_bytes: int | None
    weights_bytes: int | None
    kv_bytes: int | None
    kv_per_token_bytes: float | None
    reason: str
    arithmetic: tuple[str, ...] = field(default_factory=tuple)
    reserve_bytes: int | None = None  # what the engine takes at start, when it says

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "need_bytes": self.need_bytes,
                "reserve_bytes": self.reserve_bytes,
                "weights_bytes": self.weights_bytes, "kv_bytes": self.kv_bytes,
                "kv_per_token_bytes": self.kv_per_token_bytes, "reason": self.reason,
                "arithmetic": list(self.arithmetic)}


def gib(value: float | None) -> str:
    return "—" if value is None else f"{value / GIB:.2f} GiB"


def weigh(item: FitInput) -> FitVerdict:
    """The verdict and every line of its arithmetic."""
    if item.weights_bytes is None:
        lines = [f"weights on disk       —  ({item.model} is not on the device's disk: "
                 "its size is missing)"]
    else:
        lines = [f"weights on disk       {gib(item.weights_bytes)}  ({item.model})"]
    kv_bytes: int | None = None
    per_token: float | None = None
    kv_problem = ""
    if item.config is None:
        kv_problem = "no config.json: the KV cache is not counted"
    else:
        try:
            shape = kv_shape(item.config)
        except FitError as exc:
            kv_problem = f"{exc}: the KV cache is not counted"
        else:
            width = KV_DTYPE_BYTES.get(item.kv_dtype.lower(), 2)
            per_token = shape.layers * shape.elements_per_layer * width
            tokens = item.context_tokens * item.concurrency
            kv_bytes = int(per_token * tokens)
            lines.append(f"KV per token          {shape.layers} layers x "
                         f"{shape.elements_per_layer:g} ({shape.detail}) x {width:g} B "
                         f"({item.kv_dtype}) = {per_token / 1024:.1f} KiB")
            lines.append(f"KV cache              {per_token / 1024:.1f} KiB x "
                         f"{item.context_tokens} context x {item.concurrency} concurrent = "
                         f"{gib(kv_bytes)}")
    if kv_problem:
        lines.append(f"KV cache              — ({kv_problem})")
    need = None if item.weights_bytes is None else \
        item.weights_bytes + (kv_bytes or 0) + item.overhead_bytes
    lines.append(f"runtime overhead      {gib(item.overhead_bytes)} (assumed: CUDA context, "
                 "activations)")
    lines.append(f"needed                {gib(need)}")
    take = need
    if item.reserve_bytes is not None:
        lines.append(f"the engine takes      {gib(item.reserve_bytes)} ({item.reserve_detail}; "
                     "its start-up check wants this much free)")
        take = item.reserve_bytes if need is not None else None
    lines.append(f"MemFree now           {gib(item.mem_free)}  (what CUDA sees as free on "
                 "a GB10)")
    lines.append(f"MemAvailable now      {gib(item.mem_available)}  (after dropping "
                 "caches)")
    lines.append(f"headroom kept         {gib(item.headroom_bytes)} (the OS and desktop)")
    free, available = item.mem_free, item.mem_available
    if need is None or take is None:
        verdict, reason = "unknown", f"{item.model} is not on disk: its size is missing"
    elif item.reserve_bytes is not None and need > item.reserve_bytes:
        verdict = "no"
        reason = (f"the model needs {gib(need)}, more than the {gib(item.reserve_bytes)} the "
                  "engine takes: raise its share or shorten the context")
    elif free is None and available is None:
        verdict, reason = "unknown", "no memory figures from the device yet"
    elif free is not None and take + item.headroom_bytes <= free:
        verdict = "yes"
        reason = f"fits in MemFree with {gib(free - take)} to spare"
    elif available is not None and take <= available:
        verdict = "tight"
        if free is not None and take <= free:
            reason = f"fits in MemFree but eats the {gib(item.headroom_bytes)} headroom"
        else:
            reason = ("fits only in MemAvailable: drop caches first, or vLLM's start-up "
                      "check (which reads MemFree through CUDA) may refuse")
    else:
        verdict = "no"
        short = take - (available if available is not None else free or 0)
        reason = f"{gib(short)} more than MemAvailable"
        if item.reserve_bytes is not None and available is not None and need <= available:
            reason += f"; the model itself needs {gib(need)}: a smaller share would do"
    if kv_problem and verdict in ("yes", "tight"):
        reason += f"; {kv_problem}"
    lines.append(f"verdict               {verdict}: {reason}")
    return FitVerdict(verdict, need, item.weights_bytes, kv_bytes, per_token, reason,
                      tuple(lines), item.reserve_bytes)
