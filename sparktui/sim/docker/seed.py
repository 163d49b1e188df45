"""What the simulated Docker Engine runs: its seeded containers and images, and log text.

The containers are the ones a DGX Spark owner typically has after following
NVIDIA's playbooks (see shared/reference/spark-playbooks.md): Ollama, a vLLM
server with a health check, Open WebUI in front of Ollama, and an old
ComfyUI container that the OOM killer took a day ago. A `Profile` says how a
kind of container talks (startup lines, one request's lines, shutdown lines,
ANSI colours as the real servers print them) and how busy it is; containers
created through the API get the profile their image suggests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the state imports this module: only the type checker goes the other way
    from sparktui.sim.docker.state import DockerState

OUT, ERR = 1, 2  # the stream numbers of Docker's multiplexed log frames

GREEN, YELLOW, CYAN, BOLD, DIM, RESET = ("\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[1m",
                                         "\x1b[2m", "\x1b[0m")
VLLM_VERSION = "0.10.1.1+381074ae.nv25.09"
GPU_UUID = "GPU-5e1c7a3b-9d2f-4c1e-8a6b-3f0d2e9c7b41"
#: the home the seeded containers mount from; the engine puts the device's own in its place
SEED_HOME = "/home/spark"

#: (delay after start in seconds, stream, template); templates see {model}, {port}, {name}
Script = tuple[tuple[float, int, str], ...]


def _gin(method: str, path: str, status: int, latency: str, client: str = "127.0.0.1") -> str:
    colour = "\x1b[97;42m" if status < 400 else "\x1b[90;43m"
    return (f"[GIN] {{gin}} |{colour} {status} {RESET}| {latency:>13} | {client:>15} |"
            f"\x1b[97;{46 if method == 'POST' else 44}m {method:<7}{RESET} \"{path}\"")


def _uvicorn(method: str, path: str, status: str, client: str) -> str:
    return (f"{GREEN}INFO{RESET}:     {client} - \"{BOLD}{method} {path} HTTP/1.1{RESET}\" "
            f"{GREEN}{status}{RESET}")


def _loguru(level: str, where: str, text: str) -> str:
    colour = YELLOW if level.startswith("WARN") else BOLD
    return (f"{GREEN}{{loguru}}{RESET} | {colour}{level:<8}{RESET} | {CYAN}{where}{RESET} - "
            f"{colour}{text}{RESET}")


def _vllm(level: str, where: str, text: str) -> str:
    colour = YELLOW if level == "WARNING" else GREEN
    return f"{colour}{level}{RESET} {{vllm}} [{where}] {text}"


@dataclass(frozen=True)
class Profile:
    kind: str
    startup: Script
    shutdown: Script
    #: one request's log lines, given a random source and the container's context
    request: Callable[[random.Random, dict[str, str]], list[tuple[int, str]]]
    request_every: tuple[float, float]  # seconds between requests (uniform)
    cpu_idle: float  # cores busy between requests
    cpu_busy: float  # extra cores during a request
    mem_base: int  # bytes in use when idle
    mem_busy: int = 0  # extra bytes during a request
    pids: int = 12
    stop_exit_code: int = 0


def stamp_fields(wall: float) -> dict[str, str]:
    """The timestamp styles of the servers' own log lines, for one moment."""
    local = time.localtime(wall)
    utc = time.gmtime(wall)
    millis = int(wall * 1000) % 1000
    return {
        "vllm": time.strftime("%m-%d %H:%M:%S", local),
        "gin": time.strftime("%Y/%m/%d - %H:%M:%S", local),
        "slog": time.strftime("%Y-%m-%dT%H:%M:%S", utc) + f".{millis:03d}Z",
        "loguru": time.strftime("%Y-%m-%d %H:%M:%S", local) + f".{millis:03d}",
        "hms": time.strftime("%H:%M:%S", local),
    }


def render(template: str, wall: float, context: dict[str, str]) -> str:
    # str.replace, not str.format: the templates hold JSON braces and ANSI escapes
    text = template
    for key, value in {**stamp_fields(wall), **context}.items():
        text = text.replace("{" + key + "}", value)
    return text


