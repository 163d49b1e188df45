"""What a server's command line says about the memory it will take, for a fit before a deploy.

The model it serves (`vllm serve M`, `--model-path M`, `-m FILE`, `-hf REPO`, or a
model on the device's disk named anywhere in the command or environment), the
context it holds per sequence and how many sequences at once, and the KV-cache
element type, each read from the engine's own flag:
- context:     vLLM --max-model-len, SGLang --context-length, TRT-LLM --max_seq_len,
               llama.cpp -c/--ctx-size (one pool its -np slots share);
- concurrency: vLLM --max-num-seqs, SGLang --max-running-requests, TRT-LLM
               --max_batch_size (llama.cpp's slots split -c, so they add nothing);
- KV dtype:    --kv-cache-dtype (vLLM, SGLang), -ctk/--cache-type-k (llama.cpp);
- vLLM's share: --gpu-memory-utilization (0.9 when absent): vLLM takes that share of
               the device's whole memory at start, and its start-up check refuses to
               start unless as much is free (on a GB10, free follows MemFree).
A figure the command does not give is assumed, and the shape says so in words.
Pure functions: no I/O.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_CONTEXT = 8192
DEFAULT_CONCURRENCY = 1
DEFAULT_KV_DTYPE = "bf16"
VLLM_DEFAULT_UTILIZATION = 0.9

CONTEXT_FLAGS = ("--max-model-len", "--context-length", "--max_seq_len", "--max-seq-len",
                 "-c", "--ctx-size")
SHARED_POOL_FLAGS = ("-c", "--ctx-size")  # llama.cpp: the slots share this one pool
CONCURRENCY_FLAGS = ("--max-num-seqs", "--max-running-requests", "--max_batch_size",
                     "--max-batch-size")
KV_DTYPE_FLAGS = ("--kv-cache-dtype", "-ctk", "--cache-type-k")
MODEL_FLAGS = ("serve", "--model", "--model-path", "-m", "--model_path", "-hf", "--hf-repo")
MODEL_ENV = ("MODEL_HANDLE", "MODEL", "MODEL_NAME")

_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)([kKmM]?)$")


@dataclass(frozen=True)
class ServeShape:
    context_tokens: int
    concurrency: int
    kv_dtype: str
    notes: tuple[str, ...]  # where each figure came from, one line each
    #: vLLM: the share of MemTotal it takes at start; None for the other engines
    reserve_fraction: float | None = None
    reserve_source: str = ""


def words_of(command: str) -> list[str]:
    """The command's words as the shell would split them (a stray quote: on spaces)."""
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _flags(words: list[str]) -> dict[str, str]:
    """`--flag value` and `--flag=value` -> {flag: value}; the last one wins, as in argparse."""
    out: dict[str, str] = {}
    for i, word in enumerate(words):
        if not word.startswith("-"):
            continue
        name, sep, value = word.partition("=")
        if sep:
            out[name] = value
        elif i + 1 < len(words) and not words[i + 1].startswith("--"):
            out[name] = words[i + 1]
    return out


def tokens(text: str) -> int | None:
    """'32768', '32k', '1M' -> a whole positive number of tokens; None otherwise."""
    match = _TOKENS.match(text.strip())
    if not match:
        return None
    value = float(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[match.group(2).lower()]
    return int(value) if value >= 1 else None


def _is_vllm(words: list[str]) -> bool:
    return any(w == "vllm" or w.rsplit("/", 1)[-1] == "vllm" or w.startswith("vllm.")
               for w in words)


def _fraction(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value <= 1 else None


def serve_shape(command: str) -> ServeShape:
    words = words_of(command)
    flags = _flags(words)
    notes: list[str] = []
    context, concurrency = DEFAULT_CONTEXT, DEFAULT_CONCURRENCY
    flag = next((f for f in CONTEXT_FLAGS if f in flags and tokens(flags[f])), None)
    if flag is not None:
        context = tokens(flags[flag]) or DEFAULT_CONTEXT
        shared = " (one pool, shared by its slots)" if flag in SHARED_POOL_FLAGS else ""
        notes.append(f"context {context} tokens, from {flag}{shared}")
    else:
        notes.append(f"context {context} tokens: assumed (no {CONTEXT_FLAGS[0]} or the "
                     "engine's context flag in the command)")
    flag = next((f for f in CONCURRENCY_FLAGS if f in flags and tokens(flags[f])), None)
    if flag is not None:
        concurrency = tokens(flags[flag]) or DEFAULT_CONCURRENCY
        notes.append(f"{concurrency} sequences at once, from {flag}")
    else:
        notes.append(f"{concurrency} sequence at once: assumed (no {CONCURRENCY_FLAGS[0]} "
                     "or the engine's batch flag in the command)")
    flag = next((f for f in KV_DTYPE_FLAGS if f in flags), None)
    kv_dtype = flags[flag] if flag is not None else DEFAULT_KV_DTYPE
    if flag is None:
        notes.append(f"KV cache in {kv_dtype}: assumed")
    reserve, source = None, ""
    if _is_vllm(words):
        given = _fraction(flags.get("--gpu-memory-utilization", ""))
        reserve = given or VLLM_DEFAULT_UTILIZATION
        source = "--gpu-memory-utilization" if given else "vLLM's default share"
        notes.append(f"vLLM takes {reserve:g} of the device's memory at start, from {source}")
    return ServeShape(context, concurrency, kv_dtype, tuple(notes), reserve, source)


def requested_model(command: str, env: Mapping[str, str] | None = None) -> str | None:
    """The model the command asks for by its engine's flag (or MODEL_HANDLE), if any."""
    words = words_of(command)
    for flag in MODEL_FLAGS:
        for i, word in enumerate(words[:-1]):
            if word != flag or words[i + 1].startswith("-"):
                continue
            if flag == "-m" and i and words[i - 1].rsplit("/", 1)[-1].startswith("python"):
                continue  # `python3 -m package`: a module, not a model
            return words[i + 1]
        for word in words:
            if word.startswith(flag + "=") and flag.startswith("--"):
                return word.partition("=")[2] or None
    for key in MODEL_ENV:
        value = (env or {}).get(key, "").strip()
        if value:
            return value
    return None


def _gguf_of_repo(repo: str, file_name: str) -> bool:
    """llama.cpp's cache keeps `-hf ORG/NAME` files as ORG_NAME_FILE.gguf."""
    return file_name.startswith(repo.replace("/", "_") + "_")


def find_model(command: str, env: Mapping[str, str] | None,
               names: Iterable[str]) -> str | None:
    """Which of `names` (models on the device's disk) the command serves, if any: the one
    its model flag names (a GGUF by its file name), else the longest named anywhere."""
    names = list(names)
    wanted = requested_model(command, env)
    if wanted is not None:
        base = wanted.rstrip("/").rsplit("/", 1)[-1]
        for name in names:
            if name == wanted or (name.endswith(".gguf") and (
                    name == base or _gguf_of_repo(wanted, name))):
                return name
        return None
    text = " ".join([command, *(env or {}).values()])
    named = [n for n in names if re.search(rf"(?<![\w./-]){re.escape(n)}(?![\w.-])", text)]
    return max(named, key=len, default=None)
