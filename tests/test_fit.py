"""Will-it-fit arithmetic, against cases worked by hand for a dense and an MLA model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparktui.core.fit import GIB, FitError, FitInput, kv_shape, weigh

# Llama-3.1-8B-Instruct's config.json (the figures that matter)
LLAMA_8B = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
            "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
            "torch_dtype": "bfloat16"}
# DeepSeek-V2-Lite's config.json: MLA
DEEPSEEK_V2_LITE = {"architectures": ["DeepseekV2ForCausalLM"], "hidden_size": 2048,
                    "num_attention_heads": 16, "num_key_value_heads": 16,
                    "num_hidden_layers": 27, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
                    "qk_nope_head_dim": 128, "v_head_dim": 128}
LLAMA_WEIGHTS = 16_060_522_496  # the four safetensors shards of Llama-3.1-8B, in bytes


def test_dense_gqa_by_hand():
    # per token: 32 layers x 2 (K, V) x 8 KV heads x 128 head_dim (4096 / 32) x 2 B (bf16)
    #          = 32 x 2048 x 2 = 131072 B = 128 KiB
    # KV for 8192 context x 4 concurrent = 32768 tokens x 128 KiB = 4 GiB exactly
    # needed = 16060522496 + 4294967296 + 2 GiB overhead (2147483648) = 22502973440 B
    shape = kv_shape(LLAMA_8B)
    assert (shape.layers, shape.elements_per_layer, shape.kind) == (32, 2048, "GQA")
    base = FitInput("meta-llama/Llama-3.1-8B-Instruct", LLAMA_WEIGHTS, LLAMA_8B,
                    context_tokens=8192, concurrency=4)
    roomy = weigh(FitInput(**{**base.__dict__, "mem_free": 40 * GIB,
                              "mem_available": 100 * GIB}))
    assert roomy.kv_per_token_bytes == 131072 and roomy.kv_bytes == 4 * GIB
    assert roomy.need_bytes == 22_502_973_440
    assert roomy.verdict == "yes"  # 22502973440 + 4 GiB headroom <= 40 GiB
    assert "19.04 GiB to spare" in roomy.reason  # 40 GiB - 20.96 GiB
    cached = weigh(FitInput(**{**base.__dict__, "mem_free": 20 * GIB,
                               "mem_available": 100 * GIB}))
    assert cached.verdict == "tight" and "drop caches" in cached.reason
    full = weigh(FitInput(**{**base.__dict__, "mem_free": 10 * GIB,
                             "mem_available": 20 * GIB}))
    # 22502973440 - 21474836480 = 1028136960 B = 0.96 GiB short
    assert full.verdict == "no" and full.reason.startswith("0.96 GiB more")
    text = "\n".join(roomy.arithmetic)
    assert "128.0 KiB x 8192 context x 4 concurrent = 4.00 GiB" in text
    assert "needed                20.96 GiB" in text


def test_mla_by_hand():
    # per token: 27 layers x (kv_lora_rank 512 + qk_rope_head_dim 64) x 2 B
    #          = 27 x 576 x 2 = 31104 B = 30.375 KiB  (GQA-style counting would say
    #            27 x 2 x 16 x 128 x 2 = 221184 B, 7.1 times more)
    # KV for 32768 context x 2 concurrent = 65536 tokens x 31104 B = 2038431744 B = 1.90 GiB
    # needed = 30 GiB + 1.90 GiB + 2 GiB = 33.90 GiB: inside 36 GiB MemFree, but not with
    # the 4 GiB headroom -> tight. Counted as GQA it would be 45.5 GiB -> no.
    shape = kv_shape(DEEPSEEK_V2_LITE)
    assert (shape.elements_per_layer, shape.kind) == (576, "MLA")
    verdict = weigh(FitInput("deepseek-ai/DeepSeek-V2-Lite", 30 * GIB, DEEPSEEK_V2_LITE,
                             context_tokens=32768, concurrency=2, mem_free=36 * GIB,
                             mem_available=60 * GIB))
    assert verdict.kv_per_token_bytes == 31104 and verdict.kv_bytes == 2_038_431_744
    assert verdict.need_bytes == 30 * GIB + 2_038_431_744 + 2 * GIB
    assert verdict.verdict == "tight" and "headroom" in verdict.reason
    naive = {k: v for k, v in DEEPSEEK_V2_LITE.items() if k != "kv_lora_rank"}
    assert kv_shape(naive).elements_per_layer == 2 * 16 * 128
    assert weigh(FitInput("x", 30 * GIB, naive, 32768, 2, mem_free=36 * GIB,
                          mem_available=40 * GIB)).verdict == "no"


def test_fp8_kv_and_text_config_and_missing_parts():
    nested = {"architectures": ["Gemma3ForConditionalGeneration"],
              "text_config": {"num_hidden_layers": 4, "num_attention_heads": 8,
                              "num_key_value_heads": 4, "head_dim": 256}}
    assert kv_shape(nested).elements_per_layer == 2 * 4 * 256
    fp8 = weigh(FitInput("m", GIB, LLAMA_8B, 1024, kv_dtype="fp8", mem_free=64 * GIB,
                         mem_available=64 * GIB))
    assert fp8.kv_per_token_bytes == 65536
    with pytest.raises(FitError):
        kv_shape({"hidden_size": 10})
    unknown = weigh(FitInput("m", GIB, None, 1024))
    assert unknown.verdict == "unknown" and unknown.kv_bytes is None
    assert any("not counted" in line for line in unknown.arithmetic)


@given(st.dictionaries(st.sampled_from(["num_hidden_layers", "num_attention_heads",
                                        "num_key_value_heads", "head_dim", "hidden_size",
                                        "kv_lora_rank", "qk_rope_head_dim", "text_config"]),
                       st.one_of(st.integers(-5, 10**6), st.none(), st.text(max_size=3),
                                 st.booleans())),
       st.integers(0, 2**40), st.integers(1, 2**20))
def test_fuzz_configs_never_crash(config, weights, context):
    result = weigh(FitInput("m", weights, config, context, mem_free=64 * GIB,
                            mem_available=100 * GIB))
    assert result.verdict in ("yes", "tight", "no")
    assert result.need_bytes >= weights
