"""The models on the simulated Spark's disk: a Hugging Face cache, a GGUF file, a download.

Real files under the device root's home, in the Hugging Face hub's own layout
(refs/main, blobs, snapshots/REV/* -> ../../blobs/SHA), the weights sparse files
of their true size dated by their last use, so the product's MODELS_SCRIPT
(core.model_cache), its `head -c` of a config.json and its `rm -rf` of a model
run as on a Spark. The Llama model is the one the seeded vLLM container mounts
(sim.docker.seed), so it is in use; the Qwen3 download grows as time passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
        # the vLLM, SGLang and TRT-LLM presets' model: the deploy form weighs it for real
        SimModel("hf", "Qwen/Qwen2.5-0.5B-Instruct", (988_097_824,), 1.0,
                 {"architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": 24,
                  "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896,
                  "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}),
        SimModel("gguf", "gpt-oss-20b-mxfp4.gguf", (12_109_566_560,), 3.0),
    ]


def _sha(*parts: object) -> str:
    return hashlib.sha256(" ".join(map(str, parts)).encode()).hexdigest()


@dataclass
class SimModelDisk:
    """The models of one simulated device; deletes stick for the life of the device."""

    clock: Callable[[], float] = time.time  # wall time
    models: list[SimModel] = field(default_factory=demo_models)
    started: float | None = None  # when the download in progress was at its first size

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    def path(self, model: SimModel, home: str) -> str:
        if model.source == "gguf":
            return f"{home}/{model.folder}/{model.name}"
        return f"{home}/.cache/huggingface/hub/{model.hf_folder()}"

    # -- the same models as files, for a real sh ------------------------------------------
    def seed_files(self, home: Path) -> None:
        """Write every model under `home` as the hub (or llama.cpp) would leave it."""
        now = self.clock()
        for model in self.models:
            used = now - model.last_used_days * 86_400
            path = Path(self.path(model, str(home)))
            if model.source == "gguf":
                _sparse(path, model.shards[0], used)
                continue
            rev = _sha(model.name, "rev")[:40]
            (path / "refs").mkdir(parents=True, exist_ok=True)
            (path / "refs" / "main").write_text(rev)
            snapshot = path / "snapshots" / rev
            snapshot.mkdir(parents=True, exist_ok=True)
            files = [(f"model-{i + 1:05d}-of-{len(model.shards):05d}.safetensors",
                      _sha(model.name, i), size) for i, size in enumerate(model.shards)]
            for name, blob, size in files:
                _sparse(path / "blobs" / blob, size, used)
                _link(snapshot / name, f"../../blobs/{blob}")
            if model.config is not None:
                blob = path / "blobs" / _sha(model.name, "config")
                blob.write_text(json.dumps(model.config))
                os.utime(blob, (used, used))
                _link(snapshot / "config.json", f"../../blobs/{blob.name}")
            if model.downloading_from is not None:
                self.grow_download(home)

    def grow_download(self, home: Path) -> None:
        """The unfinished blob at the size it has reached by now."""
        now = self.clock()
        for model in self.models:
            if model.downloading_from is None:
                continue
            size = model.downloading_from + int((now - (self.started or now))
                                                * DOWNLOAD_BYTES_S)
            blobs = Path(self.path(model, str(home))) / "blobs"
            if blobs.is_dir():  # not when the user deleted the model
                _sparse(blobs / f"{_sha(model.name, 'next')}.incomplete", size, now)


def _sparse(path: Path, size: int, when: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.truncate(size)  # a hole: the apparent size, no blocks
    os.utime(path, (when, when))


def _link(path: Path, target: str) -> None:
    if not path.is_symlink():
        path.symlink_to(target)
