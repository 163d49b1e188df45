"""Deploying inference servers: the presets, the editable spec, and pull progress.

Pure data and pure functions. The presets follow NVIDIA's DGX Spark playbooks
(image, port, environment, model-cache volumes, GPU request, IPC/shm and
ulimit flags); versions move, so every field is only a starting point the
user can edit in the deploy form. `create_kwargs` turns a DeploySpec into the
keyword arguments of docker-py's `containers.create`, in plain dicts.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

#: a label on every container sparktui deploys: its preset, so the UI can find them
DEPLOY_LABEL = "io.sparktui.deploy"

#: secrets a preset may need; their values never go to the config, the audit log or logs
KNOWN_SECRETS = ("NGC_API_KEY", "HF_TOKEN")


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    image: str
    command: str  # arguments after the image; {model} is replaced by the model field
    container_port: int
    host_port: int
    model: str = ""
    env: tuple[tuple[str, str], ...] = ()
    #: (name, required): a required one stops the deploy when missing
    secrets: tuple[tuple[str, bool], ...] = ()
    volumes: tuple[str, ...] = ()  # "~/dir:/in/container" binds, "name:/path" volumes
    gpus: bool = True
    ipc_host: bool = False
    shm_size: str = ""
    ulimits: tuple[str, ...] = ()  # "memlock=-1", "stack=67108864"
    network_host: bool = False
    health_path: str = "/v1/models"
    api_path: str = "/v1"  # the OpenAI-compatible base path; "" when there is none
    note: str = ""


_HF_CACHE = "~/.cache/huggingface:/root/.cache/huggingface"

PRESETS: tuple[Preset, ...] = (
    Preset("ollama", "Ollama", "ollama/ollama:latest", "", 11434, 11434,
           env=(("OLLAMA_HOST", "0.0.0.0:11434"),), volumes=("ollama:/root/.ollama",),
           health_path="/api/tags",
           note="Pull models afterwards with: docker exec -it <name> ollama pull <model>"),
    # the playbook's 26.05 release ships without Ray; /metrics is on by default
    Preset("vllm", "vLLM", "nvcr.io/nvidia/vllm:26.05-py3",
           "vllm serve {model} --host 0.0.0.0 --port 8000", 8000, 8000,
           model="Qwen/Qwen2.5-0.5B-Instruct", secrets=(("HF_TOKEN", False),),
           volumes=(_HF_CACHE,), ipc_host=True,
           note="Model load can take many minutes; the upstream image vllm/vllm-openai "
                "also works. Its /metrics feeds the Serving tab."),
    Preset("nim", "NVIDIA NIM", "nvcr.io/nim/meta/llama-3.1-8b-instruct-dgx-spark:latest",
           "", 8000, 8000, secrets=(("NGC_API_KEY", True),),
           volumes=("~/.cache/nim:/opt/nim/.cache",
                    "~/.local/share/nim/workspace:/opt/nim/workspace"),
           shm_size="16g", health_path="/v1/health/ready",
           note="The pull logs in to nvcr.io as $oauthtoken with the NGC key."),
    Preset("sglang", "SGLang", "lmsysorg/sglang:latest-cu130",
           "python3 -m sglang.launch_server --model-path {model} --host 0.0.0.0 "
           "--port 30000 --mem-fraction-static 0.75 --enable-metrics", 30000, 30000,
           model="Qwen/Qwen2.5-0.5B-Instruct", secrets=(("HF_TOKEN", False),),
           volumes=(_HF_CACHE,), ipc_host=True, health_path="/health",
           note="--enable-metrics: without it SGLang has no /metrics for the Serving tab."),
    # the playbook serves llama.cpp on 30000 (its build: CUDA arch 121a-real); the same
    # port as SGLang's, so run one of the two or change a port in the form
    Preset("llamacpp", "llama.cpp server", "ghcr.io/ggml-org/llama.cpp:server-cuda",
           "-hf {model} --host 0.0.0.0 --port 30000 --metrics", 30000, 30000,
           model="ggml-org/gpt-oss-20b-GGUF",
           volumes=("~/.cache/llama.cpp:/root/.cache/llama.cpp",), health_path="/health",
           note="--metrics gives /metrics and /slots to the Serving tab."),
    Preset("trtllm", "TensorRT-LLM", "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc13",
           "trtllm-serve {model} --host 0.0.0.0 --port 8355", 8355, 8355,
           model="Qwen/Qwen2.5-0.5B-Instruct",
           env=(("MODEL_HANDLE", "{model}"),), secrets=(("HF_TOKEN", False),),
           volumes=(_HF_CACHE,), ipc_host=True, network_host=True,
           ulimits=("memlock=-1", "stack=67108864"),
           note="Its /metrics (JSON iteration stats) needs enable_iter_perf_stats: true in "
                "an --extra_llm_api_options file."),
    Preset("openwebui", "Open WebUI", "ghcr.io/open-webui/open-webui:ollama", "", 8080, 12000,
           volumes=("open-webui:/app/backend/data", "open-webui-ollama:/root/.ollama"),
           health_path="/", api_path="",
           note="A web UI (with its own Ollama): open the tunnel in a browser."),
)


def preset(key: str) -> Preset:
    for item in PRESETS:
        if item.key == key:
            return item
    raise KeyError(f"no preset {key!r} (known: {', '.join(p.key for p in PRESETS)})")


@dataclass
class DeploySpec:
    """Every field of the deploy form; a preset fills them, the user may change any."""

    preset: str
    name: str
    image: str
    command: str = ""
    container_port: int = 8000
    host_port: int = 8000
    bind_address: str = "127.0.0.1"  # reached over SSH: nothing listens on the LAN
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, bool] = field(default_factory=dict)  # name -> required
    volumes: list[str] = field(default_factory=list)
    gpus: bool = True
    ipc_host: bool = False
    shm_size: str = ""
    ulimits: list[str] = field(default_factory=list)
    network_host: bool = False
    health_path: str = "/v1/models"
    api_path: str = "/v1"
    pin_digest: bool = False
    keep_on_failure: bool = False

    @property
    def probe_port(self) -> int:
        """The device-side port the server answers on."""
        return self.container_port if self.network_host else self.host_port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL as seen from the device itself."""
        return f"http://127.0.0.1:{self.probe_port}{self.api_path}"


