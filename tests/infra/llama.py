"""Real llama.cpp model servers for tests, on loopback: llama-cpp-python's and llama-server.

The model is a tiny random-weight llama written here with `gguf.GGUFWriter`
(2 layers, 64 dims, ~330 tokens, about 0.5 MB; a fixed seed so every run
writes the same file). It talks nonsense, slowly (about 9 tokens/s on two
cores), which is all the protocol tests need: real SSE framing, real usage
chunks, a real server process to kill mid-answer.

`require_llama()` follows the CI policy: under CI=true a missing
llama_cpp or gguf FAILS the test, elsewhere it skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.infra.common import require
from tests.infra.sshd import free_port

MODEL_ALIAS = "tiny-llama"
N_EMBD = 64
N_LAYERS = 2
N_HEAD = 4
N_FF = 128
SEED = 20240601
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}<|assistant|>\n"
)
#: word pieces after the specials and the 256 byte tokens; each must be unique
WORDS = (
    "the a an and or of to in on for with is are was be it this that model spark GPU "
    "token fast slow answer chat server stream data code block energy power watt joule "
    "time first second per hello world yes no maybe python print def return import "
    "class value list dict set true false none if else while loop end start stop run "
    "go make build test pass fail error ok good bad small big tiny large unified memory "
    "llama vllm ollama nim sglang docker container port host local remote tunnel ssh"
).split()


def llama_available() -> bool:
    return (importlib.util.find_spec("llama_cpp") is not None
            and importlib.util.find_spec("gguf") is not None
            and importlib.util.find_spec("uvicorn") is not None)


def require_llama() -> None:
    require(llama_available(),
            "llama-cpp-python[server] and gguf (pip install 'llama-cpp-python[server]' gguf; "
            "see README: built from source with CMAKE_ARGS=-DGGML_NATIVE=OFF)")


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{i:02X}>" for i in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [f"\u2581{w}" for w in WORDS] + list(dict.fromkeys(WORDS))
    pieces += [c for c in ".,:;!?()#*`-" if c not in pieces]
    for piece in pieces:
        if piece not in tokens:
            tokens.append(piece)
            types.append(gguf.TokenType.NORMAL)
    assert len(set(tokens)) == len(tokens), "every token string must be unique"
    scores = [0.0] * 259 + [-float(i) / 10 for i in range(len(tokens) - 259)]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(path: str, seed: int = SEED) -> str:
    """Write the random-weight model to `path` (deterministic for a seed)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("sparktui tiny test llama")
    writer.add_context_length(512)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weights(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    for layer in range(N_LAYERS):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{prefix}.{name}.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weights(N_EMBD, N_FF))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    output = weights(n_vocab, N_EMBD, scale=1.0)
    # a zero row gives the end-of-text token a logit of 0 while the best of ~330
    # random ones sits far above: the model never stops by itself, so an answer is
    # as long as max_tokens asks (a random model would otherwise stop now and then)
    output[2] = 0.0
    # the same for the byte tokens: random bytes are mostly broken UTF-8, which the
    # server holds back until the answer ends (and re-decodes at every step, slowly);
    # word pieces only keep the stream flowing token by token
    output[3:259] = 0.0
    writer.add_tensor("output.weight", output)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class ServerProcess:
    """A model server in its own process group on a random loopback port, its output in a
    log file; `start` waits until `ready_path` answers (or the process dies)."""

    name = "server"
    ready_path = "/health"

    def __init__(self, directory: str, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = os.path.join(directory, f"{self.name}-{self.port}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self, body: bytes) -> bool:
        return True

    def start(self, timeout: float = 90.0):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n"
                                   + self.log_text()[-3000:])
            try:
                with urllib.request.urlopen(self.root + self.ready_path, timeout=2) as response:
                    if response.status == 200 and self.ready(response.read()):
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.ready_path} within {timeout} s:\n"
                           + self.log_text()[-3000:])

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.root + path, timeout=5) as response:
            return response.read()

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye on open streams."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


class LlamaServer(ServerProcess):
    """`python -m llama_cpp.server` (llama-cpp-python): OpenAI's API, no /metrics."""

    name = "llama"
    ready_path = "/v1/models"

    def __init__(self, model_path: str, port: int | None = None) -> None:
        super().__init__(os.path.dirname(model_path), port)
        self.model_path = model_path

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", self.model_path,
                "--model_alias", MODEL_ALIAS, "--host", self.host, "--port", str(self.port),
                "--n_ctx", "512", "--n_threads", "2", "--verbose", "False",
                # queue concurrent requests (bench) instead of cutting the running one off
                "--interrupt_requests", "False"]

    def ready(self, body: bytes) -> bool:
        return bool(json.loads(body)["data"])


# llama.cpp's own C++ `llama-server` has /metrics and /slots, which the Python server
# lacks. CI builds it once from the llama.cpp source vendored in the llama-cpp-python
# sdist (.ci/build-llama-server) into CACHE/llama-server-VERSION/bin/llama-server,
# where this finds it ($SPARKTUI_LLAMA_SERVER overrides). Under CI=true a missing
# binary FAILS the test.
LLAMA_VERSION = "0.3.36"  # the llama-cpp-python release .ci/run pins
CACHE = os.environ.get("SPARKTUI_CI_CACHE", "/var/cache/sparktui-ci")


def llama_server_binary() -> str | None:
    path = os.environ.get("SPARKTUI_LLAMA_SERVER") or os.path.join(
        CACHE, f"llama-server-{LLAMA_VERSION}", "bin", "llama-server")
    return path if os.access(path, os.X_OK) else None


def require_llama_server() -> str:
    binary = llama_server_binary()
    require(binary, f"llama-server built by .ci/build-llama-server {LLAMA_VERSION} {CACHE}")
    require(importlib.util.find_spec("gguf"), "gguf (pip install gguf)")
    return binary  # type: ignore[return-value]


class LlamaCppServer(ServerProcess):
    """`llama-server --metrics --slots` on the tiny model, with `slots` parallel slots."""

    name = "llama-server"

    def __init__(self, binary: str, directory: str, *, slots: int = 2) -> None:
        super().__init__(directory)
        self.binary = binary
        self.model = write_tiny_llama(os.path.join(directory, "tiny-llama.gguf"))
        self.slots = slots

    def command(self) -> list[str]:
        return [self.binary, "-m", self.model, "--host", self.host, "--port", str(self.port),
                "--metrics", "--slots", "-c", str(256 * self.slots), "-np", str(self.slots),
                "-t", "1", "-a", MODEL_ALIAS, "--no-warmup"]

    def metrics_text(self) -> str:
        return self.get("/metrics").decode()

    def slots_json(self) -> object:
        return json.loads(self.get("/slots"))


def start_llama(directory: str | None = None) -> LlamaServer:
    directory = directory or tempfile.mkdtemp(prefix="sparktui-llama-")
    model = write_tiny_llama(os.path.join(directory, "tiny-llama.gguf"))
    return LlamaServer(model).start()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[LlamaServer]:
    """One llama.cpp server for the whole run (FAILS under CI=true when llama_cpp is missing)."""
    require_llama()
    server = start_llama(str(tmp_path_factory.mktemp("llama")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llama_factory(tmp_path) -> Iterator[Callable[[], LlamaServer]]:
    """`make()` starts a llama server of the test's own (one a test may kill)."""
    require_llama()
    servers: list[LlamaServer] = []

    def make() -> LlamaServer:
        server = start_llama(tempfile.mkdtemp(dir=tmp_path))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
