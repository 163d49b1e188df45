"""What the simulated Docker Engine runs: the seeded containers and how each kind logs.

The containers a DGX Spark owner typically has after NVIDIA's playbooks:
Ollama, a vLLM server with a health check, Open WebUI and an old ComfyUI that
the OOM killer took a day ago. A `Profile` says how a kind of server talks
(startup lines with the ANSI colours the real servers print, one request's
line, how busy it is); a container created through the API gets the profile
its image suggests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

OUT, ERR = 1, 2  # the stream numbers of Docker's multiplexed log frames
GREEN, YELLOW, BOLD, RESET = "\x1b[32m", "\x1b[33m", "\x1b[1m", "\x1b[0m"
SEED_HOME = "/home/spark"  # the seeded volumes' home; the engine puts the device's in its place


def info_line(text: str) -> str:
    return f"{GREEN}INFO{RESET}:     {text}"


@dataclass(frozen=True)
class Profile:
    kind: str
    #: (seconds after start, stream, text); text may hold {model}, {port}, {name}, {image}
    startup: tuple[tuple[float, int, str], ...]
    paths: tuple[str, ...]  # what its clients ask for, one log line each
    cpu_idle: float  # cores busy between requests
    cpu_busy: float  # extra cores during a request
    mem_bytes: int

    def request_line(self, rng: random.Random) -> tuple[int, str]:
        method, _, path = rng.choice(self.paths).partition(" ")
        if self.kind == "ollama":  # gin, on stderr
            return ERR, (f"[GIN] | 200 | {rng.uniform(0.4, 9.5):10.3f}ms | 172.17.0.3 | "
                         f"{method:<7} \"{path}\"")
        client = f"172.17.0.1:{rng.randint(32768, 60999)}"
        return OUT, info_line(f'{client} - "{BOLD}{method} {path} HTTP/1.1{RESET}" '
                              f"{GREEN}200 OK{RESET}")


_SERVE = ("POST /v1/chat/completions", "POST /v1/chat/completions", "GET /health")
_INFO, _WARN = f"{GREEN}INFO{RESET}", f"{YELLOW}WARNING{RESET}"
VLLM = Profile("vllm", (
    (0.0, OUT, f"{_INFO} [api_server.py:1896] vLLM API server version 0.10.1.1"),
    (0.5, OUT, f"{_INFO} [gpu_model_runner.py:2370] Starting to load model {{model}}"),
    (0.7, ERR, f"{_WARN} [cuda.py:103] GB10 (compute capability 12.1) is newer than the "
               "kernels tuned for this release; using generic Triton configs."),
    (2.5, OUT, f"{_INFO} [gpu_worker.py:298] Available KV cache memory: 62.48 GiB"),
    (4.3, OUT, f"{_INFO} [api_server.py:1631] Starting vLLM API server on http://0.0.0.0:{{port}}"),
    (4.5, OUT, info_line("Application startup complete.")),
), _SERVE, cpu_idle=1.02, cpu_busy=0.9, mem_bytes=6_700 << 20)
OLLAMA = Profile("ollama", (
    (0.0, ERR, 'level=INFO source=routes.go:1385 msg="Listening on [::]:11434 (version 0.12.6)"'),
    (0.8, ERR, 'level=INFO source=types.go:131 msg="inference compute" library=cuda '
               'compute=12.1 name="NVIDIA GB10" total="119.7 GiB"'),
), ("GET /api/tags", "GET /api/version", "POST /api/chat"), cpu_idle=0.04, cpu_busy=2.6,
    mem_bytes=5_300 << 20)
WEBUI = Profile("webui", (
    (0.0, OUT, "Loading WEBUI_SECRET_KEY from .webui_secret_key"),
    (1.0, OUT, f"{_WARN} CORS_ALLOW_ORIGIN IS SET TO '*' - NOT RECOMMENDED"),
    (1.8, OUT, info_line(f"Uvicorn running on {BOLD}http://0.0.0.0:8080{RESET}")),
), ("GET /api/models", "GET /_app/version.json", "GET /api/v1/chats/?page=1"), cpu_idle=0.02,
    cpu_busy=0.15, mem_bytes=780 << 20)
COMFYUI = Profile("comfyui", (
    (0.0, OUT, "Total VRAM 122570 MB, total RAM 122570 MB"),
    (0.3, OUT, "Device: cuda:0 NVIDIA GB10 : cudaMallocAsync"),
    (1.0, OUT, "To see the GUI go to: http://0.0.0.0:8188"),
), ("POST /prompt",), cpu_idle=0.05, cpu_busy=1.4, mem_bytes=9_800 << 20)
#: anything else, e.g. a deployed SGLang, TensorRT-LLM, llama.cpp or NIM
GENERIC = Profile("generic", (
    (0.0, OUT, f"{_INFO} starting {{name}} ({{image}})"),
    (0.5, OUT, f"{_INFO} loading model {{model}}"),
    (1.5, ERR, f"{_WARN} GB10 detected: unified memory, page cache counts against the "
               "model's memory"),
    (3.0, OUT, info_line("Uvicorn running on http://0.0.0.0:{port} (Press CTRL+C to quit)")),
), _SERVE, cpu_idle=0.6, cpu_busy=0.8, mem_bytes=3_100 << 20)


def profile_for(image: str) -> Profile:
    needles = (("vllm", VLLM), ("ollama/ollama", OLLAMA), ("open-webui", WEBUI),
               ("pytorch", COMFYUI))
    return next((p for needle, p in needles if needle in image.lower()), GENERIC)


_DAY = 86_400.0
SEED_IMAGES = ("ollama/ollama:latest", "nvcr.io/nvidia/vllm:25.09-py3",
               "ghcr.io/open-webui/open-webui:ollama", "nvcr.io/nvidia/pytorch:25.09-py3")
#: name, image, command, port (published on 0.0.0.0 at the same number), started (s ago),
#: died (s ago, OOM-killed; None: running), GPU, health check, labels, volume
SEED_CONTAINERS: tuple[tuple[Any, ...], ...] = (
    ("ollama", "ollama/ollama:latest", ("serve",), 11434, 3 * _DAY, None, True, False, {},
     "ollama:/root/.ollama"),
    ("vllm-llama31-8b", "nvcr.io/nvidia/vllm:25.09-py3",
     ("vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"), 8000, 2_830,
     None, True, True, {}, f"{SEED_HOME}/.cache/huggingface:/root/.cache/huggingface"),
    ("open-webui", "ghcr.io/open-webui/open-webui:ollama", ("bash", "start.sh"), 12000,
     3 * _DAY, None, False, False,  # label text is device data, shown as typed, never markup
     {"io.sparktui.demo.note": "[bold]not markup[/bold], shown as typed"},
     "open-webui:/app/backend/data"),
    ("comfyui-old", "nvcr.io/nvidia/pytorch:25.09-py3",
     ("python", "ComfyUI/main.py", "--port", "8188"), 8188, _DAY + 5_400, _DAY + 1_100, True,
     False, {}, f"{SEED_HOME}/ComfyUI:/workspace/ComfyUI"),
)
#: vLLM's health check, as a compose file or `docker run --health-cmd` would set it
HEALTHCHECK = {"Test": ["CMD-SHELL", "curl -sf http://localhost:8000/health || exit 1"],
               "Interval": 30_000_000_000, "Retries": 3}