# -- vLLM ------------------------------------------------------------------------------------
_VLLM_STARTUP: Script = (
    (0.0, OUT, _vllm("INFO", "__init__.py:216", "Automatically detected platform cuda.")),
    (0.4, OUT, _vllm("INFO", "api_server.py:1896", f"vLLM API server version {VLLM_VERSION}")),
    (0.4, OUT, _vllm("INFO", "utils.py:328", "non-default args: {'model_tag': '{model}', "
                     "'host': '0.0.0.0', 'model': '{model}', 'gpu_memory_utilization': 0.7}")),
    (0.6, OUT, _vllm("INFO", "model.py:547", "Resolved architecture: LlamaForCausalLM")),
    (0.6, OUT, _vllm("INFO", "model.py:1510", "Using max model len 131072")),
    (0.7, ERR, _vllm("WARNING", "cuda.py:103", "GB10 (compute capability 12.1) is newer than "
                     "the kernels tuned for this release; using generic Triton configs.")),
    (0.9, OUT, _vllm("INFO", "core.py:654", "Waiting for init message from front-end.")),
    (1.1, OUT, _vllm("INFO", "gpu_model_runner.py:2370",
                     "Starting to load model {model}...")),
    (1.3, OUT, _vllm("INFO", "cuda.py:362", "Using Flash Attention backend on V1 engine.")),
    (2.4, OUT, "Loading safetensors checkpoint shards: 100% Completed | 4/4 "
               "[00:21<00:00,  5.32s/it]"),
    (2.5, OUT, _vllm("INFO", "default_loader.py:268", "Loading weights took 21.37 seconds")),
    (2.6, OUT, _vllm("INFO", "gpu_model_runner.py:2392",
                     "Model loading took 14.9889 GiB and 22.413 seconds")),
    (3.2, OUT, _vllm("INFO", "gpu_worker.py:298", "Available KV cache memory: 62.48 GiB")),
    (3.3, OUT, _vllm("INFO", "kv_cache_utils.py:864", "GPU KV cache size: 511,840 tokens")),
    (4.0, OUT, _vllm("INFO", "gpu_model_runner.py:3118",
                     "Graph capturing finished in 9 secs, took 0.54 GiB")),
    (4.3, OUT, _vllm("INFO", "api_server.py:1631",
                     "Starting vLLM API server 0 on http://0.0.0.0:{port}")),
    (4.3, OUT, _vllm("INFO", "launcher.py:29", "Available routes are:")),
    (4.3, OUT, _vllm("INFO", "launcher.py:37", "Route: /health, Methods: GET")),
    (4.3, OUT, _vllm("INFO", "launcher.py:37", "Route: /v1/models, Methods: GET")),
    (4.3, OUT, _vllm("INFO", "launcher.py:37", "Route: /v1/chat/completions, Methods: POST")),
    (4.4, OUT, f"{GREEN}INFO{RESET}:     Started server process [1]"),
    (4.4, OUT, f"{GREEN}INFO{RESET}:     Waiting for application startup."),
    (4.5, OUT, f"{GREEN}INFO{RESET}:     Application startup complete."),
)

_SHUTDOWN_UVICORN: Script = (
    (0.0, OUT, f"{GREEN}INFO{RESET}:     Shutting down"),
    (0.1, OUT, f"{GREEN}INFO{RESET}:     Waiting for application shutdown."),
    (0.2, OUT, f"{GREEN}INFO{RESET}:     Application shutdown complete."),
    (0.2, OUT, f"{GREEN}INFO{RESET}:     Finished server process [1]"),
)


def _vllm_request(rng: random.Random, context: dict[str, str]) -> list[tuple[int, str]]:
    client = f"172.17.0.1:{rng.randint(32768, 60999)}"
    if rng.random() < 0.2:  # the health check's curl
        return [(OUT, _uvicorn("GET", "/health", "200 OK", "127.0.0.1:" + client[-5:]))]
    lines = [(OUT, _uvicorn("POST", "/v1/chat/completions", "200 OK", client))]
    if rng.random() < 0.5:
        prompt, gen = rng.uniform(20, 900), rng.uniform(18, 42)
        lines.append((OUT, _vllm("INFO", "loggers.py:123",
                                 f"Engine 000: Avg prompt throughput: {prompt:.1f} tokens/s, "
                                 f"Avg generation throughput: {gen:.1f} tokens/s, Running: 1 "
                                 f"reqs, Waiting: 0 reqs, GPU KV cache usage: "
                                 f"{rng.uniform(0.1, 2.5):.1f}%, Prefix cache hit rate: "
                                 f"{rng.uniform(5, 60):.1f}%")))
    return lines