def spec_from_preset(item: Preset, *, model: str | None = None,
                     name: str | None = None) -> DeploySpec:
    model = item.model if model is None else model

    def fill(text: str) -> str:
        return text.replace("{model}", model)

    return DeploySpec(
        preset=item.key, name=name or f"sparktui-{item.key}", image=item.image,
        command=fill(item.command), container_port=item.container_port,
        host_port=item.container_port if item.network_host else item.host_port,
        env={k: fill(v) for k, v in item.env}, secrets=dict(item.secrets),
        volumes=list(item.volumes), gpus=item.gpus, ipc_host=item.ipc_host,
        shm_size=item.shm_size, ulimits=list(item.ulimits), network_host=item.network_host,
        health_path=item.health_path, api_path=item.api_path)


class SpecError(ValueError):
    """A deploy form value that cannot work, with the field it is about."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_SIZE = re.compile(r"^\d+(?:[bkmg]b?)?$", re.IGNORECASE)


def parse_env(text: str) -> dict[str, str]:
    """'A=1 B="two words"' (or one per line) -> {'A': '1', 'B': 'two words'}."""
    env: dict[str, str] = {}
    for item in shlex.split(text):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError("environment", f"{item!r} is not NAME=value")
        env[key] = value
    return env


def format_env(env: dict[str, str]) -> str:
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())


def parse_ulimit(text: str) -> dict[str, Any]:
    """'memlock=-1' or 'nofile=1024:4096' -> docker-py's Ulimit dict."""
    name, sep, value = text.partition("=")
    soft, _, hard = value.partition(":")
    try:
        soft_value = int(soft)
        hard_value = int(hard) if hard else soft_value
    except ValueError:
        raise SpecError("ulimits", f"{text!r} is not name=soft[:hard]") from None
    if not sep or not name:
        raise SpecError("ulimits", f"{text!r} is not name=soft[:hard]")
    return {"name": name, "soft": soft_value, "hard": hard_value}


@dataclass(frozen=True)
class VolumePlan:
    binds: tuple[str, ...]  # "src:dst[:mode]" for docker-py's `volumes`
    host_dirs: tuple[str, ...]  # bind sources to create on the device first (as the user)


