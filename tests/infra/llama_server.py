"""llama.cpp's own `llama-server`, with --metrics, on the tiny test GGUF.

The Python server of llama-cpp-python has no /metrics or /slots; llama.cpp's
C++ server does. CI builds it once from the llama.cpp source vendored in the
llama-cpp-python sdist (.ci/build-llama-server) into
/var/cache/sparktui-ci/llama-server-VERSION/bin/llama-server, where this
finds it ($SPARKTUI_LLAMA_SERVER overrides). Under CI=true a missing binary
FAILS the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

from tests.infra.common import require
from tests.infra.llama import MODEL_ALIAS, write_tiny_llama
from tests.infra.sshd import free_port

LLAMA_VERSION = "0.3.36"  # the llama-cpp-python release .ci/run pins
CACHE = os.environ.get("SPARKTUI_CI_CACHE", "/var/cache/sparktui-ci")


def llama_server_binary() -> str | None:
    path = os.environ.get("SPARKTUI_LLAMA_SERVER") or os.path.join(
        CACHE, f"llama-server-{LLAMA_VERSION}", "bin", "llama-server")
    return path if os.access(path, os.X_OK) else None


def require_llama_server() -> str:
    binary = llama_server_binary()
    require(binary, f"llama-server built by .ci/build-llama-server {LLAMA_VERSION} {CACHE}")
    import importlib.util

    require(importlib.util.find_spec("gguf"), "gguf (pip install gguf)")
    return binary  # type: ignore[return-value]


class LlamaCppServer:
    """`llama-server --metrics` on a random loopback port, in its own process group."""

    def __init__(self, binary: str, directory: str, *, slots: int = 2) -> None:
        self.binary = binary
        self.model = write_tiny_llama(os.path.join(directory, "tiny-llama.gguf"))
        self.port = free_port()
        self.log_path = os.path.join(directory, f"llama-server-{self.port}.log")
        self.slots = slots
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LlamaCppServer:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-m", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                 "--metrics", "--slots", "-c", str(256 * self.slots), "-np", str(self.slots),
                 "-t", "1", "-a", MODEL_ALIAS, "--no-warmup"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited ({self.proc.returncode}):\n"
                                   + self.log_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama-server did not answer /health:\n" + self.log_text()[-3000:])

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.root}/metrics", timeout=5) as response:
            return response.read().decode()

    def slots_json(self) -> object:
        with urllib.request.urlopen(f"{self.root}/slots", timeout=5) as response:
            return json.loads(response.read())

    def log_text(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