VLLM = Profile("vllm", _VLLM_STARTUP, (
    (0.0, OUT, _vllm("INFO", "launcher.py:80", "Shutting down FastAPI HTTP server.")),
    *_SHUTDOWN_UVICORN,
), _vllm_request, (3.0, 7.0), cpu_idle=1.02, cpu_busy=0.9, mem_base=6_700 << 20,
    mem_busy=350 << 20, pids=96)

# -- Ollama ------------------------------------------------------------------------------------
_OLLAMA_STARTUP: Script = (
    (0.0, ERR, 'time={slog} level=INFO source=routes.go:1332 msg="server config" '
               'env="map[CUDA_VISIBLE_DEVICES: OLLAMA_HOST:http://0.0.0.0:11434 '
               'OLLAMA_KEEP_ALIVE:5m0s OLLAMA_MODELS:/root/.ollama/models]"'),
    (0.1, ERR, 'time={slog} level=INFO source=images.go:477 msg="total blobs: 12"'),
    (0.1, ERR, 'time={slog} level=INFO source=routes.go:1385 msg="Listening on [::]:11434 '
               '(version 0.12.6)"'),
    (0.3, ERR, 'time={slog} level=INFO source=gpu.go:217 msg="looking for compatible GPUs"'),
    (0.8, ERR, 'time={slog} level=INFO source=types.go:131 msg="inference compute" '
               f'id={GPU_UUID} library=cuda variant=v13 compute=12.1 driver=13.0 '
               'name="NVIDIA GB10" total="119.7 GiB" available="112.4 GiB"'),
)


def _ollama_request(rng: random.Random, context: dict[str, str]) -> list[tuple[int, str]]:
    roll = rng.random()
    if roll < 0.45:
        return [(ERR, _gin("GET", "/api/tags", 200, f"{rng.uniform(0.4, 2.5):.6f}ms",
                           "172.17.0.3"))]
    if roll < 0.6:
        return [(ERR, _gin("GET", "/api/version", 200, f"{rng.uniform(20, 90):.3f}µs",
                           "172.17.0.3"))]
    return [(ERR, _gin("POST", "/api/chat", 200, f"{rng.uniform(1.2, 9.5):.9f}s",
                       "172.17.0.3"))]


OLLAMA = Profile("ollama", _OLLAMA_STARTUP, (), _ollama_request, (4.0, 9.0), cpu_idle=0.04,
                 cpu_busy=2.6, mem_base=5_300 << 20, mem_busy=600 << 20, pids=21)

# -- Open WebUI ------------------------------------------------------------------------------
_WEBUI_STARTUP: Script = (
    (0.0, OUT, "Loading WEBUI_SECRET_KEY from file, not provided as an environment variable."),
    (0.0, OUT, "Loading WEBUI_SECRET_KEY from .webui_secret_key"),
    (0.6, ERR, f"{GREEN}INFO{RESET}  [alembic.runtime.migration] Context impl SQLiteImpl."),
    (0.6, ERR, f"{GREEN}INFO{RESET}  [alembic.runtime.migration] Will assume "
               "non-transactional DDL."),
    (0.9, OUT, _loguru("INFO", "open_webui.env:<module>:273",
                       "'DEFAULT_LOCALE' loaded from the latest database entry")),
    (1.0, OUT, _loguru("WARNING", "open_webui.env:<module>:412",
                       "CORS_ALLOW_ORIGIN IS SET TO '*' - NOT RECOMMENDED FOR PRODUCTION "
                       "DEPLOYMENTS.")),
    (1.2, OUT, f"{BOLD} ___                    __        __   _     _   _ ___{RESET}"),
    (1.2, OUT, f"{BOLD}/ _ \\ _ __   ___ _ __   \\ \\      / /__| |__ | | | |_ _|{RESET}"),
    (1.2, OUT, f"{BOLD}| | | | '_ \\ / _ \\ '_ \\   \\ \\ /\\ / / _ \\ '_ \\| | | || |{RESET}"),
    (1.2, OUT, f"{BOLD}| |_| | |_) |  __/ | | |   \\ V  V /  __/ |_) | |_| || |{RESET}"),
    (1.2, OUT, f"{BOLD} \\___/| .__/ \\___|_| |_|    \\_/\\_/ \\___|_.__/ \\___/|___|{RESET}"),
    (1.2, OUT, f"{BOLD}      |_|{RESET}"),
    (1.3, OUT, "v0.6.34 - building the best AI user interface."),
    (1.5, OUT, _loguru("INFO", "open_webui.main:lifespan:546",
                       "Installing external dependencies of functions and tools...")),
    (1.8, OUT, f"{GREEN}INFO{RESET}:     Started server process [1]"),
    (1.8, OUT, f"{GREEN}INFO{RESET}:     Application startup complete."),
    (1.8, OUT, f"{GREEN}INFO{RESET}:     Uvicorn running on {BOLD}http://0.0.0.0:8080{RESET} "
               "(Press CTRL+C to quit)"),
)