def plan_volumes(volumes: list[str], home: str) -> VolumePlan:
    """Expand `~` to the device user's home; named volumes are left to Docker."""
    binds: list[str] = []
    dirs: list[str] = []
    for raw in volumes:
        raw = raw.strip()
        if not raw:
            continue
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            raise SpecError("volumes", f"{raw!r} is not source:/container/path[:ro]")
        source = parts[0]
        if source == "~" or source.startswith("~/"):
            source = home.rstrip("/") + source[1:]
        elif source.startswith("$HOME"):
            source = home.rstrip("/") + source[len("$HOME"):]
        if source.startswith("/"):
            dirs.append(source)
        binds.append(":".join([source, *parts[1:]]))
    return VolumePlan(tuple(binds), tuple(dirs))


def validate(spec: DeploySpec) -> None:
    if not _NAME.match(spec.name):
        raise SpecError("name", f"{spec.name!r}: letters, digits, '_', '.', '-' only")
    if not spec.image.strip():
        raise SpecError("image", "an image is needed")
    for label, port in (("container port", spec.container_port), ("port", spec.host_port)):
        if not 0 < port < 65536:
            raise SpecError(label, f"{port} is not a port (1-65535)")
    if spec.shm_size and not _SIZE.match(spec.shm_size):
        raise SpecError("shm size", f"{spec.shm_size!r} is not a size such as 16g")
    if not spec.health_path.startswith("/"):
        raise SpecError("health path", "must start with /")
    for item in spec.ulimits:
        parse_ulimit(item)
    try:
        shlex.split(spec.command)
    except ValueError as exc:
        raise SpecError("command", str(exc)) from None


def create_kwargs(spec: DeploySpec, *, home: str, image: str | None = None,
                  secret_values: dict[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for docker-py's `client.containers.create`."""
    validate(spec)
    env = dict(spec.env)
    env.update(secret_values or {})
    kwargs: dict[str, Any] = {
        "image": image or spec.image,
        "name": spec.name,
        "detach": True,
        "environment": env,
        "labels": {DEPLOY_LABEL: spec.preset},
        "volumes": list(plan_volumes(spec.volumes, home).binds),
    }
    command = shlex.split(spec.command)
    if command:
        kwargs["command"] = command
    if spec.network_host:
        kwargs["network_mode"] = "host"
    else:
        kwargs["ports"] = {f"{spec.container_port}/tcp": (spec.bind_address, spec.host_port)}
    if spec.gpus:
        # `--gpus all`: every GPU, through whichever runtime provides the capability
        kwargs["device_requests"] = [{"count": -1, "capabilities": [["gpu"]]}]
    if spec.ipc_host:
        kwargs["ipc_mode"] = "host"
    if spec.shm_size:
        kwargs["shm_size"] = spec.shm_size.lower().removesuffix("b")
    if spec.ulimits:
        kwargs["ulimits"] = [parse_ulimit(item) for item in spec.ulimits]
    return kwargs


def split_image(image: str) -> tuple[str, str | None]:
    """'repo:tag' -> ('repo', 'tag'); digests and registry ports are kept intact."""
    if "@" in image:
        return image, None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = image.rpartition(":")
        return repo, tag
    return image, "latest"


# -- pull progress ------------------------------------------------------------------

_DONE_STATES = ("Pull complete", "Already exists", "Download complete")


@dataclass
class PullProgress:
    """Folds docker's pull progress messages (one per layer update) into totals."""

    layers: dict[str, str] = field(default_factory=dict)  # layer id -> last status
    current: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    status: str = ""
    error: str = ""
    digest: str = ""

    def update(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            self.error = str(event.get("error"))
            return
        status = str(event.get("status") or "")
        layer = event.get("id")
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()
        if not layer or status.startswith(("Pulling from", "Digest", "Status")):
            self.status = status
            return
        self.layers[layer] = status
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.current[layer] = int(detail.get("current") or 0)
            self.total[layer] = int(detail["total"])
        elif status in _DONE_STATES and layer in self.total:
            self.current[layer] = self.total[layer]

    @property
    def layers_total(self) -> int:
        return len(self.layers)

    @property
    def layers_done(self) -> int:
        return sum(1 for status in self.layers.values() if status in _DONE_STATES[:2])

    @property
    def bytes_done(self) -> int:
        return sum(self.current.values())

    @property
    def bytes_total(self) -> int:
        return sum(self.total.values())

    def describe(self) -> str:
        from sparktui.core.docker_info import format_bytes

        parts = [f"{self.layers_done}/{self.layers_total} layers"]
        if self.bytes_total:
            parts.append(f"{format_bytes(self.bytes_done)} of {format_bytes(self.bytes_total)}")
        if self.status and not self.layers:
            parts.append(self.status)
        return " · ".join(parts)
