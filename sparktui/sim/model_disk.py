"""The models on the simulated Spark's disk: a Hugging Face cache, a GGUF file, a download.

Real files under the device root's home, laid out as the Hugging Face hub
lays them out (refs/main, blobs, snapshots/REV/config.json -> ../../blobs/SHA),
the weights as sparse files of their true size with the access and change
times of their last use, so the product's MODELS_SCRIPT (core.model_cache),
its `head -c` of a config.json and its `rm -rf` of a model run as on a Spark.
The Llama model is the one the seeded vLLM container mounts
(sim.docker_seed), so it is in use. The Qwen3 download grows as time passes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GB = 1000**3
DOWNLOAD_BYTES_S = 40_000_000  # how fast the download in progress grows

_LLAMA_8B = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096,
             "head_dim": 128, "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
_QWEN_7B = {"architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_size": 3584,
            "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
# MLA: the KV cache is the compressed latent (kv_lora_rank) plus the RoPE key
_DEEPSEEK_LITE = {"architectures": ["DeepseekV2ForCausalLM"], "num_hidden_layers": 27,
                  "num_attention_heads": 16, "num_key_value_heads": 16, "hidden_size": 2048,
                  "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
                  "v_head_dim": 128, "torch_dtype": "bfloat16"}


@dataclass
class SimModel:
    source: str  # "hf" or "gguf"
    name: str  # ORG/NAME, or the GGUF file's name
    shards: tuple[int, ...]  # complete files' sizes in bytes
    last_used_days: float
    config: dict[str, Any] | None = None
    #: an unfinished download: the blob grows from this size at DOWNLOAD_BYTES_S
    downloading_from: int | None = None
    folder: str = "models"  # a GGUF file's folder under the home

    def hf_folder(self) -> str:
        return "models--" + self.name.replace("/", "--")


def demo_models() -> list[SimModel]:
    return [
        SimModel("hf", "meta-llama/Llama-3.1-8B-Instruct",
                 (4_976_698_672, 5_000_005_120, 4_915_916_176, 1_168_138_808), 0.02, _LLAMA_8B),
        SimModel("hf", "Qwen/Qwen2.5-7B-Instruct",
                 (3_945_441_440, 3_864_726_320, 3_864_726_424, 3_556_377_672), 9.0, _QWEN_7B),
        SimModel("hf", "deepseek-ai/DeepSeek-V2-Lite-Chat",
                 (8_589_934_592, 8_589_934_592, 8_589_934_592, 5_634_244_608), 41.0,
                 _DEEPSEEK_LITE),
        SimModel("hf", "Qwen/Qwen3-30B-A3B", (3_998_893_112,), 0.0,
                 {"num_hidden_layers": 48, "num_attention_heads": 32,
                  "num_key_value_heads": 4, "head_dim": 128, "hidden_size": 2048},
                 downloading_from=1_200_000_000),
        SimModel("gguf", "gpt-oss-20b-mxfp4.gguf", (12_109_566_560,), 3.0),
    ]


def _sha(*parts: object) -> str:
    return hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()


def _sparse(path: Path, size: int, used: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.truncate(size)  # a hole: no disk space, the true apparent size
    os.utime(path, (used, used))


def write_models(home: Path, now: float, models: list[SimModel] | None = None) -> None:
    """Put the demo's models under `home` (wall time `now` dates their last use)."""
    for model in demo_models() if models is None else models:
        used = now - model.last_used_days * 86_400
        if model.source == "gguf":
            _sparse(home / model.folder / model.name, model.shards[0], used)
            continue
        repo = home / ".cache" / "huggingface" / "hub" / model.hf_folder()
        revision = _sha(model.name, "rev")[:40]
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision, encoding="utf-8")
        for index, size in enumerate(model.shards):
            _sparse(repo / "blobs" / _sha(model.name, index), size, used)
        if model.downloading_from is not None:
            _sparse(repo / "blobs" / f"{_sha(model.name, 'next')}.incomplete",
                    model.downloading_from, now)
        if model.config is not None:
            blob = repo / "blobs" / _sha(model.name, "config")
            blob.write_text(json.dumps(model.config, indent=2) + "\n", encoding="utf-8")
            os.utime(blob, (used, used))
            snapshot = repo / "snapshots" / revision
            snapshot.mkdir(parents=True, exist_ok=True)
            (snapshot / "config.json").symlink_to(f"../../blobs/{blob.name}")


def grow_downloads(home: Path, seconds: float) -> None:
    """The download in progress has gone on for `seconds` since the models were written."""
    for model in demo_models():
        if model.downloading_from is None:
            continue
        blob = (home / ".cache" / "huggingface" / "hub" / model.hf_folder() / "blobs"
                / f"{_sha(model.name, 'next')}.incomplete")
        size = model.downloading_from + int(seconds * DOWNLOAD_BYTES_S)
        try:
            with open(blob, "r+b") as fh:  # gone when the user deleted the model
                fh.truncate(size)
        except FileNotFoundError:
            pass