_WEBUI_PATHS = ("/api/v1/chats/?page=1", "/_app/version.json", "/ollama/api/version",
                "/api/models", "/api/v1/users/user/settings", "/static/favicon.png")


def _webui_request(rng: random.Random, context: dict[str, str]) -> list[tuple[int, str]]:
    path = rng.choice(_WEBUI_PATHS)
    return [(OUT, _loguru("INFO", "uvicorn.protocols.http.httptools_impl:send:476",
                          f'192.168.1.23:0 - "GET {path} HTTP/1.1" 200'))]


WEBUI = Profile("webui", _WEBUI_STARTUP, _SHUTDOWN_UVICORN, _webui_request, (5.0, 12.0),
                cpu_idle=0.02, cpu_busy=0.15, mem_base=780 << 20, mem_busy=40 << 20, pids=31)

# -- ComfyUI ---------------------------------------------------------------------------------
_COMFY_STARTUP: Script = (
    (0.0, OUT, "Checkpoint files will always be loaded safely."),
    (0.3, OUT, "Total VRAM 122570 MB, total RAM 122570 MB"),
    (0.3, OUT, "pytorch version: 2.9.0a0+50eac811a6.nv25.09"),
    (0.3, OUT, "Set vram state to: SHARED"),
    (0.3, OUT, "Device: cuda:0 NVIDIA GB10 : cudaMallocAsync"),
    (0.6, OUT, "Python version: 3.12.3 (main, Aug 14 2025, 17:47:21) [GCC 13.3.0]"),
    (0.6, OUT, "ComfyUI version: 0.3.64"),
    (1.0, OUT, "Starting server"),
    (1.0, OUT, ""),
    (1.0, OUT, "To see the GUI go to: http://0.0.0.0:8188"),
)


def _comfy_request(rng: random.Random, context: dict[str, str]) -> list[tuple[int, str]]:
    steps = rng.choice((20, 25, 30))
    rate = rng.uniform(1.5, 3.5)
    return [(OUT, "got prompt"),
            (ERR, f"100%|{'█' * 10}| {steps}/{steps} [00:{int(steps / rate):02d}<00:00,  "
                  f"{rate:.2f}it/s]"),
            (OUT, f"Prompt executed in {steps / rate + rng.uniform(0.3, 1.5):.2f} seconds")]


COMFYUI = Profile("comfyui", _COMFY_STARTUP, (), _comfy_request, (8.0, 15.0), cpu_idle=0.05,
                  cpu_busy=1.4, mem_base=9_800 << 20, mem_busy=2_100 << 20, pids=18)

# -- anything else, e.g. a deployed SGLang, TensorRT-LLM, llama.cpp or NIM ---------------------
_GENERIC_STARTUP: Script = (
    (0.0, OUT, f"{GREEN}INFO{RESET} {{hms}} starting {{name}} ({{image}})"),
    (0.5, OUT, f"{GREEN}INFO{RESET} {{hms}} loading model {{model}}"),
    (1.5, ERR, f"{YELLOW}WARNING{RESET} {{hms}} GB10 detected: unified memory, "
               "page cache counts against the model's memory"),
    (2.5, OUT, f"{GREEN}INFO{RESET} {{hms}} model loaded"),
    (3.0, OUT, f"{GREEN}INFO{RESET}:     Uvicorn running on http://0.0.0.0:{{port}} "
               "(Press CTRL+C to quit)"),
)


