"""Stand-ins for inference engines that cannot run here: their documented answers, served.

vLLM, SGLang, TRT-LLM and Ollama need a GPU (or are far too big for a 2-core
CI machine), so the serving tests serve the pages their documentation shows
(tests/fixtures/serving, written from each project's docs and metric names,
with histogram buckets) from a plain HTTP server on loopback, the "device
side" of the test sshd. Each path serves its pages in turn, one per GET, and
stays on the last: an idle page, then the page after load.
"""

from __future__ import annotations

import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "serving"

Page = tuple[str, bytes]  # (content type, body)


def fixture(name: str) -> Page:
    body = (FIXTURES / name).read_bytes()
    kind = "application/json" if name.endswith(".json") else "text/plain; version=0.0.4"
    return kind, body


def json_page(data: object) -> Page:
    return "application/json", json.dumps(data).encode()


class EngineStandIn:
    """`pages`: path -> the pages to serve in turn. Start with `start()`, stop with `stop()`."""

    def __init__(self, pages: dict[str, list[Page]]) -> None:
        self.pages = {path: list(items) for path, items in pages.items()}
        self.served: dict[str, int] = {}
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                page = stand_in.next_page(path)
                if page is None:
                    self.send_error(404)
                    return
                kind, body = page
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def next_page(self, path: str) -> Page | None:
        with self._lock:
            items = self.pages.get(path)
            if not items:
                return None
            index = self.served.get(path, 0)
            self.served[path] = index + 1
            return items[min(index, len(items) - 1)]

    def start(self) -> EngineStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OllamaStandIn:
    """Ollama's model API as its docs describe it (docs/api.md): GET /api/tags lists the
    models, /api/ps the loaded ones, DELETE /api/delete {"model": NAME} removes one (200)
    or answers 404 {"error": "model 'NAME' not found"}. Stateful, so a delete shows in
    the next listing; `deletes` records every DELETE's body as it came."""

    def __init__(self, models: dict[str, int], loaded: tuple[str, ...] = ()) -> None:
        self.models = dict(models)  # name -> size in bytes
        self.loaded = set(loaded)
        self.deletes: list[dict[str, object]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, data: object) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/api/tags":
                    self._reply(200, {"models": [
                        {"name": n, "model": n, "size": size,
                         "modified_at": "2026-11-20T09:12:44.514474187Z",
                         "details": {"format": "gguf", "family": "llama"}}
                        for n, size in sorted(stand_in.models.items())]})
                elif path == "/api/ps":
                    self._reply(200, {"models": [
                        {"name": n, "model": n, "size": stand_in.models.get(n, 0),
                         "size_vram": stand_in.models.get(n, 0), "context_length": 4096,
                         "expires_at": "2026-12-03T22:00:00Z"}
                        for n in sorted(stand_in.loaded)]})
                elif path == "/api/version":
                    self._reply(200, {"version": "0.12.6"})
                else:
                    self._reply(404, {"error": "not found"})

            def do_DELETE(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply(400, {"error": "invalid JSON"})
                    return
                stand_in.deletes.append(request)
                name = request.get("model") or request.get("name")
                if self.path != "/api/delete" or name not in stand_in.models:
                    self._reply(404, {"error": f"model '{name}' not found"})
                    return
                del stand_in.models[name]
                self._reply(200, {})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> OllamaStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