def _generic_request(rng: random.Random, context: dict[str, str]) -> list[tuple[int, str]]:
    client = f"172.17.0.1:{rng.randint(32768, 60999)}"
    if rng.random() < 0.3:
        return [(OUT, _uvicorn("GET", "/health", "200 OK", client))]
    return [(OUT, _uvicorn("POST", "/v1/chat/completions", "200 OK", client))]


GENERIC = Profile("generic", _GENERIC_STARTUP, _SHUTDOWN_UVICORN, _generic_request,
                  (4.0, 10.0), cpu_idle=0.6, cpu_busy=0.8, mem_base=3_100 << 20,
                  mem_busy=200 << 20, pids=40)


def profile_for(image: str, name: str = "") -> Profile:
    text = f"{image} {name}".lower()
    if "vllm" in text:
        return VLLM
    if "ollama/ollama" in text:
        return OLLAMA
    if "open-webui" in text:
        return WEBUI
    if "comfy" in text:
        return COMFYUI
    return GENERIC


# -- the seeded images and containers ------------------------------------------------------
@dataclass(frozen=True)
class SeedImage:
    tags: tuple[str, ...]
    size: int
    age_days: float
    repo: str = ""  # where it was pulled from, when the tags do not say (untagged)


SEED_IMAGES = (
    SeedImage(("ollama/ollama:latest",), 3_497_000_000, 12),
    SeedImage(("nvcr.io/nvidia/vllm:25.09-py3",), 19_730_000_000, 21),
    SeedImage(("ghcr.io/open-webui/open-webui:ollama",), 7_412_000_000, 12),
    SeedImage(("nvcr.io/nvidia/pytorch:25.09-py3",), 22_160_000_000, 30),
    SeedImage(("lmsysorg/sglang:latest-cu130",), 16_880_000_000, 18),  # nothing uses it
    SeedImage((), 18_950_000_000, 45, "nvcr.io/nvidia/vllm"),  # untagged by a newer pull
)


@dataclass(frozen=True)
class SeedContainer:
    name: str
    image: str
    cmd: tuple[str, ...]
    ports: tuple[tuple[int, int], ...]  # (host port, container port), published on 0.0.0.0
    state: str  # "running" or "exited"
    started_ago: float  # seconds
    created_ago: float
    gpu: bool = False
    ipc_host: bool = False
    health: bool = False
    exit_code: int = 0
    oom_killed: bool = False
    finished_ago: float = 0.0
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()
    model: str = ""


_DAY = 86_400.0
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SEED_CONTAINERS = (
    SeedContainer("ollama", "ollama/ollama:latest", ("serve",), ((11434, 11434),), "running",
                  started_ago=3 * _DAY + 7_400, created_ago=12 * _DAY, gpu=True,
                  env=(_PATH, "OLLAMA_HOST=0.0.0.0:11434",
                       "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                       "NVIDIA_VISIBLE_DEVICES=all"),
                  labels={"org.opencontainers.image.version": "0.12.6"},
                  volumes=("ollama:/root/.ollama",)),
    SeedContainer("vllm-llama31-8b", "nvcr.io/nvidia/vllm:25.09-py3",
                  ("vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct", "--host", "0.0.0.0",
                   "--port", "8000", "--gpu-memory-utilization", "0.7"),
                  ((8000, 8000),), "running", started_ago=2_830, created_ago=2_900,
                  gpu=True, ipc_host=True, health=True,
                  env=(_PATH, "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_PRODUCT_NAME=vLLM",
                       "HF_HOME=/root/.cache/huggingface", "VLLM_VERSION=0.10.1.1"),
                  labels={"com.nvidia.build.id": "203518734",
                          "com.nvidia.vllm.version": VLLM_VERSION},
                  volumes=(f"{SEED_HOME}/.cache/huggingface:/root/.cache/huggingface",),
                  model="meta-llama/Llama-3.1-8B-Instruct"),
    SeedContainer("open-webui", "ghcr.io/open-webui/open-webui:ollama",
                  ("bash", "start.sh"), ((12000, 8080),), "running",
                  started_ago=3 * _DAY + 7_300, created_ago=12 * _DAY,
                  env=(_PATH, "OLLAMA_BASE_URL=http://host.docker.internal:11434",
                       "WEBUI_AUTH=True", "PORT=8080"),
                  labels={"org.opencontainers.image.source":
                          "https://github.com/open-webui/open-webui",
                          # shown as typed: label text is device data, never markup
                          "io.sparktui.demo.note": "[bold]not markup[/bold], shown as typed"},
                  volumes=("open-webui:/app/backend/data",)),
    SeedContainer("comfyui-old", "nvcr.io/nvidia/pytorch:25.09-py3",
                  ("python", "ComfyUI/main.py", "--listen", "0.0.0.0", "--port", "8188"),
                  ((8188, 8188),), "exited", started_ago=_DAY + 5_400, created_ago=9 * _DAY,
                  gpu=True, exit_code=137, oom_killed=True, finished_ago=_DAY + 1_100,
                  env=(_PATH, "NVIDIA_VISIBLE_DEVICES=all"),
                  volumes=(f"{SEED_HOME}/ComfyUI:/workspace/ComfyUI",)),
)

#: vLLM's health check, as a compose file or `docker run --health-cmd` would set it
VLLM_HEALTHCHECK = {"Test": ["CMD-SHELL", "curl -sf http://localhost:8000/health || exit 1"],
                    "Interval": 30_000_000_000, "Timeout": 5_000_000_000,
                    "StartPeriod": 600_000_000_000, "Retries": 3}


def populate(state: DockerState) -> None:
    """Put the seeded images and containers (with their past logs) into `state`."""
    from sparktui.sim.docker.state import repo_of

    now = time.time()
    for item in SEED_IMAGES:
        state.add_image(list(item.tags), item.size, now - item.age_days * 86_400,
                        repo=item.repo or repo_of(item.tags[0]))
    for spec in SEED_CONTAINERS:
        _populate_container(state, spec, now)


def _populate_container(state: DockerState, spec: SeedContainer, now: float) -> None:
    bindings = {f"{inner}/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(outer)}]
                for outer, inner in spec.ports}
    host: dict[str, Any] = {"PortBindings": bindings, "Binds": list(spec.volumes),
                            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}}
    if spec.gpu:  # what `--gpus all` asks for
        host["DeviceRequests"] = [{"Driver": "", "Count": -1, "DeviceIDs": None,
                                   "Capabilities": [["gpu"]], "Options": {}}]
    if spec.ipc_host:
        host["IpcMode"] = "host"
    port = str(spec.ports[0][1]) if spec.ports else ""
    c = state.new_container(spec.name, spec.image, state.image(spec.image), list(spec.cmd),
                            list(spec.env), dict(spec.labels), host,
                            {f"{p}/tcp": {} for _, p in spec.ports}, model=spec.model,
                            port=port, created=now - spec.created_ago)
    c.healthcheck = dict(VLLM_HEALTHCHECK) if spec.health else None
    c.seeded = True
    started = now - spec.started_ago
    c.started_at = started
    # the startup the container printed back then (slower than a live one), then the
    # traffic of its last 40 minutes
    for delay, stream, text in c.profile.startup:
        state.log(c, stream, text, wall=started + delay * 5)
    end = now - spec.finished_ago if spec.state == "exited" else now
    moment = max(started + 60, end - 2_400)
    while True:
        moment += c.rng.uniform(*c.profile.request_every) * 8
        if moment >= end - 1:
            break
        for stream, text in c.profile.request(c.rng, c.context):
            state.log(c, stream, text, wall=moment)
    if spec.state == "running":
        c.state, c.pid = "running", state.next_pid()
        c.health = "healthy" if c.healthcheck else ""
        c.next_request = time.monotonic() + c.rng.uniform(0.5, 3.0)
        c.cpu_ns = c.profile.cpu_idle * spec.started_ago * 1e9
        return
    c.state, c.exit_code, c.oom_killed, c.finished_at = (
        "exited", spec.exit_code, spec.oom_killed, end)
    if spec.oom_killed:  # its last words before the OOM killer came
        state.log(c, OUT, "Requested to load Flux (fp16), 23.8 GB; loaded partially",
                  wall=end - 2)
